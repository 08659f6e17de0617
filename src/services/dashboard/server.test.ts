/**
 * The dashboard's routes on a real in-process loop (embedded bus, services listening on
 * free ports), through Fastify `inject`; one test reads the event stream over HTTP.
 */
import { request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../../bus/bus.js';
import { EmbeddedBus } from '../../bus/embedded.js';
import { createBus } from '../../bus/factory.js';
import { publishTradeSignal } from '../../bus/publish.js';
import { TOPICS } from '../../bus/topics.js';
import { defaultConfig, type Config } from '../../platform/config.js';
import { systemClock } from '../../platform/clock.js';
import { silentLogger } from '../../platform/logger.js';
import { freePort } from '../../../test/helpers/ports.js';
import { cleanupPrefix, redisUrl, startPrivateRedis, uniquePrefix, waitFor } from '../../../test/helpers/redis.js';
import { startLoop, type Loop } from '../loop.js';
import { buildDashboardApp, startDashboard, type DashboardState } from './server.js';
import type { Upstream } from './upstream.js';

const TOKEN = 'test-token-0123';

interface Harness {
  bus: EventBus;
  loop: Loop;
  config: Config;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function settings(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ports: { risk: 0, execution: 0, monitor: 0, dashboard: 0 },
    execution: { price_interval_ms: 0 },
    monitor: { mark_interval_ms: 0 },
    ...extra,
  };
}

/** The loop as `quantum up --no-demo` runs it, and the config pointing at its real ports. */
async function startHarness(extra: Record<string, unknown> = {}, bus: EventBus = new EmbeddedBus()): Promise<Harness> {
  const loop = await startLoop({ bus, config: defaultConfig(settings(extra)), clock: systemClock, logger: silentLogger, listen: true, demo: false });
  cleanups.push(async () => {
    await loop.stop();
    await bus.close();
  });
  const config = defaultConfig(
    settings({ ...extra, ports: { risk: loop.risk.port, execution: loop.execution.port, monitor: loop.monitor.port, dashboard: 0 } }),
  );
  return { bus, loop, config };
}

async function build(h: Pick<Harness, 'bus' | 'config'>, upstream?: Upstream) {
  // Timers far away: these tests drive the hub by hand (pollOnce, refresh).
  const built = await buildDashboardApp({
    bus: h.bus,
    config: h.config,
    clock: systemClock,
    logger: silentLogger,
    upstream,
    pollIntervalMs: 60_000,
    healthIntervalMs: 60_000,
  });
  cleanups.push(async () => {
    await built.hub.stop();
    await built.app.close();
  });
  return built;
}

function until<T>(probe: () => Promise<T> | T, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  return waitFor(probe, { what, timeoutMs });
}


describe('GET /api/state', () => {
  it('gives the header figures of the monitor, positions, decisions with reasons, fills and health', async () => {
    const h = await startHarness();
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await publishTradeSignal(h.bus, 'ETHUSDT', 'BUY', 0.3, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the BTCUSDT fill');
    await until(async () => (await h.bus.length(TOPICS.rejected)) === 1, 'the rejection');
    await until(async () => (await h.bus.length(TOPICS.position)) >= 1, 'the position update');

    const { app, hub } = await build(h);
    await hub.start();
    const response = await app.inject({ method: 'GET', url: '/api/state' });
    expect(response.statusCode).toBe(200);
    const state = response.json<DashboardState>();

    const portfolio = (await h.loop.monitor.app.inject({ method: 'GET', url: '/portfolio' })).json<Record<string, number>>();
    expect(state.portfolio.source).toBe('monitor');
    for (const key of ['equity_usd', 'balance_usd', 'realized_pnl_usd', 'unrealized_pnl_usd', 'drawdown_pct', 'exposure_pct'] as const) {
      expect(state.portfolio[key], key).toBeCloseTo(portfolio[key]!, 9);
    }
    expect(state.positions).toEqual([expect.objectContaining({ symbol: 'BTCUSDT', side: 'LONG' })]);

    // Newest first, approvals and rejections merged.
    expect(state.decisions.map((d) => [d.symbol, d.verdict])).toEqual([
      ['ETHUSDT', 'REJECTED'],
      ['BTCUSDT', 'APPROVED'],
    ]);
    const rejected = state.decisions.find((d) => d.verdict === 'REJECTED')!;
    expect(rejected.reasons).toContain('LOW_CONFIDENCE');
    expect(rejected).not.toHaveProperty('checks');

    expect(state.fills).toEqual([expect.objectContaining({ symbol: 'BTCUSDT', side: 'BUY', status: 'FILLED' })]);
    expect(state.equity.length).toBeGreaterThanOrEqual(1);
    expect(state.risk).toMatchObject({ trading_state: 'ACTIVE', approval_rate: 0.5, stale: false });
    expect(state.execution).toMatchObject({ fills: 1, fill_rate: 1, stale: false });

    expect(state.health.services.map((s) => [s.name, s.status])).toEqual([
      ['risk', 'up'],
      ['execution', 'up'],
      ['monitor', 'up'],
    ]);
    // The price source and the latest quotes (the simulator's synthetic spread here).
    expect(state.health.market).toMatchObject({ source: 'simulator', connected: true, reconnects: 0, gaps: 0 });
    const btc = state.health.market!.quotes.BTCUSDT!;
    expect(btc.bid).toBeLessThan(btc.ask);
    const signal = state.health.streams.find((s) => s.topic === TOPICS.signal)!;
    expect(signal.length).toBe(2);
    expect(signal.groups.map((g) => g.name)).toEqual(['risk-safety']);
    expect(state.health.dlq.every((d) => d.length === 0)).toBe(true);
    // The dashboard never joins a consumer group.
    for (const s of state.health.streams) expect(s.groups.map((g) => g.name)).not.toContain('dashboard');
  });

  it('serves a decision record with its checks and sizing', async () => {
    const h = await startHarness();
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(async () => (await h.bus.length(TOPICS.safe)) === 1, 'the approval');
    const { app, hub } = await build(h);
    await hub.start();
    const key = hub.state().decisions[0]!.key;
    const record = (await app.inject({ method: 'GET', url: `/api/decisions/${encodeURIComponent(key)}` })).json();
    expect(record.verdict).toBe('APPROVED');
    expect(record.checks.length).toBeGreaterThan(0);
    expect(record.checks[0]).toEqual(expect.objectContaining({ rule: expect.any(String), passed: expect.any(Boolean) }));
    expect(record.sizing).toEqual(expect.objectContaining({ p: 0.8, kelly_fraction: 0.25 }));
    const missing = await app.inject({ method: 'GET', url: '/api/decisions/approved:1-0' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'not_found' });
  });

  it('falls back to the latest position update, and shows services down, when nothing answers', async () => {
    const h = await startHarness();
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the fill');
    await until(async () => (await h.bus.length(TOPICS.position)) >= 1, 'the position update');
    const expected = h.loop.monitor.service.state.portfolio();
    const down: Upstream = {
      baseUrl: (s) => `http://127.0.0.1:1/${s}`,
      get: async () => {
        throw Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      },
      post: async () => {
        throw Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      },
    };
    const { app, hub } = await build(h, down);
    await hub.start();
    const state = (await app.inject({ method: 'GET', url: '/api/state' })).json<DashboardState>();
    expect(state.portfolio.source).toBe('bus');
    expect(state.portfolio.equity_usd).toBeCloseTo(expected.equity_usd, 6);
    expect(state.portfolio.realized_pnl_usd).toBeCloseTo(expected.realized_pnl_usd, 6);
    expect(state.positions.map((p) => p.symbol)).toEqual(['BTCUSDT']);
    expect(state.health.services.map((s) => [s.status, s.detail])).toEqual([
      ['down', 'connection refused'],
      ['down', 'connection refused'],
      ['down', 'connection refused'],
    ]);

    const close = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT' });
    expect(close.statusCode).toBe(502);
    expect(close.json()).toMatchObject({ error: 'monitor_unreachable' });
  });

  it('picks up new entries on the next poll, without a consumer group', async () => {
    const h = await startHarness();
    const { app, hub } = await build(h);
    await hub.start();
    expect(hub.state().fills).toEqual([]);
    await publishTradeSignal(h.bus, 'SOLUSDT', 'BUY', 0.9, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the fill');
    await until(async () => (await h.bus.length(TOPICS.position)) >= 1, 'the position update');
    const events: string[] = [];
    hub.subscribe((e) => events.push(e.event));
    expect(await hub.pollOnce()).toBe(true);
    await hub.refresh();
    expect(events).toEqual(expect.arrayContaining(['equity', 'decisions', 'fills', 'portfolio', 'stats']));
    const state = (await app.inject({ method: 'GET', url: '/api/state' })).json<DashboardState>();
    expect(state.fills.map((f) => f.symbol)).toEqual(['SOLUSDT']);
    expect(state.decisions.map((d) => d.verdict)).toEqual(['APPROVED']);
    expect((await h.bus.info(TOPICS.execution)).groups.map((g) => g.name)).toEqual(['position-monitor', 'risk-safety']);
  });
});

describe('POST /api/close/:symbol', () => {
  it('passes the monitor 404 through when no position is open', async () => {
    const h = await startHarness();
    const { app } = await build(h);
    const response = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({ error: 'no_position', message: 'no open position in BTCUSDT' });
  });

  it('closes an open position and returns the fill and realized PnL', async () => {
    const h = await startHarness();
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the fill');
    const { app } = await build(h);
    const response = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT' });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ closed: true, fill: { symbol: 'BTCUSDT', side: 'SELL', status: 'FILLED', origin: 'manual_close' } });
    expect(typeof body.realized_pnl_usd).toBe('number');
    expect(h.loop.monitor.service.positions()).toEqual([]);
  });

  it('refuses a malformed symbol with 400 naming the field', async () => {
    const h = await startHarness();
    const { app } = await build(h);
    const response = await app.inject({ method: 'POST', url: '/api/close/btc-usdt' });
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(/symbol/);
  });
});

describe('POST /api/halt and /api/resume (the kill switch, docs/protections.md)', () => {
  it('halts with flatten through the risk service, shows it in the stats, and resumes', async () => {
    const h = await startHarness();
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the fill');
    const { app, hub } = await build(h);
    const halt = await app.inject({ method: 'POST', url: '/api/halt', payload: { reason: 'dashboard test', flatten: true } });
    expect(halt.statusCode, halt.body).toBe(200);
    expect(halt.json()).toMatchObject({ kill_switch: { reason: 'dashboard test' }, closes: [{ symbol: 'BTCUSDT', side: 'SELL' }] });
    await until(() => h.loop.monitor.service.positions().length === 0, 'the kill switch close');
    await hub.refresh();
    const state = (await app.inject({ method: 'GET', url: '/api/state' })).json<DashboardState>();
    expect(state.risk).toMatchObject({ trading_state: 'HALTED', kill_switch: { reason: 'dashboard test' }, entry_state: { state: 'HALTED', reason: 'kill switch: dashboard test' } });
    expect((await app.inject({ method: 'POST', url: '/api/halt', payload: { flatten: 'yes' } })).statusCode).toBe(400);
    const resumed = await app.inject({ method: 'POST', url: '/api/resume' });
    expect(resumed.statusCode).toBe(200);
    expect(resumed.json()).toMatchObject({ trading_state: 'ACTIVE', kill_switch: null });
  });
});

describe('the token rule (api_token set)', () => {
  it('needs the bearer token on POST and on the API, adds it when proxying, and leaves the page open', async () => {
    const h = await startHarness({ api_token: TOKEN });
    const { app } = await build(h);
    const auth = { authorization: `Bearer ${TOKEN}` };

    const noToken = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT' });
    expect(noToken.statusCode).toBe(401);
    expect(noToken.json()).toMatchObject({ error: 'unauthorized' });
    const wrong = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT', headers: { authorization: 'Bearer nope-nope-nope' } });
    expect(wrong.statusCode).toBe(401);
    // With the token the close reaches the monitor (which needs it too: the proxy adds it).
    const passed = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT', headers: auth });
    expect(passed.statusCode).toBe(404);
    expect(passed.json()).toMatchObject({ error: 'no_position' });

    expect((await app.inject({ method: 'GET', url: '/api/state' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/state', headers: auth })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/state?token=' + TOKEN })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/events?token=wrong-token-0' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/decisions/x' })).statusCode).toBe(401);

    for (const url of ['/', '/assets/app.js', '/assets/style.css', '/assets/lightweight-charts.js']) {
      const page = await app.inject({ method: 'GET', url });
      expect(page.statusCode, url).toBe(200);
    }
  });

  it('asks for nothing when no token is configured', async () => {
    const h = await startHarness();
    const { app } = await build(h);
    expect((await app.inject({ method: 'GET', url: '/api/state' })).json<DashboardState>().settings.token_required).toBe(false);
  });
});

describe('the page and its assets', () => {
  it('serves the page, the script, the styles and the charting library from node_modules', async () => {
    const h = await startHarness();
    const { app } = await build(h);
    const page = await app.inject({ method: 'GET', url: '/' });
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('/assets/lightweight-charts.js');
    // Nothing is loaded from elsewhere (no CDN: there may be no internet).
    expect(page.body).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/);
    const lib = await app.inject({ method: 'GET', url: '/assets/lightweight-charts.js' });
    expect(lib.headers['content-type']).toMatch(/javascript/);
    expect(lib.body).toContain('LightweightCharts');
    expect((await app.inject({ method: 'GET', url: '/health' })).json()).toMatchObject({ status: 'ok', service: 'dashboard' });
  });
});

