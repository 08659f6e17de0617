/** `quantum validate`: observes a running deployment and prints the 13 checks. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { createBus } from '../bus/factory.js';
import type { EventBus, StreamEntry } from '../bus/bus.js';
import { ALL_TOPICS, CORE_TOPICS, TOPICS } from '../bus/topics.js';
import { backlogWarnings, type GroupBacklog } from '../bus/trim.js';
import type { Config } from '../platform/config.js';
import {
  SERVICE_LABELS,
  evaluate,
  fillSample,
  formatReport,
  type Observations,
  type ServiceKey,
  type ServiceObservation,
} from './validate-checks.js';

const run = promisify(execFile);
const SAMPLE = 1000;
/** An approval younger than this with no fill may still be in flight: not counted as unfilled yet. */
const FILL_GRACE_MS = 5000;

export interface ValidateOptions {
  json: boolean;
  systemd: boolean;
  /** Injected for tests. */
  now?: () => number;
  write?: (text: string) => void;
}

function probeHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

async function systemdState(unit: string, enabled: boolean): Promise<string | null> {
  // Only where systemd is the init system; elsewhere the port check stands alone.
  if (!enabled || !existsSync('/run/systemd/system')) return null;
  try {
    const { stdout } = await run('systemctl', ['is-active', unit], { timeout: 5000 });
    return stdout.trim();
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout;
    return stdout?.trim() || 'unknown';
  }
}

function portOpen(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function getJson(url: string, timeoutMs = 3000): Promise<{ status: number; body: Record<string, unknown> | null } | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    let body: Record<string, unknown> | null = null;
    try {
      body = (await response.json()) as Record<string, unknown>;
    } catch {
      body = null;
    }
    return { status: response.status, body };
  } catch {
    return null;
  }
}

function payloads(entries: StreamEntry[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const entry of entries) {
    try {
      const value: unknown = JSON.parse(entry.fields.payload ?? '');
      if (typeof value === 'object' && value !== null) out.push(value as Record<string, unknown>);
    } catch {
      // malformed entries are the dead-letter stream's business, not the validator's
    }
  }
  return out;
}

async function observeBus(bus: EventBus, now: number, maxlen: number): Promise<Partial<Observations>> {
  const topicLengths: Record<string, number> = {};
  const backlogs: GroupBacklog[] = [];
  // Lengths of the core topics (checked); backlogs of every topic (warnings: ticks, exit levels, the journal's group too).
  for (const topic of ALL_TOPICS) {
    const info = await bus.info(topic);
    if (CORE_TOPICS.includes(topic)) topicLengths[topic] = info.length;
    for (const g of info.groups) backlogs.push({ topic, group: g.name, lag: g.lag, pending: g.pending });
  }
  const warnings = backlogWarnings(backlogs, maxlen);

  const signals = payloads(await bus.readLatest(TOPICS.signal, SAMPLE)).map((s) => ({
    action: String(s.action),
    confidence: Number(s.confidence),
    source: String(s.source ?? ''),
  }));

  const results = payloads(await bus.readLatest(TOPICS.execution, SAMPLE * 2));
  const filled = results.filter((r) => r.status === 'FILLED');
  const fillLatenciesMs = filled
    .slice(0, SAMPLE)
    .map((r) => Number(r.ts) - Number(r.signal_ts))
    .filter((ms) => Number.isFinite(ms) && ms >= 0);

  const filledIds = new Set(filled.map((r) => String(r.signal_id)));
  const approvals = payloads(await bus.readLatest(TOPICS.safe, SAMPLE)).map((a) => ({
    signal_id: String(a.signal_id),
    approved_ts: Number(a.approved_ts),
  }));
  const fill = fillSample(approvals, filledIds, now, FILL_GRACE_MS);

  return { topicLengths, signals, fillLatenciesMs, fill, warnings };
}

export async function observe(config: Config & { redis_url: string }, options: ValidateOptions): Promise<Observations> {
  const host = probeHost(config.host);
  const now = options.now ?? Date.now;
  const services = {} as Record<ServiceKey, ServiceObservation>;
  for (const key of ['risk', 'execution', 'monitor'] as const) {
    const port = config.ports[key];
    const [systemd, listening, health] = await Promise.all([
      systemdState(SERVICE_LABELS[key].unit, options.systemd),
      portOpen(host, port),
      getJson(`http://${host}:${port}/health`),
    ]);
    services[key] = {
      port,
      systemd,
      listening,
      healthStatus: health?.status ?? null,
      healthBody: health?.body ?? null,
    };
  }

  const observations: Observations = {
    services,
    topicLengths: null,
    approvalRate: null,
    approvalCounts: null,
    signals: [],
    fillLatenciesMs: [],
    fill: null,
  };

  const stats = await getJson(`http://${host}:${config.ports.risk}/stats`);
  const counts = stats?.body?.counts as { approved?: number; rejected?: number } | undefined;
  if (stats?.status === 200 && counts && typeof counts.approved === 'number' && typeof counts.rejected === 'number') {
    const decided = counts.approved + counts.rejected;
    observations.approvalCounts = { approved: counts.approved, rejected: counts.rejected };
    observations.approvalRate = decided > 0 ? counts.approved / decided : null;
  }

  let bus: EventBus | undefined;
  try {
    bus = await createBus({ redisUrl: config.redis_url, clusterNodes: config.redis_cluster_nodes, prefix: config.stream_prefix, connectTimeoutMs: 3000, trimIntervalMs: 0 });
    Object.assign(observations, await observeBus(bus, now(), config.streams.maxlen));
  } catch (err) {
    observations.busError = err instanceof Error ? err.message : String(err);
  } finally {
    await bus?.close().catch(() => undefined);
  }
  return observations;
}

export async function runValidate(config: Config & { redis_url: string }, options: ValidateOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stdout.write(`${text}\n`));
  const observations = await observe(config, options);
  const results = evaluate(observations, CORE_TOPICS);
  const passed = results.filter((r) => r.passed).length;
  const ok = passed === results.length;
  if (options.json) {
    write(JSON.stringify({ ok, passed, total: results.length, checks: results, observations }, null, 2));
  } else {
    write(formatReport(results, observations.warnings));
  }
  return ok ? 0 : 1;
}
