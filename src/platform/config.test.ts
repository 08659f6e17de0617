import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_INSTRUMENTS, defaultConfig, loadConfig, staleAfterMs } from './config.js';

function folderWith(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'qt-config-'));
  writeFileSync(join(dir, 'quantum.config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(2);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('gives the SPEC defaults when there is no file and no environment', () => {
    const config = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'qt-empty-')) });
    expect(config.redis_url).toBeUndefined();
    expect(config.stream_prefix).toBe('');
    expect(config.host).toBe('127.0.0.1');
    expect(config.ports).toEqual({ risk: 8003, execution: 8002, monitor: 8004, dashboard: 8000 });
    expect(config.account.initial_balance_usd).toBe(10_000);
    expect(config.risk).toMatchObject({
      min_confidence: 0.65,
      max_position_pct: 0.1,
      max_exposure_pct: 0.5,
      max_drawdown_pct: 0.15,
      kelly_fraction: 0.25,
      cooldown_minutes: 60,
      max_daily_entries: 20,
      min_order_notional_usd: 10,
      default_stop_pct: 0.02,
    });
    expect(config.execution).toEqual({
      fee_rate: 0.0004,
      max_slippage_pct: 0.001,
      price_interval_ms: 5000,
      price_step_pct: 0.001,
      max_price_deviation_pct: 0.05,
    });
    expect(config.risk.max_signal_age_ms).toBe(60_000);
    expect(config.market).toMatchObject({ max_clock_skew_ms: 5000, max_tick_jump_pct: 0.2 });
    expect(config.monitor.mark_interval_ms).toBe(30_000);
    expect(config.instruments.map((i) => i.symbol)).toEqual(DEFAULT_INSTRUMENTS.map((i) => i.symbol));
  });

  it('reads quantum.config.json from the working folder and freezes the result', () => {
    const cwd = folderWith({ risk: { min_confidence: 0.7 }, ports: { risk: 9003 } });
    const config = loadConfig({ env: {}, cwd });
    expect(config.risk.min_confidence).toBe(0.7);
    expect(config.risk.max_position_pct).toBe(0.1);
    expect(config.ports.risk).toBe(9003);
    expect(config.ports.execution).toBe(8002);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.risk)).toBe(true);
  });

  it('uses the --config path, then QT_CONFIG, over the local file', () => {
    const local = folderWith({ seed: 1 });
    const other = folderWith({ seed: 2 });
    expect(loadConfig({ env: {}, cwd: local }).seed).toBe(1);
    expect(loadConfig({ env: { QT_CONFIG: join(other, 'quantum.config.json') }, cwd: local }).seed).toBe(2);
    expect(loadConfig({ configPath: join(other, 'quantum.config.json'), env: {}, cwd: local }).seed).toBe(2);
  });

  it('lets environment variables override the file', () => {
    const cwd = folderWith({ seed: 1, host: '0.0.0.0', ports: { monitor: 9004 } });
    const config = loadConfig({
      cwd,
      env: {
        QT_SEED: '7',
        QT_HOST: '127.0.0.2',
        QT_MONITOR_PORT: '9104',
        REDIS_URL: 'redis://127.0.0.1:6380',
        QT_STREAM_PREFIX: '{acct7}:',
        QT_API_TOKEN: 'secret-token',
      },
    });
    expect(config.seed).toBe(7);
    expect(config.host).toBe('127.0.0.2');
    expect(config.ports.monitor).toBe(9104);
    expect(config.redis_url).toBe('redis://127.0.0.1:6380');
    expect(config.stream_prefix).toBe('{acct7}:');
    expect(config.api_token).toBe('secret-token');
  });

  it('applies command-line overrides last', () => {
    const config = loadConfig({ env: { REDIS_URL: 'redis://a:1' }, cwd: folderWith({}), overrides: { redis_url: 'redis://b:2' } });
    expect(config.redis_url).toBe('redis://b:2');
  });

  it.each([
    [{ colour: 'blue' }, 'colour: unknown key'],
    [{ risk: { min_confidance: 0.7 } }, 'risk.min_confidance: unknown key'],
    [{ risk: { min_confidence: 1.5 } }, 'risk.min_confidence'],
    [{ ports: { risk: 'eight' } }, 'ports.risk'],
    [{ redis_url: 'http://x' }, 'redis_url: must be a redis:// or rediss:// URL'],
    [{ instruments: [{ symbol: 'btc', tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 1 }] }, 'instruments.0.symbol'],
    [{ execution: { price_interval_ms: -1 } }, 'execution.price_interval_ms'],
    // Degenerate values that would refuse or halt everything (issue #11).
    [{ risk: { kelly_fraction: 0 } }, 'risk.kelly_fraction: must be above 0'],
    [{ risk: { max_drawdown_pct: 0 } }, 'risk.max_drawdown_pct: must be above 0'],
    [{ risk: { max_position_pct: 0 } }, 'risk.max_position_pct: must be above 0'],
    [{ ports: { risk: 9000, monitor: 9000 } }, 'ports.monitor: port 9000 is also ports.risk'],
    [{ instruments: [{ symbol: 'BTCUSDT', tick_size: 5, step_size: 0.001, min_notional_usd: 10, start_price: 1 }] }, 'instruments.0.tick_size: tick_size must not exceed start_price'],
    [{ execution: { price_step_pct: 0.3 } }, 'execution.price_step_pct: must be below market.max_tick_jump_pct'],
    [{ market: { max_tick_jump_pct: 0 } }, 'market.max_tick_jump_pct'],
    [{ execution: { max_price_deviation_pct: 0 } }, 'execution.max_price_deviation_pct'],
    // Protections (docs/protections.md).
    [{ risk: { max_daily_loss_pct: 1.5 } }, 'risk.max_daily_loss_pct'],
    [{ risk: { max_orders_per_second: 2.5 } }, 'risk.max_orders_per_second'],
    [{ risk: { max_orders_per_minute: -1 } }, 'risk.max_orders_per_minute'],
    [{ risk: { max_notional_per_order_usd: -5 } }, 'risk.max_notional_per_order_usd'],
    [{ risk: { max_open_positions: 'three' } }, 'risk.max_open_positions'],
    [{ risk: { max_source_drawdown_pct: 2 } }, 'risk.max_source_drawdown_pct'],
    [{ protections: [{ kind: 'stoplossguard', stop_minutes: 10 }] }, 'protections.0.kind'],
    [{ protections: [{ kind: 'cooldown' }] }, 'protections.0.stop_minutes'],
    [{ protections: [{ kind: 'stoploss_guard', stop_minutes: 10, trade_limit: 0 }] }, 'protections.0.trade_limit'],
    [{ protections: [{ kind: 'max_drawdown', stop_minutes: 10 }] }, 'protections.0.max_allowed_drawdown_pct: is required for kind max_drawdown'],
    [{ protections: [{ kind: 'cooldown', stop_minutes: 10, required_profit_pct: 0.1 }] }, 'protections.0.required_profit_pct: applies only to kind low_profit'],
    [{ protections: [{ kind: 'cooldown', stop_minutes: 10, lookback: 5 }] }, 'protections.0.lookback: unknown key'],
  ])('rejects %j naming the key', (file, expected) => {
    const problems = problemsOf(() => loadConfig({ env: {}, cwd: folderWith(file) }));
    expect(problems.join('\n')).toContain(expected);
  });

  it('reports every problem at once', () => {
    const problems = problemsOf(() => loadConfig({ env: {}, cwd: folderWith({ seed: -1, risk: { kelly_fraction: 2 }, extra: 1 }) }));
    expect(problems).toHaveLength(3);
  });

  it('names the environment variable behind a bad value', () => {
    const problems = problemsOf(() => loadConfig({ env: { QT_RISK_PORT: 'abc' }, cwd: folderWith({}) }));
    expect(problems.join('\n')).toContain('ports.risk (from QT_RISK_PORT)');
    const range = problemsOf(() => loadConfig({ env: { QT_EXECUTION_PORT: '70000' }, cwd: folderWith({}) }));
    expect(range.join('\n')).toContain('ports.execution (from QT_EXECUTION_PORT)');
  });

  it('says when the file is not JSON', () => {
    const problems = problemsOf(() => loadConfig({ env: {}, cwd: folderWith('{ not json') }));
    expect(problems.join('\n')).toMatch(/not valid JSON/);
  });

  it('says when an explicit config file is missing', () => {
    const problems = problemsOf(() => loadConfig({ configPath: '/nonexistent/qt.json', env: {} }));
    expect(problems.join('\n')).toContain('/nonexistent/qt.json');
  });

  it('rejects duplicate instrument symbols', () => {
    const btc = DEFAULT_INSTRUMENTS[0];
    expect(() => defaultConfig({ instruments: [btc, btc] })).toThrow(/symbols must be unique/);
  });
});

