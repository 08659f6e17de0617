/**
 * Sums a V8 .cpuprofile (from `node --cpu-prof`; `npm run bench -- --profile` writes
 * one per service into bench/results/) by self time: per function, and per area
 * (our files, each package, node internals, GC, idle).
 *
 *   npx tsx bench/profile.ts bench/results/risk.cpuprofile [--top 25] [--callers] [--inclusive fnA,fnB]
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  pct: number;
  /** For functions: the callers their self time came through, most first. */
  callers?: { name: string; pct: number }[];
}

export interface ProfileSummary {
  /** Sampled time, ms (idle included). */
  totalMs: number;
  /** Sampled time minus (idle), ms. */
  busyMs: number;
  functions: Row[];
  areas: Row[];
}

/** Where a function lives: our source, a package, node itself, or a V8 pseudo-frame. */
function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const ours = /\/(?:dist|src|bench)\/(.+)$/.exec(url);
  return ours ? (ours[1] as string).replace(/\.(js|ts)$/, '') : url;
}

function shortUrl(url: string): string {
  const pkg = /node_modules\/(.+)$/.exec(url);
  if (pkg) return pkg[1] as string;
  const ours = /\/((?:dist|src|bench)\/.+)$/.exec(url);
  return ours ? (ours[1] as string) : url;
}

export function summarizeProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the time of sample i is the next delta.
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  }
  const functions = new Map<string, number>();
  const callers = new Map<string, Map<string, number>>();
  const areas = new Map<string, number>();
  const nameOf = (frame: CallFrame): string =>
    frame.url ? `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}` : frame.functionName || '(anonymous)';
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    total += us;
    if (frame.functionName === '(idle)') idle += us;
    const name = nameOf(frame);
    functions.set(name, (functions.get(name) ?? 0) + us);
    const parent = parentOf.get(id);
    const caller = parent === undefined ? '(root)' : nameOf((byId.get(parent) as ProfileNode).callFrame);
    const byCaller = callers.get(name) ?? new Map<string, number>();
    byCaller.set(caller, (byCaller.get(caller) ?? 0) + us);
    callers.set(name, byCaller);
    const area = areaOf(frame);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const busy = total - idle;
  const rows = (map: Map<string, number>): Row[] =>
    [...map]
      .filter(([name]) => name !== '(idle)')
      .map(([name, us]) => ({ name, ms: us / 1000, pct: busy > 0 ? (100 * us) / busy : 0 }))
      .sort((a, b) => b.ms - a.ms);
  const withCallers = rows(functions).map((row) => {
    const byCaller = [...(callers.get(row.name) ?? [])].sort((a, b) => b[1] - a[1]);
    const sum = byCaller.reduce((acc, [, us]) => acc + us, 0);
    return { ...row, callers: byCaller.slice(0, 3).map(([name, us]) => ({ name, pct: sum > 0 ? (100 * us) / sum : 0 })) };
  });
  return { totalMs: total / 1000, busyMs: busy / 1000, functions: withCallers, areas: rows(areas) };
}

/**
 * Inclusive time (self plus callees) of the functions named, ms: where the time of a
 * whole step goes (e.g. decode, the handler, the commit). A function that appears twice
 * on one stack is counted once.
 */
export function inclusiveTimes(file: string, names: readonly string[]): Row[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const totals = new Map<string, number>(names.map((name) => [name, 0]));
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0;
    let id: number | undefined = profile.samples[i] as number;
    if ((byId.get(id) as ProfileNode).callFrame.functionName === '(idle)') continue;
    busy += us;
    const seen = new Set<string>();
    while (id !== undefined) {
      const name = (byId.get(id) as ProfileNode).callFrame.functionName;
      if (totals.has(name) && !seen.has(name)) {
        seen.add(name);
        totals.set(name, (totals.get(name) as number) + us);
      }
      id = parentOf.get(id);
    }
  }
  return [...totals].map(([name, us]) => ({ name, ms: us / 1000, pct: busy > 0 ? (100 * us) / busy : 0 }));
}

export function formatProfile(summary: ProfileSummary, top = 25, withCallers = false): string {
  const line = (row: Row) =>
    `${row.pct.toFixed(1).padStart(5)}%  ${row.ms.toFixed(0).padStart(7)} ms  ${row.name}` +
    (withCallers && row.callers?.length ? `\n${' '.repeat(20)}← ${row.callers.map((c) => `${c.name} (${c.pct.toFixed(0)}%)`).join(', ')}` : '');
  return [
    `busy ${summary.busyMs.toFixed(0)} ms of ${summary.totalMs.toFixed(0)} ms sampled; % of busy time`,
    'by area:',
    ...summary.areas.slice(0, 12).map(line),
    `top ${top} functions by self time:`,
    ...summary.functions.slice(0, top).map(line),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const files = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--') && all[i - 1] !== '--top' && all[i - 1] !== '--inclusive');
  const topAt = process.argv.indexOf('--top');
  const withCallers = process.argv.includes('--callers');
  const top = topAt > 0 ? Number(process.argv[topAt + 1]) : 25;
  if (files.length === 0) {
    console.error('usage: tsx bench/profile.ts <file.cpuprofile>... [--top N] [--callers]');
    process.exit(2);
  }
  const inclusiveAt = process.argv.indexOf('--inclusive');
  const inclusive = inclusiveAt > 0 ? (process.argv[inclusiveAt + 1] ?? '').split(',') : [];
  for (const file of files) {
    console.log(`== ${file}\n${formatProfile(summarizeProfile(file), top, withCallers)}`);
    if (inclusive.length > 0) {
      console.log('inclusive time:');
      for (const row of inclusiveTimes(file, inclusive)) console.log(`${row.pct.toFixed(1).padStart(5)}%  ${row.ms.toFixed(0).padStart(7)} ms  ${row.name}`);
    }
    console.log('');
  }
}
