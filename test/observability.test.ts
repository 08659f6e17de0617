/**
 * deploy/prometheus and deploy/grafana against the real tools: promtool checks the
 * scrape config and the alert rules and runs the rules' unit tests; then a real
 * Prometheus scrapes a running `quantum up` (every service and the dashboard, on free
 * ports, every second) and every Grafana panel query and every alert expression is
 * evaluated through its HTTP API. The same run compares each service's live /metrics
 * with docs/metrics.md.
 *
 * The first part needs only Redis: the metrics alerts read (dead letters, pending, lag,
 * snapshot commits and their failures, feed, price age) show what happened on a real bus.
 *
 * Needs Debian's `prometheus` package (prometheus and promtool): skipped with a warning
 * outside CI when it is missing; in CI (which installs it) a missing tool fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult } from '../src/core/messages.js';
import { metricDocs } from '../src/platform/metrics-doc.js';
import { readSnapshotText } from '../src/services/common/host.js';
import { freePorts } from './helpers/ports.js';
import {
  REPO,
  deploymentEnv,
  ensureBuilt,
  getJson,
  killAll,
  removeScratch,
  spawnQuantum,
  waitForHealth,
  writeConfig,
  type QuantumProcess,
} from './helpers/processes.js';
import { startPrivateRedis, waitFor } from './helpers/redis.js';
import { approval, metricValue, readDeadLetters, request, testScope, waitForPayloads, waitForSettled } from './helpers/services.js';

const PROMETHEUS_DIR = join(REPO, 'deploy', 'prometheus');
const GRAFANA_DIR = join(REPO, 'deploy', 'grafana');
const TOOLS = ['promtool', 'prometheus'] as const;

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

const missing = TOOLS.filter((tool) => !hasCommand(tool));
if (missing.length > 0 && !process.env.CI) {
  console.warn(
    `observability.test: SKIPPED — ${missing.join(' and ')} not installed. ` +
      'Install with `apt-get install -y prometheus` (Debian; CI installs it and fails without it).',
  );
}
/** Outside CI without the tools: skip (loudly, above). In CI: run, and fail on the missing tool. */
const describeWithTools = missing.length > 0 && !process.env.CI ? describe.skip : describe;

function requireTools(): void {
  if (missing.length > 0) throw new Error(`${missing.join(' and ')} not installed: apt-get install -y prometheus`);
}

