/**
 * Hostile requests (issue #11 item 9): cross-site POSTs, foreign Host headers, bodies that
 * are not JSON, token checks on an encoded path, and /health while Redis stalls.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedBus } from '../src/bus/embedded.js';
import { createBus } from '../src/bus/factory.js';
import { acceptedHosts, contentTypeProblem, crossSiteProblem } from '../src/platform/http.js';
import { loadConfig } from '../src/platform/config.js';
import { systemClock } from '../src/platform/clock.js';
import { silentLogger } from '../src/platform/logger.js';
import { buildDashboardApp } from '../src/services/dashboard/server.js';
import { startPrivateRedis } from './helpers/redis.js';
import { request, testConfig, testScope } from './helpers/services.js';

const scope = testScope('http-safety');
afterEach(() => scope.teardown());

const EVIL = { origin: 'http://evil.example', 'content-type': 'text/plain' };

describe('cross-site and content-type rules on every service', () => {
  it('refuses POST /resume from a foreign Origin with text/plain (403), text/plain alone (415), and takes a same-origin JSON one', async () => {
    const bus = await scope.openBus();
    const risk = await scope.launch('risk', { bus });
    const evil = await risk.app.inject({ method: 'POST', url: '/resume', headers: EVIL, payload: 'x' });
    expect(evil.statusCode).toBe(403);
    expect(evil.json()).toMatchObject({ error: 'forbidden' });
    const plain = await risk.app.inject({ method: 'POST', url: '/resume', headers: { 'content-type': 'text/plain' }, payload: 'x' });
    expect(plain.statusCode).toBe(415);
    const form = await risk.app.inject({
      method: 'POST',
      url: '/resume',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'a=1',
    });
    expect(form.statusCode).toBe(415);
    // No body and no content type on a route that takes none: fine (curl -X POST).
    expect((await request(risk.app, 'POST', '/resume')).status).toBe(200);
    const sameOrigin = await risk.app.inject({
      method: 'POST',
      url: '/resume',
      headers: { host: '127.0.0.1:8003', origin: 'http://127.0.0.1:8003', 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(sameOrigin.statusCode).toBe(200);
  });

  it('refuses a body without a content type on a route that takes one, and a foreign Host everywhere', async () => {
    const bus = await scope.openBus();
    const execution = await scope.launch('execution', { bus });
    const noType = await execution.app.inject({ method: 'POST', url: '/prices/BTCUSDT', payload: Buffer.from('{"price":1}') });
    expect(noType.statusCode).toBe(415);
    const monitor = await scope.launch('monitor', { bus });
    const rebound = await monitor.app.inject({ method: 'GET', url: '/portfolio', headers: { host: 'evil.example:8004' } });
    expect(rebound.statusCode).toBe(403);
    expect(rebound.json().message).toContain('allowed_hosts');
  });

  it('accepts a Host listed in allowed_hosts (config or QT_ALLOWED_HOSTS)', async () => {
    const config = loadConfig({ env: { QT_ALLOWED_HOSTS: 'trader.internal, proxy.lan' }, cwd: '/nonexistent' });
    expect(config.allowed_hosts).toEqual(['trader.internal', 'proxy.lan']);
    const bus = await scope.openBus();
    const risk = await scope.launch('risk', { bus, config: testConfig({ allowed_hosts: ['trader.internal'] }) });
    const allowed = await risk.app.inject({ method: 'GET', url: '/stats', headers: { host: 'trader.internal:8003' } });
    expect(allowed.statusCode).toBe(200);
    const other = await risk.app.inject({ method: 'GET', url: '/stats', headers: { host: 'other.internal:8003' } });
    expect(other.statusCode).toBe(403);
  });

  it('names each rule in the pure checks', () => {
    const accepted = acceptedHosts('10.0.0.5', ['Trader.Example']);
    expect([...accepted].sort()).toEqual(['10.0.0.5', '127.0.0.1', '[::1]', 'localhost', 'trader.example'].sort());
    expect(acceptedHosts('0.0.0.0').has('0.0.0.0')).toBe(false);
    expect(crossSiteProblem({ host: '[::1]:8003' }, accepted)).toBeNull();
    expect(crossSiteProblem({ host: 'localhost:8003', origin: 'null' }, accepted)).toContain('Origin');
    expect(crossSiteProblem({ host: 'localhost:8003', origin: 'http://localhost:9999' }, accepted)).toContain('Origin');
    expect(contentTypeProblem({ 'content-type': 'application/json; charset=utf-8' }, true)).toBeNull();
    expect(contentTypeProblem({}, false)).toBeNull();
    expect(contentTypeProblem({}, true)).toContain('application/json');
    expect(contentTypeProblem({ 'content-length': '3' }, false)).toContain('application/json');
  });
});

describe('dashboard', () => {
  async function dashboard(patch: Record<string, unknown> = {}) {
    const bus = new EmbeddedBus();
    scope.defer(() => bus.close());
    const config = testConfig({ ports: { risk: 1, execution: 2, monitor: 3, dashboard: 0 }, ...patch });
    const { app, hub } = await buildDashboardApp({ bus, config, clock: systemClock, logger: silentLogger });
    scope.defer(async () => {
      await app.close();
      await hub.stop();
    });
    return app;
  }

  it('refuses a cross-site POST /api/close (403) before it reaches the monitor', async () => {
    const app = await dashboard();
    const res = await app.inject({ method: 'POST', url: '/api/close/BTCUSDT', headers: EVIL, payload: 'x' });
    expect(res.statusCode).toBe(403);
  });

  it('checks the token on the decoded path: GET /%61pi/state needs it like /api/state', async () => {
    const app = await dashboard({ api_token: 'test-token-0123' });
    expect((await app.inject({ method: 'GET', url: '/%61pi/state' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/%73tate' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/state' })).statusCode).toBe(401);
    const withToken = await app.inject({ method: 'GET', url: '/%61pi/state', headers: { authorization: 'Bearer test-token-0123' } });
    expect(withToken.statusCode).toBe(200);
  });
});

describe('/health while Redis stalls', () => {
  it('answers 503 (not a hang) on the services and the dashboard while the Redis process is stopped', async () => {
    const redis = await startPrivateRedis({ appendonly: false });
    scope.defer(() => redis.destroy());
    const bus = await createBus({ redisUrl: redis.url, prefix: scope.newPrefix(), onError: () => undefined });
    scope.defer(() => bus.close());
    const risk = await scope.launch('risk', { bus });
    const config = testConfig({ ports: { risk: 1, execution: 2, monitor: 3, dashboard: 0 } });
    const { app, hub } = await buildDashboardApp({ bus, config, clock: systemClock, logger: silentLogger });
    scope.defer(async () => {
      await app.close();
      await hub.stop();
    });
    expect((await request(risk.app, 'GET', '/health')).status).toBe(200);
    redis.pause();
    scope.defer(() => redis.resume());
    // The host caches a good answer for up to a second: poll until it asks again.
    const deadline = performance.now() + 5000;
    let status = 200;
    while (status === 200 && performance.now() < deadline) status = (await request(risk.app, 'GET', '/health')).status;
    expect(status).toBe(503);
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(503);
    redis.resume();
  });
});