describe('market', () => {
  it('defaults: the simulator with a 0.0002 spread, 100 ms conflation, Binance spot; the tick gate limits', () => {
    expect(defaultConfig().market).toEqual({
      source: 'simulator',
      simulator_spread_pct: 0.0002,
      min_tick_interval_ms: 100,
      binance: { market: 'spot' },
      max_clock_skew_ms: 5000,
      max_tick_jump_pct: 0.2,
    });
  });

  it('refuses a simulator spread whose half reaches the tick jump limit (the gate would refuse its quotes)', () => {
    expect(problemsOf(() => defaultConfig({ market: { simulator_spread_pct: 0.08, max_tick_jump_pct: 0.04 } }))).toEqual([
      expect.stringMatching(/^market\.simulator_spread_pct/),
    ]);
  });

  it.each([
    ['simulator, unset', {}, 0],
    ['binance, unset', { source: 'binance' }, 15_000],
    ['binance, set', { source: 'binance', stale_after_ms: 2500 }, 2500],
    ['binance, off', { source: 'binance', stale_after_ms: 0 }, 0],
    ['simulator, set', { stale_after_ms: 60_000 }, 60_000],
  ])('stale_after_ms in force: %s', (_name, market, expected) => {
    expect(staleAfterMs(defaultConfig({ market }))).toBe(expected);
  });

  it('names every bad market key', () => {
    const problems = problemsOf(() =>
      defaultConfig({
        market: { source: 'kraken', simulator_spread_pct: -1, stale_after_ms: 1.5, min_tick_interval_ms: -5, binance: { market: 'coinm', ws_url: 'http://x' }, extra: 1 },
      }),
    );
    for (const key of ['market.source', 'market.simulator_spread_pct', 'market.stale_after_ms', 'market.min_tick_interval_ms', 'market.binance.market', 'market.binance.ws_url', 'market.extra']) {
      expect(problems.some((p) => p.startsWith(key)), `${key} in ${problems.join(' | ')}`).toBe(true);
    }
  });
});