describe('GET /api/events', () => {
  it('streams the full state on connect and then live changes; the token may ride on ?token=; stop ends it', async () => {
    const h = await startHarness({ api_token: TOKEN });
    const running = await startDashboard({
      bus: h.bus,
      config: h.config,
      clock: systemClock,
      logger: silentLogger,
      listen: true,
      port: await freePort(),
      pollIntervalMs: 50,
    });
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await running.stop();
    });
    expect(running.url).toBe(`http://127.0.0.1:${running.port}/`);

    let text = '';
    let status = 0;
    let contentType = '';
    const ended = new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${running.url}api/events?token=${TOKEN}`, (res) => {
        status = res.statusCode ?? 0;
        contentType = String(res.headers['content-type']);
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    await until(() => text.includes('event: state'), 'the state event');
    expect(status).toBe(200);
    expect(contentType).toMatch(/text\/event-stream/);
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(() => text.includes('event: fills'), 'a fills event');
    expect(text).toMatch(/^retry: \d+/);
    const fills = text.split('\n\n').find((block) => block.startsWith('event: fills'))!;
    const data = JSON.parse(fills.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    expect(data.items[0]).toMatchObject({ symbol: 'BTCUSDT', status: 'FILLED' });

    // An open stream must not keep the dashboard from stopping.
    await running.stop();
    stopped = true;
    await ended;
  });
});

describe('on Redis', () => {
  it('reads the history back and follows the tail without ever creating a consumer group', async () => {
    const prefix = uniquePrefix('dashboard');
    const bus = await createBus({ redisUrl: redisUrl(), prefix });
    cleanups.push(() => cleanupPrefix(redisUrl(), prefix));
    const h = await startHarness({}, bus);
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the first fill');
    await until(async () => (await h.bus.length(TOPICS.position)) === 1, 'the first position update');

    const { hub } = await build(h);
    await hub.start();
    expect(hub.state().fills.map((f) => f.symbol)).toEqual(['BTCUSDT']);
    await publishTradeSignal(h.bus, 'ETHUSDT', 'BUY', 0.8, 'test');
    await until(() => h.loop.monitor.service.positions().length === 2, 'the second fill');
    await until(async () => (await h.bus.length(TOPICS.position)) === 2, 'the second position update');
    await hub.pollOnce();
    await hub.refresh();
    const state = hub.state();
    expect(state.fills.map((f) => f.symbol)).toEqual(['ETHUSDT', 'BTCUSDT']);
    expect(state.positions.map((p) => p.symbol)).toEqual(['BTCUSDT', 'ETHUSDT']);
    expect(state.health.bus).toEqual({ kind: 'redis', connected: true, down_since: null, back_at: null, last_outage_ms: null });
    for (const topic of [TOPICS.position, TOPICS.safe, TOPICS.rejected, TOPICS.execution]) {
      expect((await h.bus.info(topic)).groups.map((g) => g.name)).not.toContain('dashboard');
    }
    expect((await h.bus.info(TOPICS.position)).groups).toEqual([]);
  });
});

describe('the trading state that blocks entries', () => {
  it('says COOLDOWN until the end of the cooldown after a losing round trip, and DAILY_LIMIT once the entries are used up', async () => {
    const h = await startHarness();
    const { hub } = await build(h);
    await hub.refresh();
    expect(hub.state().risk?.entry_state).toEqual({ state: 'ACTIVE', until: null, reason: null });

    // A round trip at an unchanged price loses its fees: the cooldown starts.
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'test');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the entry');
    await publishTradeSignal(h.bus, 'BTCUSDT', 'CLOSE', 0.8, 'test');
    await until(() => h.loop.risk.service.stats().closed_trades === 1, 'the close, seen by risk');
    await hub.refresh();
    const cooldown = hub.state().risk!.entry_state;
    expect(cooldown.state).toBe('COOLDOWN');
    expect(cooldown.until).toBe(h.loop.risk.service.stats().cooldown_until);

    const other = await startHarness({ risk: { max_daily_entries: 1, cooldown_minutes: 0 } });
    await publishTradeSignal(other.bus, 'ETHUSDT', 'BUY', 0.8, 'test');
    await until(() => other.loop.monitor.service.positions().length === 1, 'the only entry of the day');
    const { hub: otherHub } = await build(other);
    await otherHub.refresh();
    expect(otherHub.state().risk?.entry_state).toMatchObject({ state: 'DAILY_LIMIT', reason: null });
  });

  it('says when the bus went down and when it came back (a private Redis stopped and started)', async () => {
    const redis = await startPrivateRedis({ appendonly: false });
    cleanups.push(() => redis.destroy());
    const bus = await createBus({ redisUrl: redis.url, onError: () => undefined });
    const h = await startHarness({}, bus);
    const { hub } = await build(h);
    await hub.checkHealth();
    expect(hub.state().health.bus).toMatchObject({ connected: true, down_since: null, back_at: null });
    await redis.stop();
    await until(async () => {
      await hub.checkHealth();
      return !hub.state().health.bus.connected;
    }, 'the dashboard to see the bus down');
    expect(hub.state().health.bus.down_since).toEqual(expect.any(Number));
    await redis.start();
    await until(async () => {
      await hub.checkHealth();
      return hub.state().health.bus.connected;
    }, 'the dashboard to see the bus back', 30_000);
    expect(hub.state().health.bus).toMatchObject({ connected: true, down_since: null, back_at: expect.any(Number) });
  }, 60_000);
});

describe('GET /api/sources', () => {
  it("passes the monitor's GET /sources on, and says 502 when the monitor does not answer", async () => {
    const h = await startHarness();
    await publishTradeSignal(h.bus, 'BTCUSDT', 'BUY', 0.8, 'xgb');
    await until(() => h.loop.monitor.service.positions().length === 1, 'the fill');
    await publishTradeSignal(h.bus, 'BTCUSDT', 'CLOSE', 1, 'xgb');
    await until(() => h.loop.monitor.service.positions().length === 0, 'the close');
    const { app } = await build(h);
    const response = await app.inject({ method: 'GET', url: '/api/sources' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(h.loop.monitor.service.sources());
    expect(response.json().sources).toEqual([expect.objectContaining({ source: 'xgb', approved: 2, trades: 1 })]);

    const down: Upstream = {
      baseUrl: (s) => `http://127.0.0.1:1/${s}`,
      get: async () => {
        throw Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
      },
      post: async () => {
        throw new Error('not used');
      },
    };
    const { app: cut } = await build(h, down);
    const failed = await cut.inject({ method: 'GET', url: '/api/sources' });
    expect(failed.statusCode).toBe(502);
    expect(failed.json()).toMatchObject({ error: 'monitor_unreachable', message: expect.stringContaining('connection refused') });
  });
});
