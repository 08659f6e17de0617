/**
 * Protections end to end (issue 21's "Done when", docs/protections.md): `quantum risk`,
 * `quantum execution` and `quantum monitor` as three processes on Redis, at frozen
 * prices (no fees, slippage or spread: only the prices we set move equity).
 * - a burst of 50 entries with risk.max_orders_per_second 5 approves at most 5 in any
 *   second (by the approvals' approved_ts);
 * - POST /halt {"flatten": true} with execution stopped closes every position once (a
 *   second halt and a kill -9 of risk make no second close), the next entry is refused
 *   KILL_SWITCH with the operator's reason, and `quantum resume` lets entries through;
 * - two stop-loss exits with a stoploss_guard of trade_limit 2 lock the symbol;
 * - losses past risk.max_daily_loss_pct make the next entry DAILY_LOSS_LIMIT while a
 *   close passes.
 * The reset at 00:00 UTC needs a clock we can move: the last block runs the real risk and
 * execution services in this process on Redis with a ManualClock.
 * Nothing sleeps: every wait polls with a deadline.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { createBus } from '../src/bus/factory.js';
import { publishTradeSignal, type TradeSignalExtra } from '../src/bus/publish.js';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ManualClock } from '../src/core/clock.js';
import { ExecutionResult, RiskApprovedSignal, RiskRejection, type PositionView } from '../src/core/messages.js';
import { defaultConfig } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';
import { launchService, type Launched } from '../src/services/launch.js';
import { deploymentEnv, getJson, http, newDeployment, postJson, runQuantum, servicesOnRedis, waitForHealth, type ServicesOnRedis } from './helpers/processes.js';
import { cleanupPrefix, redisUrl, uniquePrefix, waitFor } from './helpers/redis.js';
import { isSettled } from './helpers/services.js';

const TIMEOUT_MS = 30_000;
const FROZEN = {
  execution: { price_interval_ms: 0, fee_rate: 0, max_slippage_pct: 0 },
  market: { simulator_spread_pct: 0 },
  monitor: { mark_interval_ms: 0 },
};

type Decision = { kind: 'approve'; order: RiskApprovedSignal } | { kind: 'reject'; rejection: RiskRejection };

/** Readers over one deployment's streams and HTTP. */
function readers(loop: ServicesOnRedis) {
  const url = (key: 'risk' | 'execution' | 'monitor', path: string) => `${loop.services.url(key)}${path}`;
  const payloads = async (topic: string) =>
    (await loop.bus.readLatest(topic, 5000)).reverse().map((e) => JSON.parse(e.fields.payload ?? '{}') as Record<string, unknown>);
  return {
    url,
    async decisions(ids: readonly string[]): Promise<Map<string, Decision>> {
      const wanted = new Set(ids);
      const out = new Map<string, Decision>();
      for (const p of await payloads(TOPICS.safe)) if (wanted.has(p.signal_id as string)) out.set(p.signal_id as string, { kind: 'approve', order: RiskApprovedSignal.parse(p) });
      for (const p of await payloads(TOPICS.rejected)) if (wanted.has(p.signal_id as string)) out.set(p.signal_id as string, { kind: 'reject', rejection: RiskRejection.parse(p) });
      return out;
    },
    async decision(id: string): Promise<Decision> {
      return loop.poll(async () => (await this.decisions([id])).get(id), `the decision on ${id}`);
    },
    async results(): Promise<ExecutionResult[]> {
      return (await payloads(TOPICS.execution)).map((p) => ExecutionResult.parse(p));
    },
    async positions(): Promise<PositionView[]> {
      return (await getJson<{ positions: PositionView[] }>(url('monitor', '/positions'))).positions;
    },
    async setPrice(symbol: string, price: number): Promise<void> {
      await postJson(url('monitor', `/prices/${symbol}`), { price });
      await loop.poll(async () => (await getJson<{ prices: Record<string, number> }>(url('execution', '/prices'))).prices[symbol] === price, `${symbol} at ${price}`);
      await loop.poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.tick]), 'risk to read the tick');
    },
    /** Risk has applied every result, execution has handled every approval. */
    async settled(): Promise<void> {
      await loop.poll(
        async () =>
          (await isSettled(loop.bus, GROUPS.risk, [TOPICS.tick, TOPICS.execution, TOPICS.signal])) &&
          (await isSettled(loop.bus, GROUPS.execution, [TOPICS.safe])) &&
          (await isSettled(loop.bus, GROUPS.monitor, [TOPICS.execution]))
            ? true
            : null,
        'the three services to settle',
      );
    },
    async signal(symbol: string, action: 'BUY' | 'SELL' | 'CLOSE', extra: TradeSignalExtra = {}): Promise<string> {
      const s = await publishTradeSignal(loop.bus, symbol, action, action === 'CLOSE' ? 1 : 0.9, 'e2e', {
        signal_id: `prot-${symbol}-${randomBytes(4).toString('hex')}`,
        ...extra,
      });
      return s.signal_id;
    },
  };
}