describe('exits config', () => {
  it('is off by default and names a bad key', () => {
    expect(defaultConfig().exits).toEqual({ stop_loss_pct: 0, take_profit_pct: 0, trailing_stop_pct: 0, max_hold_minutes: 0 });
    const problems = problemsOf(() => loadConfig({ env: {}, cwd: folderWith({ exits: { trailing_stop_pct: 1.5, stop_lose_pct: 0.1 } }) }));
    expect(problems.join('\n')).toMatch(/exits\.trailing_stop_pct/);
    expect(problems.join('\n')).toMatch(/exits\.stop_lose_pct: unknown key/);
  });
});

describe('feedback config', () => {
  it('defaults to windows of 200 and 50 round trips and a KS alpha of 0.01', () => {
    expect(defaultConfig().feedback).toEqual({ reference_trades: 200, recent_trades: 50, ks_alpha: 0.01 });
  });

  it.each([
    [{ reference_trades: 1 }, 'feedback.reference_trades'],
    [{ reference_trades: 10.5 }, 'feedback.reference_trades'],
    [{ recent_trades: 0 }, 'feedback.recent_trades'],
    [{ recent_trades: 5000 }, 'feedback.recent_trades'],
    [{ ks_alpha: 0 }, 'feedback.ks_alpha'],
    [{ ks_alpha: 1 }, 'feedback.ks_alpha'],
    [{ ks_alpha: 'often' }, 'feedback.ks_alpha'],
    [{ recent_window: 5 }, 'feedback.recent_window: unknown key'],
  ])('stops start-up (exit code 2) on %j naming %s', (feedback, key) => {
    const problems = problemsOf(() => loadConfig({ env: {}, cwd: folderWith({ feedback }) }));
    expect(problems.join('\n')).toContain(key);
  });
});