function promtool(args: string[]): { status: number | null; output: string } {
  const result = spawnSync('promtool', args, { cwd: PROMETHEUS_DIR, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}${result.error ? String(result.error) : ''}` };
}

interface Panel {
  title: string;
  datasource?: { uid?: string };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
}

function dashboard(): { uid: string; panels: Panel[] } {
  return JSON.parse(readFileSync(join(GRAFANA_DIR, 'dashboards', 'quantum-trader.json'), 'utf8')) as { uid: string; panels: Panel[] };
}

/** Every panel query, with Grafana's own variables replaced as Grafana would (1 s scrapes). */
function panelQueries(): Array<{ panel: string; expr: string }> {
  return dashboard().panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: (target.expr ?? '').replaceAll('$__rate_interval', '15s') })),
  );
}

async function setPrice(app: FastifyInstance, symbol: string, price: number): Promise<void> {
  const res = await request(app, 'POST', `/prices/${symbol}`, { body: { price } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
}

describe('the metrics alerts read, on a real Redis', () => {
  const scope = testScope('observability');
  afterEach(() => scope.teardown());

  it('execution: dead letters, pending and lag per group, snapshot commits, signal-to-fill, rejections by code, feed and price age', async () => {
    const bus = await scope.openBus();
    const exec = await scope.launch('execution', { bus });
    await setPrice(exec.app, 'BTCUSDT', 50_000); // the approval's reference price (else PRICE_DEVIATION)
    const order = approval({ quantity: 0.01 });
    await bus.publish(TOPICS.safe, order);
    await bus.publish(TOPICS.safe, approval({ quantity: 0.01, reference_price: 40_000 })); // 25% off the price
    await bus.publishRaw(TOPICS.safe, { payload: 'not json' });
    await waitForSettled(bus, GROUPS.execution, [TOPICS.safe]);
    await waitFor(async () => (await readDeadLetters(bus, TOPICS.safe)).length === 1, { what: 'the dead letter' });

    const text = (await request(exec.app, 'GET', '/metrics')).text;
    const group = GROUPS.execution;
    expect(metricValue(text, 'qt_dead_letter_entries', { service: 'execution', topic: TOPICS.safe })).toBe(1);
    expect(metricValue(text, 'qt_dead_letter_entries', { topic: TOPICS.tick })).toBe(0);
    expect(metricValue(text, 'qt_messages_total', { topic: TOPICS.safe, direction: 'dlq' })).toBe(1);
    expect(metricValue(text, 'qt_messages_total', { topic: TOPICS.tick, direction: 'dlq' })).toBe(0); // at 0 from the start
    expect(metricValue(text, 'qt_consumer_pending_entries', { topic: TOPICS.safe, group })).toBe(0);
    expect(metricValue(text, 'qt_consumer_lag_entries', { topic: TOPICS.safe, group })).toBe(0);
    expect(metricValue(text, 'qt_snapshot_commit_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(metricValue(text, 'qt_snapshot_commit_failures_total')).toBe(0);
    expect(metricValue(text, 'qt_signal_to_fill_seconds_count')).toBe(1);
    expect(metricValue(text, 'qt_outcomes_total', { outcome: 'filled' })).toBe(1);
    expect(metricValue(text, 'qt_outcomes_total', { outcome: 'rejected:PRICE_DEVIATION' })).toBe(1);
    expect(metricValue(text, 'qt_outcomes_total', { outcome: 'rejected:EXPIRED' })).toBe(0); // at 0 from the start
    expect(metricValue(text, 'qt_feed_connected', { source: 'simulator' })).toBe(1);
    const age = metricValue(text, 'qt_price_age_seconds', { symbol: order.symbol });
    expect(age).toBeGreaterThanOrEqual(0);
  });

  it('a snapshot commit Redis refuses is counted as a failure and retried until it lands', async () => {
    const redis = await startPrivateRedis({ appendonly: false });
    scope.defer(() => redis.destroy());
    const admin = createClient({ url: redis.url });
    await admin.connect();
    scope.defer(async () => void (await admin.quit()));
    // The test publishes as its own user; the service's user (default) loses HSET, which
    // every commit needs for its snapshot's parts, so each commit transaction is refused.
    await admin.sendCommand(['ACL', 'SETUSER', 'tester', 'on', '>pw', '~*', '&*', '+@all']);
    const prefix = scope.newPrefix();
    const serviceBus = await scope.openBus(prefix, { url: redis.url });
    const exec = await scope.launch('execution', { bus: serviceBus });
    await setPrice(exec.app, 'BTCUSDT', 50_000); // the approval's reference price (else PRICE_DEVIATION)
    const testerBus = await scope.openBus(prefix, { url: `redis://tester:pw@127.0.0.1:${redis.port}` });
    await admin.sendCommand(['ACL', 'SETUSER', 'default', '-hset']);

    const order = approval({ quantity: 0.01 });
    await testerBus.publish(TOPICS.safe, order);
    const failures = async () => metricValue((await request(exec.app, 'GET', '/metrics')).text, 'qt_snapshot_commit_failures_total') ?? 0;
    await waitFor(async () => (await failures()) >= 1, { timeoutMs: 10_000, what: 'a failed snapshot commit' });
    expect(await readDeadLetters(testerBus, TOPICS.safe)).toEqual([]);

    await admin.sendCommand(['ACL', 'SETUSER', 'default', '+hset']);
    const [result] = await waitForPayloads(testerBus, TOPICS.execution, ExecutionResult, 1, (r) => r.signal_id === order.signal_id);
    expect(result?.status).toBe('FILLED');
    // The retried commit carried the batch's whole change: its snapshot counts the order.
    const snapshot = JSON.parse((await readSnapshotText(testerBus, 'execution')) ?? 'null') as { stats: { orders: number; fills: number } };
    expect(snapshot.stats).toMatchObject({ orders: 1, fills: 1 });
    const text = (await request(exec.app, 'GET', '/metrics')).text;
    expect(metricValue(text, 'qt_snapshot_commit_duration_seconds_count')).toBeGreaterThan(await failures());
  });
});