describe('rate limit and kill switch, three processes on Redis', () => {
  const loop = servicesOnRedis('protections-halt', {
    ...FROZEN,
    // Small orders (Kelly 0.8 × 0.01 = 80 USDT) so the burst is limited by the rate alone.
    risk: { cooldown_minutes: 0, max_daily_entries: 1000, max_orders_per_second: 5, kelly_fraction: 0.01, max_position_pct: 1, max_exposure_pct: 1 },
  }, { timeoutMs: TIMEOUT_MS, intervalMs: 50 });
  const r = readers(loop);

  it('a burst of 50 entries with max_orders_per_second 5 approves at most 5 in any second; the rest are RATE_LIMIT', async () => {
    const symbols = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT'];
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => r.signal(symbols[i % 5]!, 'BUY')));
    const decided = await loop.poll(async () => {
      const d = await r.decisions(ids);
      return d.size === 50 ? d : null;
    }, 'all 50 decisions');
    const approvals = [...decided.values()].flatMap((d) => (d.kind === 'approve' ? [d.order.approved_ts] : [])).sort((a, b) => a - b);
    const rejections = [...decided.values()].flatMap((d) => (d.kind === 'reject' ? [d.rejection] : []));
    expect(approvals.length).toBeGreaterThanOrEqual(5);
    for (const start of approvals) expect(approvals.filter((t) => t >= start && t < start + 1000).length).toBeLessThanOrEqual(5);
    expect(rejections.length).toBe(50 - approvals.length);
    for (const rejection of rejections) {
      expect(rejection.reasons).toEqual(['RATE_LIMIT']);
      expect(rejection.checks.find((c) => c.rule === 'rate_limit' && !c.passed)).toMatchObject({ value: 5, limit: 5 });
    }
    await r.settled();
  }, 120_000);

  it('POST /halt {"flatten": true} with execution stopped closes every position once, survives kill -9 of risk, and refuses the next entry with the reason', async () => {
    await r.settled();
    // Out of the rate window of the burst before.
    await loop.poll(async () => ((await getJson<{ rate_limits: { entries_last_second: number } }>(r.url('risk', '/stats'))).rate_limits.entries_last_second === 0 ? true : null), 'a quiet second');
    const open = new Set((await r.positions()).map((p) => p.symbol));
    expect(open.size).toBeGreaterThanOrEqual(1);

    // Execution is slow (stopped): an entry approved now is still in flight when the halt comes.
    await loop.services.procs.execution.stop();
    const pending = await r.signal('XRPUSDT', 'BUY');
    expect((await r.decision(pending)).kind).toBe('approve');
    open.add('XRPUSDT');

    const halt = await http<{ kill_switch: { reason: string }; closes: Array<{ symbol: string; side: string }> }>('POST', r.url('risk', '/halt'), { flatten: true, reason: 'e2e: fed minutes' });
    expect(halt.status).toBe(200);
    expect(halt.body.kill_switch.reason).toBe('e2e: fed minutes');
    expect(new Set(halt.body.closes.map((c) => c.symbol))).toEqual(open);
    expect(halt.body.closes).toHaveLength(open.size);
    // Again: every position already has its close in flight.
    expect((await postJson<{ closes: unknown[] }>(r.url('risk', '/halt'), { flatten: true, reason: 'e2e: fed minutes' })).closes).toEqual([]);

    // kill -9 of risk: the halt and the closes in flight come back from the snapshot.
    await loop.services.procs.risk.kill();
    await loop.services.restart('risk');
    const health = await getJson<{ trading_state: string; kill_switch: { reason: string } | null }>(r.url('risk', '/health'));
    expect(health).toMatchObject({ trading_state: 'HALTED', kill_switch: { reason: 'e2e: fed minutes' } });
    expect((await postJson<{ closes: unknown[] }>(r.url('risk', '/halt'), { flatten: true, reason: 'e2e: fed minutes' })).closes).toEqual([]);

    // Execution comes back and fills: every position flat, one kill_switch close each.
    const proc = loop.services.spawn('execution');
    await waitForHealth(loop.services.url('execution'), proc);
    await loop.poll(async () => ((await r.positions()).length === 0 ? true : null), 'every position flat on the monitor');
    await r.settled();
    const closes = (await r.results()).filter((x) => x.exit_reason === 'kill_switch');
    expect(closes.every((c) => c.status === 'FILLED' && c.reduce_only && c.origin === 'manual_close')).toBe(true);
    expect(closes.map((c) => c.symbol).sort()).toEqual([...open].sort());

    // The next entry: KILL_SWITCH with the operator's reason; visible on /stats and /metrics.
    const next = await r.decision(await r.signal('BTCUSDT', 'BUY'));
    expect(next.kind).toBe('reject');
    if (next.kind !== 'reject') return;
    expect(next.rejection.reasons).toEqual(['KILL_SWITCH']);
    expect(next.rejection.checks.find((c) => c.rule === 'kill_switch')?.note).toMatch(/e2e: fed minutes/);
    const stats = await getJson<{ trading_state: string; halt_reason: string }>(r.url('risk', '/stats'));
    expect(stats).toMatchObject({ trading_state: 'HALTED', halt_reason: 'KILL_SWITCH: e2e: fed minutes' });
    const metrics = await (await fetch(r.url('risk', '/metrics'))).text();
    expect(metrics).toMatch(/^qt_kill_switch\{service="risk"\} 1$/m);
    expect(metrics).toMatch(/^qt_trading_halted\{reason="KILL_SWITCH",service="risk"\} 1$/m);

    // `quantum resume` from the command line: entries pass again.
    const resumed = await runQuantum(['resume'], loop.services.env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await r.decision(await r.signal('BTCUSDT', 'BUY'))).kind).toBe('approve');
    // And `quantum halt` from the command line halts again (no flatten).
    const halted = await runQuantum(['halt', '--reason', 'cli halt'], loop.services.env);
    expect(halted.code, halted.stderr).toBe(0);
    expect(halted.stdout).toMatch(/HALTED: entries are refused KILL_SWITCH \(cli halt\)/);
    expect((await getJson<{ kill_switch: { reason: string } }>(r.url('risk', '/health'))).kill_switch.reason).toBe('cli halt');
  }, 180_000);
});

