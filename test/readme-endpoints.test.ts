/**
 * The README's endpoint table says which service serves which route: each "yes" is a
 * route that service has, each empty cell a route it does not have (404 there). Built
 * apps on the embedded bus, asked with Fastify's hasRoute (nothing listens).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { defaultConfig } from '../src/platform/config.js';
import { systemClock } from '../src/platform/clock.js';
import { silentLogger } from '../src/platform/logger.js';
import { startDashboard, type RunningDashboard } from '../src/services/dashboard/server.js';
import { startLoop, type Loop } from '../src/services/loop.js';
import { REPO } from './helpers/processes.js';

type Column = 'risk' | 'execution' | 'monitor' | 'dashboard';
const COLUMNS: Column[] = ['risk', 'execution', 'monitor', 'dashboard'];

/** The rows of the README's "## Endpoints" table: method, path (fastify style), served by. */
function readmeTable(): Array<{ method: 'GET' | 'POST'; url: string; servedBy: Set<Column> }> {
  const text = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf('## Endpoints'), text.indexOf('\n## ', text.indexOf('## Endpoints') + 1));
  const rows: Array<{ method: 'GET' | 'POST'; url: string; servedBy: Set<Column> }> = [];
  for (const line of section.split('\n')) {
    const match = /^\| `(GET|POST) ([^`]+)` \|(.*)\|$/.exec(line);
    if (!match) continue;
    const cells = match[3]!.split('|').map((c) => c.trim());
    const servedBy = new Set(COLUMNS.filter((_, i) => cells[i] === 'yes'));
    rows.push({ method: match[1] as 'GET' | 'POST', url: match[2]!.replace(/\{(\w+)\}/g, ':$1'), servedBy });
  }
  return rows;
}

let loop: Loop;
let bus: EmbeddedBus;
let dashboard: RunningDashboard;
const apps = {} as Record<Column, FastifyInstance>;

beforeAll(async () => {
  bus = new EmbeddedBus();
  const config = defaultConfig({ execution: { price_interval_ms: 0 }, monitor: { mark_interval_ms: 0 } });
  loop = await startLoop({ bus, config, clock: systemClock, logger: silentLogger, listen: false, demo: false });
  dashboard = await startDashboard({ bus, config, clock: systemClock, logger: silentLogger, listen: false });
  Object.assign(apps, { risk: loop.risk.app, execution: loop.execution.app, monitor: loop.monitor.app, dashboard: dashboard.app });
});
afterAll(async () => {
  await dashboard?.stop();
  await loop?.stop();
  await bus?.close();
});

describe('README endpoint table', () => {
  it('has a row for every documented route of the services', () => {
    const urls = readmeTable().map((r) => `${r.method} ${r.url}`);
    for (const route of ['GET /stats', 'GET /portfolio', 'GET /positions', 'GET /prices', 'POST /close/:symbol', 'POST /resume', 'GET /api/state']) {
      expect(urls).toContain(route);
    }
  });

  it('says exactly which services serve each route', () => {
    for (const row of readmeTable()) {
      for (const column of COLUMNS) {
        const has = apps[column].hasRoute({ method: row.method, url: row.url });
        expect(has, `${row.method} ${row.url} on ${column}`).toBe(row.servedBy.has(column));
      }
    }
  });
});

/** The lowest Node major an `engines.node` range admits (null when it cannot tell). */
function lowestMajor(range: string): number | null {
  let lowest: number | null = null;
  for (const alternative of range.split('||')) {
    const match = /(?:>=?|\^|~)?\s*v?(\d+)/.exec(alternative.trim());
    if (!match) continue;
    const major = Number(match[1]);
    lowest = lowest === null ? major : Math.min(lowest, major);
  }
  return lowest;
}

describe('Node 20 is enough (README, SPEC §1)', () => {
  it('no package in package-lock.json asks for a newer Node (npm ci prints no EBADENGINE)', () => {
    const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; optional?: boolean; engines?: { node?: string } | string[] }>;
    };
    const tooNew: string[] = [];
    for (const [path, meta] of Object.entries(lock.packages)) {
      const node = !Array.isArray(meta.engines) ? meta.engines?.node : undefined;
      // An optional package Node 20 cannot run is left out by npm without a warning.
      if (!node || meta.optional) continue;
      const major = lowestMajor(node);
      if (major !== null && major > 20) tooNew.push(`${path}@${meta.version ?? '?'} needs node ${node}`);
    }
    expect(tooNew).toEqual([]);
    expect(lowestMajor('>=22')).toBe(22);
    expect(lowestMajor('^18.18.0 || ^20.9.0 || >=21.1.0')).toBe(18);
  });
});