describeWithTools('deploy/prometheus and deploy/grafana with promtool', () => {
  beforeAll(requireTools);

  it('promtool check config accepts prometheus.yml (and the rule file it names)', () => {
    const result = promtool(['check', 'config', 'prometheus.yml']);
    expect(result.status, result.output).toBe(0);
  });

  it('promtool check rules accepts alerts.yml', () => {
    const result = promtool(['check', 'rules', 'alerts.yml']);
    expect(result.status, result.output).toBe(0);
    expect(result.output).toMatch(/SUCCESS: 10 rules found/);
  });

  it('promtool test rules: each alert fires on its series and stays quiet on healthy ones', () => {
    const files = readdirSync(join(PROMETHEUS_DIR, 'tests')).filter((f) => f.endsWith('.yml'));
    expect(files.length).toBeGreaterThan(0);
    const result = promtool(['test', 'rules', ...files.map((f) => join('tests', f))]);
    expect(result.status, result.output).toBe(0);
    // Every alert of alerts.yml has a unit test.
    const alerts = [...readFileSync(join(PROMETHEUS_DIR, 'alerts.yml'), 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tests = files.map((f) => readFileSync(join(PROMETHEUS_DIR, 'tests', f), 'utf8')).join('\n');
    for (const alert of alerts) expect(tests, alert).toContain(`alertname: ${alert}`);
  });

  it('the Grafana dashboard is valid JSON whose every panel queries the provisioned data source', () => {
    const board = dashboard();
    expect(board.uid).toBe('quantum-trader');
    const provisioned = readFileSync(join(GRAFANA_DIR, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8');
    const uid = /uid: (\S+)/.exec(provisioned)?.[1];
    expect(uid).toBe('quantum-prometheus');
    for (const panel of board.panels) {
      expect(panel.datasource?.uid, panel.title).toBe(uid);
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.expr, panel.title).toMatch(/\S/);
    }
    const titles = board.panels.map((p) => p.title).join(' | ');
    for (const topic of ['Equity', 'Drawdown', 'PnL', 'rejections by reason', 'Fills', 'Signal-to-fill', 'lag', 'Dead letters', 'Price age', 'Services up']) {
      expect(titles).toContain(topic);
    }
  });
});

interface QueryReply {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

interface RulesReply {
  data: {
    groups: Array<{
      rules: Array<{ name: string; query: string; health: string; lastError?: string; labels: Record<string, string>; annotations: Record<string, string> }>;
    }>;
  };
}

describeWithTools('a real Prometheus scraping `quantum up`', () => {
  let up: QuantumProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let scratch = '';
  let api = '';
  const ports = { risk: 0, execution: 0, monitor: 0, dashboard: 0, prometheus: 0 };

  async function query(expr: string): Promise<QueryReply> {
    const response = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
    return (await response.json()) as QueryReply;
  }

  async function seriesOf(expr: string): Promise<number> {
    const reply = await query(expr);
    if (reply.status !== 'success') throw new Error(`${expr}: ${reply.error}`);
    return reply.data?.result.length ?? 0;
  }

  beforeAll(async () => {
    requireTools();
    await ensureBuilt();
    [ports.risk = 0, ports.execution = 0, ports.monitor = 0, ports.dashboard = 0, ports.prometheus = 0] = await freePorts(5);
    const deployment = {
      prefix: '',
      ports: { risk: ports.risk, execution: ports.execution, monitor: ports.monitor },
      configPath: writeConfig({
        execution: { price_interval_ms: 100 },
        risk: { min_confidence: 0.55, cooldown_minutes: 0, max_daily_entries: 100_000 },
        monitor: { mark_interval_ms: 1000 },
      }),
      redis: null,
    };
    up = spawnQuantum(['up', '--rate', '20', '--plain'], deploymentEnv(deployment, { QT_DASHBOARD_PORT: String(ports.dashboard) }), 'up');
    await Promise.all(
      [ports.risk, ports.execution, ports.monitor, ports.dashboard].map((port) => waitForHealth(`http://127.0.0.1:${port}`, up, 45_000)),
    );
    // Approvals, rejections and fills, so every panel has its series.
    await waitFor(
      async () => {
        const risk = await getJson<{ counts: { approved: number; rejected: number } }>(`http://127.0.0.1:${ports.risk}/stats`);
        const exec = await getJson<{ fills: number }>(`http://127.0.0.1:${ports.execution}/stats`);
        return risk.counts.approved > 0 && risk.counts.rejected > 0 && exec.fills > 0;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'approvals, rejections and fills in quantum up' },
    );

    // The shipped scrape config, pointed at this loop's ports, scraping every second.
    scratch = mkdtempSync(join(tmpdir(), 'qt-prometheus-'));
    const shipped = readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8');
    const config = shipped
      .replace(/scrape_interval: \S+/, 'scrape_interval: 1s')
      .replace(/evaluation_interval: \S+/, 'evaluation_interval: 1s')
      .replace('- alerts.yml', `- ${join(PROMETHEUS_DIR, 'alerts.yml')}`)
      .replace('127.0.0.1:8003', `127.0.0.1:${ports.risk}`)
      .replace('127.0.0.1:8002', `127.0.0.1:${ports.execution}`)
      .replace('127.0.0.1:8004', `127.0.0.1:${ports.monitor}`)
      .replace('127.0.0.1:8000', `127.0.0.1:${ports.dashboard}`);
    for (const port of [ports.risk, ports.execution, ports.monitor, ports.dashboard]) expect(config).toContain(`127.0.0.1:${port}`);
    const configPath = join(scratch, 'prometheus.yml');
    writeFileSync(configPath, config);
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(scratch, 'data')}`,
        `--web.listen-address=127.0.0.1:${ports.prometheus}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (chunk: Buffer): void => {
      prometheusLog = (prometheusLog + chunk.toString()).slice(-8000);
    };
    prometheus.stdout?.on('data', keep);
    prometheus.stderr?.on('data', keep);
    api = `http://127.0.0.1:${ports.prometheus}`;
    await waitFor(async () => (await fetch(`${api}/-/ready`)).ok, { timeoutMs: 30_000, intervalMs: 100, what: `Prometheus ready\n${prometheusLog}` });
    // All four targets up, with enough samples for rates over 15 s.
    await waitFor(async () => (await query('count(count_over_time(up[15s]) >= 5 and up == 1)')).data?.result[0]?.value[1] === '4', {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: 'four targets up for 5 scrapes',
    });
  }, 240_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus?.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    if (up) await up.stop();
    await killAll();
    removeScratch();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('every Grafana panel query parses and returns series', async () => {
    const empty: string[] = [];
    await waitFor(
      async () => {
        empty.length = 0;
        for (const { panel, expr } of panelQueries()) if ((await seriesOf(expr)) === 0) empty.push(`${panel}: ${expr}`);
        return empty.length === 0;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'series for every panel query' },
    ).catch((error: unknown) => {
      throw new Error(`${(error as Error).message}; still empty:\n${empty.join('\n')}`);
    });
  }, 60_000);

  it('every alert is loaded, evaluates without error, has severity and runbook, and its metrics have series', async () => {
    const rules = await waitFor(
      async () => {
        const reply = (await (await fetch(`${api}/api/v1/rules`)).json()) as RulesReply;
        const all = reply.data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : null;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'every rule evaluated once' },
    );
    expect(rules).toHaveLength(10);
    for (const rule of rules) {
      expect(rule.health, `${rule.name}: ${rule.lastError}`).toBe('ok');
      expect(['critical', 'warning'], rule.name).toContain(rule.labels.severity);
      expect(rule.annotations.runbook, rule.name).toMatch(/\S/);
      expect(rule.annotations.summary, rule.name).toMatch(/\S/);
      // The whole expression parses and evaluates (a healthy loop gives most of them no series) ...
      const reply = await query(rule.query);
      expect(reply.status, `${rule.name}: ${reply.error}`).toBe('success');
      // ... and every metric it reads is served.
      const names = new Set(rule.query.match(/\b(qt_[a-z_]+|up)\b/g) ?? []);
      expect(names.size, rule.name).toBeGreaterThan(0);
      for (const name of names) expect(await seriesOf(name), `${rule.name}: ${name}`).toBeGreaterThan(0);
    }
    // Healthy loop: no service down, not halted, feed connected, no commit failures.
    for (const alert of ['QuantumServiceDown', 'QuantumTradingHalted', 'QuantumFeedDisconnected', 'QuantumSnapshotCommitFailing']) {
      const rule = rules.find((r) => r.name === alert);
      expect(await seriesOf(rule?.query ?? ''), alert).toBe(0);
    }
  }, 60_000);

  it('docs/metrics.md lists exactly the metrics (name and type) each running service serves', async () => {
    const documented = await metricDocs();
    for (const [service, port] of Object.entries({ risk: ports.risk, execution: ports.execution, monitor: ports.monitor, dashboard: ports.dashboard })) {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const served = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
      const expected = documented
        .filter((m) => m.services.includes(service))
        .map((m) => `${m.name} ${m.type}`)
        .sort();
      expect(served, service).toEqual(expected);
      // And the running loop labels every series with its service.
      expect(await seriesOf(`count by (service) ({service="${service}", job="quantum-${service}"})`), service).toBe(1);
    }
  }, 30_000);
});