describe('stoploss_guard and the daily loss limit, three processes on Redis', () => {
  const loop = servicesOnRedis('protections-locks', {
    ...FROZEN,
    risk: { cooldown_minutes: 0, max_daily_entries: 1000, max_daily_loss_pct: 0.02 },
    protections: [{ kind: 'stoploss_guard', lookback_minutes: 60, trade_limit: 2, stop_minutes: 60, only_per_symbol: true }],
  }, { timeoutMs: TIMEOUT_MS, intervalMs: 50 });
  const r = readers(loop);

  it('two stop-loss exits with stoploss_guard trade_limit 2 lock the symbol; another symbol trades', async () => {
    for (let i = 0; i < 2; i += 1) {
      await r.setPrice('BTCUSDT', 65_000);
      const id = await r.signal('BTCUSDT', 'BUY', { stop_loss: 64_350 });
      expect((await r.decision(id)).kind).toBe('approve');
      await loop.poll(async () => ((await r.positions()).some((p) => p.symbol === 'BTCUSDT') ? true : null), 'the BTC long');
      await r.settled();
      await r.setPrice('BTCUSDT', 64_000); // through the stop: risk fires a protective close
      await loop.poll(async () => ((await r.positions()).some((p) => p.symbol === 'BTCUSDT') ? null : true), 'the BTC long stopped out');
      await r.settled();
    }
    const stops = (await r.results()).filter((x) => x.symbol === 'BTCUSDT' && x.exit_reason === 'stop_loss' && x.status === 'FILLED');
    expect(stops).toHaveLength(2);
    const stats = await getJson<{ locks: Array<{ protection: string; symbol: string; until: number }> }>(r.url('risk', '/stats'));
    expect(stats.locks).toEqual([expect.objectContaining({ protection: 'stoploss_guard#0', symbol: 'BTCUSDT' })]);
    const until = stats.locks[0]!.until;
    expect(until).toBe(stops[1]!.ts + 60 * 60_000);

    await r.setPrice('BTCUSDT', 65_000);
    const locked = await r.decision(await r.signal('BTCUSDT', 'BUY'));
    expect(locked.kind === 'reject' && locked.rejection.reasons).toEqual(['LOCKED']);
    if (locked.kind === 'reject') expect(locked.rejection.checks.find((c) => c.rule === 'lock')).toMatchObject({ value: 'stoploss_guard#0', limit: until });
    expect((await r.decision(await r.signal('ETHUSDT', 'BUY'))).kind).toBe('approve');
    await r.settled();
  }, 120_000);

  it('losses past max_daily_loss_pct make the next entry DAILY_LOSS_LIMIT while a close passes', async () => {
    await loop.poll(async () => ((await r.positions()).some((p) => p.symbol === 'ETHUSDT') ? true : null), 'the ETH long of the test before');
    // ETH −25 %: about −250 on a 1 000 position, plus the two stops: past 2 % of 10 000.
    await r.setPrice('ETHUSDT', 2_625);
    const refused = await r.decision(await r.signal('SOLUSDT', 'BUY'));
    expect(refused.kind).toBe('reject');
    if (refused.kind !== 'reject') return;
    expect(refused.rejection.reasons).toEqual(['DAILY_LOSS_LIMIT']);
    const check = refused.rejection.checks.find((c) => c.rule === 'daily_loss')!;
    expect(check.passed).toBe(false);
    expect(check.limit).toBe(0.02);
    expect(check.value as number).toBeGreaterThan(0.02);
    expect(check.note).toMatch(/UTC day PnL -\d+(\.\d+)? USDT from a starting equity of 10000 USDT/);

    const close = await r.decision(await r.signal('ETHUSDT', 'CLOSE'));
    expect(close.kind).toBe('approve');
    await loop.poll(async () => ((await r.positions()).some((p) => p.symbol === 'ETHUSDT') ? null : true), 'ETH closed');
    await r.settled();
    const after = await r.decision(await r.signal('SOLUSDT', 'BUY'));
    expect(after.kind === 'reject' && after.rejection.reasons).toEqual(['DAILY_LOSS_LIMIT']);
    const stats = await getJson<{ daily_loss: { limit_reached: boolean; day_pnl_usd: number } }>(r.url('risk', '/stats'));
    expect(stats.daily_loss.limit_reached).toBe(true);
    expect(stats.daily_loss.day_pnl_usd).toBeLessThan(-200);
  }, 120_000);
});

