/**
 * rl.feedback, GET /sources and model.drift with the three services as processes on Redis
 * (issue 16, "Done when"). Fees are on (the default fee_rate 0.0004): every round trip's
 * fees must match its fills. NEGATIVE_EDGE cannot trip: the Kelly payoff b comes from the
 * round trips only once there are 10 with a loss, and the winners here gain 1% against
 * losers' 0.5% (b ≈ 2 ≫ (1 − p)/p for p ≥ 0.7); the cooldown is off so a loss blocks nothing.
 */
import { describe, expect, it } from 'vitest';
import { GROUPS, TOPICS } from '../src/bus/topics.js';
import { ExecutionResult, ModelDrift, TradeFeedback, type PositionView } from '../src/core/messages.js';
import type { SourceReport } from '../src/core/analytics/attribution.js';
import { getJson, postJson, runQuantum, servicesOnRedis, deploymentEnv, writeConfig } from './helpers/processes.js';
import { isSettled } from './helpers/services.js';
import { snapshotKey } from '../src/services/common/host.js';

const TIMEOUT_MS = 30_000;
const FEE_RATE = 0.0004;

describe('feedback with the three services as processes on Redis', () => {
  const loop = servicesOnRedis(
    'feedback-e2e',
    {
      execution: { price_interval_ms: 0, fee_rate: FEE_RATE, max_slippage_pct: 0 },
      market: { simulator_spread_pct: 0 },
      monitor: { mark_interval_ms: 0 },
      risk: { cooldown_minutes: 0, max_daily_entries: 1000, min_confidence: 0.65 },
      // Small windows, so a handful of trades can show a shift.
      feedback: { reference_trades: 5, recent_trades: 4, ks_alpha: 0.05 },
    },
    { timeoutMs: TIMEOUT_MS, intervalMs: 25 },
  );
  const poll = loop.poll;
  const url = (key: 'risk' | 'execution' | 'monitor', path: string) => `${loop.services.url(key)}${path}`;
  let serial = 0;

  async function readAll<T>(topic: string, parse: (v: unknown) => T): Promise<Array<T & { entry_id: string }>> {
    const entries = (await loop.bus.readLatest(topic, 100_000)).reverse(); // oldest first
    return entries.map((e) => ({ ...parse(JSON.parse(e.fields.payload ?? '{}')), entry_id: e.id }));
  }
  const feedback = () => readAll(TOPICS.feedback, (v) => TradeFeedback.parse(v));
  const fills = async () => (await readAll(TOPICS.execution, (v) => ExecutionResult.parse(v))).filter((r) => r.status === 'FILLED');
  const drift = () => readAll(TOPICS.drift, (v) => ModelDrift.parse(v));

  async function position(symbol: string): Promise<PositionView | undefined> {
    const { positions } = await getJson<{ positions: PositionView[] }>(url('monitor', '/positions'));
    return positions.find((p) => p.symbol === symbol);
  }

  /** Sets the price on every service and waits until risk has read it. */
  async function setPrice(symbol: string, price: number): Promise<void> {
    await postJson(url('monitor', `/prices/${symbol}`), { price });
    await poll(async () => (await getJson<{ prices: Record<string, number> }>(url('execution', '/prices'))).prices[symbol] === price, `${symbol} at ${price}`);
    await poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.tick]), 'risk to read the tick');
    await poll(() => isSettled(loop.bus, GROUPS.monitor, [TOPICS.tick]), 'the monitor to read the tick');
  }

  /**
   * One long round trip from `source` at `confidence`: in at `entry`, the price dips to
   * `low` (the adverse excursion), out at `exit` with POST /close (manual close).
   */
  async function roundTrip(source: string, confidence: number, entry: number, low: number, exit: number, symbol = 'BTCUSDT'): Promise<void> {
    await setPrice(symbol, entry);
    serial += 1;
    await loop.bus.publish(TOPICS.signal, { signal_id: `fb-${source}-${serial}`, symbol, action: 'BUY', confidence, source });
    await poll(async () => ((await position(symbol))?.side === 'LONG' ? true : null), `a ${symbol} long from ${source}`);
    await poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.execution]), 'risk to apply the fill');
    await setPrice(symbol, low);
    await setPrice(symbol, exit);
    const closed = await postJson<{ closed: boolean }>(url('monitor', `/close/${symbol}`), {});
    expect(closed.closed).toBe(true);
    await poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.execution]), 'risk to apply the close');
  }

  it('one rl.feedback per round trip from two sources, with PnL, fees and hold time matching the fills; GET /sources attributes them', async () => {
    // alpha: two winners (+1%) and a loser (−0.5%); beta: one winner. Each dips 0.2% first.
    await roundTrip('alpha', 0.7, 50_000, 49_900, 50_500);
    await roundTrip('beta', 0.8, 50_000, 49_900, 50_500);
    await roundTrip('alpha', 0.72, 50_000, 49_900, 49_750);
    await roundTrip('alpha', 0.9, 50_000, 49_900, 50_500);
    // A rejection for beta (below min_confidence), counted by reason.
    await loop.bus.publish(TOPICS.signal, { signal_id: `fb-beta-low`, symbol: 'BTCUSDT', action: 'BUY', confidence: 0.5, source: 'beta' });

    const messages = await poll(async () => {
      const list = await feedback();
      return list.length >= 4 ? list : null;
    }, 'four rl.feedback messages');
    expect(messages).toHaveLength(4);
    expect(new Set(messages.map((m) => m.trade_id)).size).toBe(4);
    expect(messages.map((m) => [m.source, m.confidence, m.exit_reason])).toEqual([
      ['alpha', 0.7, 'manual'],
      ['beta', 0.8, 'manual'],
      ['alpha', 0.72, 'manual'],
      ['alpha', 0.9, 'manual'],
    ]);
    const byOrder = new Map((await fills()).map((f) => [f.order_id, f]));
    const bySignal = new Map((await fills()).map((f) => [f.signal_id, f]));
    for (const m of messages) {
      const open = byOrder.get(m.trade_id)!;
      const close = bySignal.get(m.exit_signal_id)!;
      expect(open, `the fill that opened ${m.trade_id}`).toBeDefined();
      expect(close, `the fill that closed ${m.trade_id}`).toBeDefined();
      expect(open.signal_id).toBe(m.entry_signal_id);
      expect(open.source).toBe(m.source);
      expect(m.kelly_applied).toBe(open.kelly_applied);
      expect(m.entry_ts).toBe(open.ts);
      expect(m.exit_ts).toBe(close.ts);
      expect(m.hold_ms).toBe(close.ts - open.ts);
      expect(m.quantity).toBe(open.quantity);
      expect(close.quantity).toBe(open.quantity);
      expect(m.avg_entry_price).toBe(open.fill_price);
      expect(m.avg_exit_price).toBe(close.fill_price);
      expect(m.fees_usd).toBeGreaterThan(0);
      expect(m.fees_usd).toBeCloseTo(open.fee_usd + close.fee_usd, 8);
      expect(m.gross_pnl_usd).toBeCloseTo(close.notional_usd - open.notional_usd, 8);
      expect(m.net_pnl_usd).toBeCloseTo(m.gross_pnl_usd - m.fees_usd, 8);
      expect(m.return_pct).toBeCloseTo(m.net_pnl_usd / open.notional_usd, 10);
      // The dip to 49,900 from 50,000, or the exit below it.
      expect(m.mae_pct).toBeCloseTo(Math.max(0.002, (50_000 - close.fill_price) / 50_000), 10);
      expect(m.mfe_pct).toBeCloseTo(Math.max(0, (close.fill_price - 50_000) / 50_000), 10);
    }
    expect(messages.filter((m) => m.net_pnl_usd > 0)).toHaveLength(3);

    await poll(() => isSettled(loop.bus, GROUPS.risk, [TOPICS.signal]), 'risk to decide every signal');
    await poll(() => isSettled(loop.bus, GROUPS.monitor, [TOPICS.decisions]), 'the monitor to count the decisions');
    const { sources } = await getJson<{ sources: SourceReport[] }>(url('monitor', '/sources'));
    const alpha = sources.find((s) => s.source === 'alpha')!;
    const beta = sources.find((s) => s.source === 'beta')!;
    const manual = sources.find((s) => s.source === 'manual_close')!;
    expect(alpha).toMatchObject({ trades: 3, wins: 2, losses: 1, approved: 3, rejected: 0, signals: 3, scored_trades: 3 });
    expect(alpha.win_rate).toBeCloseTo(2 / 3, 12);
    const alphaNets = messages.filter((m) => m.source === 'alpha').map((m) => m.net_pnl_usd);
    expect(alpha.net_pnl_usd).toBeCloseTo(alphaNets.reduce((a, b) => a + b, 0), 8);
    expect(alpha.profit_factor).toBeCloseTo((alphaNets[0]! + alphaNets[2]!) / -alphaNets[1]!, 6);
    expect(alpha.calibration.map((r) => [r.from, r.to, r.count, r.win_rate])).toEqual([
      [0.7, 0.75, 2, 0.5],
      [0.9, 0.95, 1, 1],
    ]);
    expect(alpha.calibration[0]!.wilson_low).toBeLessThan(0.5);
    expect(alpha.brier_score).toBeCloseTo(((0.7 - 1) ** 2 + 0.72 ** 2 + (0.9 - 1) ** 2) / 3, 10);
    expect(beta).toMatchObject({ trades: 1, wins: 1, approved: 1, rejected: 1, signals: 2, rejected_by_reason: { LOW_CONFIDENCE: 1 } });
    expect(beta.win_rate).toBe(1);
    // The closes went through the risk gate as signals of source manual_close: decisions, no trades.
    expect(manual).toMatchObject({ approved: 4, trades: 0 });
  });

  it('a source whose confidence distribution shifts publishes model.drift (ks) once', async () => {
    // Reference: five trades at ~0.7, winning 3 of 5 (calibrated); then four at ~0.95, all winning.
    const reference = [0.7, 0.71, 0.72, 0.7, 0.71];
    const wins = [true, false, true, true, false];
    for (let i = 0; i < reference.length; i += 1) await roundTrip('drifty', reference[i]!, 3000, 2990, wins[i] ? 3030 : 2985, 'ETHUSDT');
    expect((await drift()).filter((d) => d.source === 'drifty' && d.test === 'ks')).toEqual([]);
    for (const c of [0.95, 0.96, 0.97, 0.98]) await roundTrip('drifty', c, 3000, 2990, 3030, 'ETHUSDT');
    const changes = await poll(async () => {
      const list = (await drift()).filter((d) => d.source === 'drifty' && d.test === 'ks');
      return list.length > 0 ? list : null;
    }, 'a model.drift ks event for drifty');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ source: 'drifty', test: 'ks', state: 'drift', statistic: 1, alpha: 0.05, reference_trades: 5, recent_trades: 4 });
    // 2 of the C(9, 4) = 126 paths are as extreme as total separation (scipy ks_2samp exact).
    expect(changes[0]!.p_value).toBeCloseTo(2 / 126, 12);
    const { sources } = await getJson<{ sources: SourceReport[] }>(url('monitor', '/sources'));
    expect(sources.find((s) => s.source === 'drifty')!.drift.ks.state).toBe('drift');
    expect(sources.find((s) => s.source === 'alpha')!.drift.ks.state).toBe('ok');
    const metrics = await (await fetch(url('monitor', '/metrics'))).text();
    expect(metrics).toMatch(/qt_model_drift_changes_total\{[^}]*test="ks"[^}]*state="drift"[^}]*\} 1/);
    expect(metrics).toMatch(/qt_model_drift_sources\{[^}]*test="ks"[^}]*\} 1/);
    expect(loop.services.procs.monitor.stdout + loop.services.procs.monitor.stderr).toContain('model drift: source drifty fails the ks test');
  });

  it('kill -9 of the monitor mid-run: no missing and no duplicate rl.feedback message', async () => {
    const before = (await feedback()).length;
    const symbols = ['BTCUSDT', 'ETHUSDT', 'BNBUSDT', 'SOLUSDT', 'XRPUSDT'];
    const publish = async (from: number, to: number) => {
      for (let i = from; i < to; i += 1) {
        const symbol = symbols[i % symbols.length]!;
        await loop.bus.publish(TOPICS.signal, { signal_id: `kill-open-${i}`, symbol, action: 'BUY', confidence: 0.8, source: 'burst' });
        await loop.bus.publish(TOPICS.signal, { signal_id: `kill-close-${i}`, symbol, action: 'CLOSE', confidence: 0.8, source: 'burst' });
      }
    };
    // The first half flows; the monitor is killed once it has written some of its feedback
    // (its batches are in flight), the second half arrives while it is down.
    await publish(0, 20);
    await poll(async () => ((await feedback()).length > before ? true : null), 'the first feedback of the burst');
    const killed = await loop.services.procs.monitor.kill();
    expect(killed.signal).toBe('SIGKILL');
    await publish(20, 40);
    await loop.services.restart('monitor');
    // Every signal decided and filled, and the monitor through all of it.
    await poll(async () => {
      const settled =
        (await isSettled(loop.bus, GROUPS.risk, [TOPICS.signal, TOPICS.execution])) &&
        (await isSettled(loop.bus, GROUPS.execution, [TOPICS.safe])) &&
        (await isSettled(loop.bus, GROUPS.monitor, [TOPICS.execution, TOPICS.decisions, TOPICS.tick]));
      return settled ? true : null;
    }, 'every service to settle after the restart', 60_000);
    const closes = (await fills()).filter((f) => f.signal_id.startsWith('kill-close-'));
    expect(closes.length).toBeGreaterThan(0);
    const burst = (await feedback()).slice(before);
    expect(burst.map((m) => m.exit_signal_id).sort()).toEqual(closes.map((c) => c.signal_id).sort());
    expect(new Set(burst.map((m) => m.trade_id)).size).toBe(burst.length);
    const opens = new Map((await fills()).map((f) => [f.order_id, f]));
    for (const m of burst) {
      const open = opens.get(m.trade_id)!;
      const close = closes.find((c) => c.signal_id === m.exit_signal_id)!;
      expect(m.source).toBe('burst');
      expect(m.hold_ms).toBe(close.ts - open.ts);
      expect(m.fees_usd).toBeCloseTo(open.fee_usd + close.fee_usd, 8);
    }
    const { sources } = await getJson<{ sources: SourceReport[] }>(url('monitor', '/sources'));
    expect(sources.find((s) => s.source === 'burst')!.trades).toBe(burst.length);
  }, 120_000);

  it('without a usable snapshot the monitor rebuilds the same /sources from the streams, and publishes no feedback again', async () => {
    const before = await getJson<{ sources: SourceReport[] }>(url('monitor', '/sources'));
    const messages = (await feedback()).length;
    await loop.services.procs.monitor.kill();
    await loop.bus.setValue(snapshotKey('monitor'), 'not a snapshot');
    await loop.services.restart('monitor');
    const after = await getJson<{ sources: SourceReport[] }>(url('monitor', '/sources'));
    expect(loop.services.procs.monitor.stdout + loop.services.procs.monitor.stderr).toMatch(/state rebuilt from the streams/);
    // The drift state changes are replayed, so `since_ts` is the rebuild's time; the rest is the same.
    const strip = (list: SourceReport[]) =>
      list.map((s) => ({ ...s, drift: { ks: { ...s.drift.ks, since_ts: null }, calibration: { ...s.drift.calibration, since_ts: null } } }));
    expect(strip(after.sources)).toEqual(strip(before.sources));
    expect((await feedback()).length).toBe(messages);
  });

  it('a bad feedback config value stops the monitor with exit code 2 naming the key', async () => {
    const env = deploymentEnv({ ...loop.services.deployment, configPath: writeConfig({ feedback: { recent_trades: 1 } }) });
    const run = await runQuantum(['monitor'], env);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('feedback.recent_trades');
  });
});