describe('the daily loss limit resets at 00:00 UTC (risk and execution in process on Redis, a ManualClock)', () => {
  const started: Launched[] = [];
  const buses: EventBus[] = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    for (const s of started.splice(0).reverse()) await s.stop();
    for (const b of buses.splice(0)) await b.close();
    await Promise.all(prefixes.splice(0).map((p) => cleanupPrefix(redisUrl(), p)));
  });

  it('refused until 23:59:59.999, an entry passes at midnight, after a restart too', async () => {
    const prefix = uniquePrefix('protections-day');
    prefixes.push(prefix);
    const bus = await createBus({ redisUrl: redisUrl(), prefix, onError: () => undefined });
    buses.push(bus);
    const T0 = Date.UTC(2026, 10, 24, 22, 0, 0);
    const midnight = Date.UTC(2026, 10, 25);
    const clock = new ManualClock(T0);
    const config = defaultConfig({ ...FROZEN, risk: { cooldown_minutes: 0, max_daily_entries: 1000, max_daily_loss_pct: 0.01, max_signal_age_ms: 0 } });
    const launch = async () => {
      const risk = await launchService('risk', { bus, config, clock, logger: silentLogger });
      started.push(risk);
      return risk;
    };
    started.push(await launchService('execution', { bus, config, clock, logger: silentLogger }));
    let risk = await launch();
    const tick = (symbol: string, price: number) => bus.publish(TOPICS.tick, { schema_version: 1, symbol, price, ts: clock.now(), source: 'manual' });
    const decide = async (symbol: string, action: 'BUY' | 'CLOSE'): Promise<string[] | 'approved'> => {
      const s = await publishTradeSignal(bus, symbol, action, 0.9, 'day', { signal_id: `day-${randomBytes(4).toString('hex')}` }, clock);
      return waitFor(async () => {
        for (const e of await bus.readLatest(TOPICS.safe, 100)) if (JSON.parse(e.fields.payload ?? '{}').signal_id === s.signal_id) return 'approved' as const;
        for (const e of await bus.readLatest(TOPICS.rejected, 100)) {
          const p = JSON.parse(e.fields.payload ?? '{}') as { signal_id: string; reasons: string[] };
          if (p.signal_id === s.signal_id) return p.reasons;
        }
        return null;
      }, { timeoutMs: TIMEOUT_MS, intervalMs: 20, what: `the decision on ${s.signal_id}` });
    };
    const settled = () => waitFor(async () => ((await isSettled(bus, GROUPS.risk, [TOPICS.tick, TOPICS.execution, TOPICS.signal])) && (await isSettled(bus, GROUPS.execution, [TOPICS.safe, TOPICS.tick])) ? true : null), { timeoutMs: TIMEOUT_MS, intervalMs: 20, what: 'risk and execution to settle' });

    for (const [symbol, price] of [['BTCUSDT', 65_000], ['ETHUSDT', 3_500]] as const) await tick(symbol, price);
    await settled();
    expect(await decide('BTCUSDT', 'BUY')).toBe('approved'); // 1 000 USDT long
    await settled();
    clock.advance(1000);
    await tick('BTCUSDT', 55_250); // −15 %: −150 = 1.5 % of the day's start
    await settled();
    expect(await decide('ETHUSDT', 'BUY')).toEqual(['DAILY_LOSS_LIMIT']);
    expect(await decide('BTCUSDT', 'CLOSE')).toBe('approved');
    await settled();

    // kill the in-process risk service and start it again on the same bus: the day is kept.
    await risk.stop();
    started.splice(started.indexOf(risk), 1);
    risk = await launch();
    clock.set(midnight - 1);
    expect(await decide('ETHUSDT', 'BUY')).toEqual(['DAILY_LOSS_LIMIT']);
    clock.set(midnight);
    expect(await decide('ETHUSDT', 'BUY')).toBe('approved');
    const stats = (await risk.app.inject({ method: 'GET', url: '/stats' })).json() as { daily_loss: { day_start_equity_usd: number; limit_reached: boolean } };
    expect(stats.daily_loss.limit_reached).toBe(false);
    expect(stats.daily_loss.day_start_equity_usd).toBeCloseTo(9_850.045, 6); // 10 000 − 0.01538 BTC × 9 750;
  }, 60_000);
});

describe('POST /halt and POST /sources/{source}/resume over HTTP (embedded bus, inject)', () => {
  const started: Launched[] = [];
  afterEach(async () => {
    for (const s of started.splice(0).reverse()) await s.stop();
  });
  async function risk(patch: Parameters<typeof defaultConfig>[0] = {}) {
    const bus = await createBus({ prefix: uniquePrefix('protections-http') });
    const service = await launchService('risk', { bus, config: defaultConfig({ ...FROZEN, ...patch }), clock: new ManualClock(Date.UTC(2026, 10, 24, 12)), logger: silentLogger });
    started.push(service);
    return service;
  }

  it('a bad body is a 400 naming the field; an empty body halts with the default reason', async () => {
    const { app } = await risk();
    const bad = await app.inject({ method: 'POST', url: '/halt', payload: { flatten: 'yes' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/flatten/);
    const unknown = await app.inject({ method: 'POST', url: '/halt', payload: { reason: 'x', flaten: true } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().message).toMatch(/flaten/);
    const empty = await app.inject({ method: 'POST', url: '/halt', payload: {} });
    expect(empty.statusCode, empty.body).toBe(200);
    expect(empty.json()).toMatchObject({ trading_state: 'HALTED', kill_switch: { reason: 'operator halt' }, flatten: false, closes: [] });
    const resumed = await app.inject({ method: 'POST', url: '/resume' });
    expect(resumed.json()).toMatchObject({ trading_state: 'ACTIVE', kill_switch: null });
  });

  it('needs the token when api_token is set (as every POST)', async () => {
    const { app } = await risk({ api_token: 'protections-token' });
    expect((await app.inject({ method: 'POST', url: '/halt', payload: { reason: 'x' } })).statusCode).toBe(401);
    const ok = await app.inject({ method: 'POST', url: '/halt', payload: { reason: 'x' }, headers: { authorization: 'Bearer protections-token' } });
    expect(ok.statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/sources/model-a/resume' })).statusCode).toBe(401);
    const source = await app.inject({ method: 'POST', url: '/sources/model-a/resume', headers: { authorization: 'Bearer protections-token' } });
    expect(source.json()).toEqual({ source: 'model-a', was_stopped: false });
  });
});

describe('a bad protections config stops start-up with exit code 2 naming the key', () => {
  it.each([
    [{ risk: { max_daily_loss_pct: 2 } }, 'risk.max_daily_loss_pct'],
    [{ risk: { max_orders_per_second: 1.5 } }, 'risk.max_orders_per_second'],
    [{ protections: [{ kind: 'max_drawdown', stop_minutes: 10 }] }, 'protections.0.max_allowed_drawdown_pct'],
  ])('%j', async (config, key) => {
    const deployment = await newDeployment(uniquePrefix('protections-bad'), config);
    const result = await runQuantum(['risk'], deploymentEnv(deployment));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(key);
  });
});
