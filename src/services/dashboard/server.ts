/**
 * The live dashboard (port 8000, `ports.dashboard`): one page served by this Fastify
 * app, fed by /api/state (the full picture, for the first paint) and /api/events
 * (Server-Sent Events: every change after it). `buildDashboardApp` builds and never
 * listens (STYLE: build, don't start); `startDashboard` starts the hub and listens.
 *
 * Token rule: with no `api_token` nothing asks for one (bind to 127.0.0.1). With one,
 * every POST needs `Authorization: Bearer <token>` (as on every service), and so do the
 * page's API reads; the event stream also takes it as `?token=` because a browser's
 * EventSource cannot send headers. The page itself and its assets need no token: the
 * page asks for it once and keeps it in sessionStorage.
 */
import { timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { EventBus } from '../../bus/bus.js';
import type { Clock } from '../../core/clock.js';
import { SYMBOL_PATTERN } from '../../core/messages.js';
import type { Config } from '../../platform/config.js';
import { HttpError, createHttpApp, jsonSchemaOf, listen } from '../../platform/http.js';
import type { Logger } from '../../platform/logger.js';
import { createDashboardMetrics } from '../../platform/metrics.js';
import { DashboardHub, type HubEvent } from './hub.js';
import { describeFailure, httpUpstream, serviceHost, type Upstream } from './upstream.js';
import { registerAccountsView } from './accounts.js';

export { DashboardHub } from './hub.js';
export type { DashboardState } from './hub.js';
export { HISTORY_BOUNDS } from './model.js';

export interface DashboardDeps {
  bus: EventBus;
  config: Config;
  clock: Clock;
  logger: Logger;
  /** How the services are reached; default: HTTP to config.host and config.ports. */
  upstream?: Upstream;
  pollIntervalMs?: number;
  healthIntervalMs?: number;
  /** The config whose `accounts` the accounts view compares (default: config). */
  accountsConfig?: Config;
}

export interface DashboardApp {
  app: FastifyInstance;
  hub: DashboardHub;
}

export interface StartDashboardOptions extends DashboardDeps {
  listen: boolean;
  /** Overrides config.ports.dashboard; 0 = any free port. */
  port?: number;
}

export interface RunningDashboard {
  /** Where to open it, e.g. http://127.0.0.1:8000/ (empty when not listening). */
  url: string;
  port: number | null;
  app: FastifyInstance;
  hub: DashboardHub;
  stop(): Promise<void>;
}

/** An SSE client whose unread backlog grows past this is dropped (it reconnects and resyncs). */
const SSE_MAX_BUFFER_BYTES = 4 * 1024 * 1024;
const SSE_KEEPALIVE_MS = 15_000;
/** Tells EventSource how soon to reconnect after the stream drops. */
const SSE_RETRY_MS = 1000;

const STANDALONE_CHARTS = 'dist/lightweight-charts.standalone.production.js';

/** The page's files: next to this module, or in src/ when running the compiled dist/. */
function publicDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'public'), join(here, '..', '..', '..', 'src', 'services', 'dashboard', 'public')];
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) throw new Error(`dashboard: page files not found (looked in ${candidates.join(', ')})`);
  return found;
}

function chartsLibraryPath(): string {
  const require = createRequire(import.meta.url);
  // The package's exports hide dist/; its package.json is exported, so start from there.
  return join(dirname(require.resolve('lightweight-charts/package.json')), STANDALONE_CHARTS);
}

function tokenMatches(given: string | undefined, token: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function bearerOf(header: string | undefined): string | undefined {
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

const symbolParams = jsonSchemaOf(z.object({ symbol: z.string().regex(SYMBOL_PATTERN).describe('instrument symbol, e.g. BTCUSDT') }));
const haltBody = jsonSchemaOf(
  z.object({ reason: z.string().min(1).max(200).optional(), flatten: z.boolean().optional() }).strict(),
);

/** The decoded path of a URL with repeated slashes collapsed; '' when it cannot be decoded. */
function normalisedPath(url: string): string {
  try {
    return decodeURIComponent(url.split('?')[0] ?? '').replace(/\/{2,}/g, '/');
  } catch {
    return '/api/(undecodable)';
  }
}

/** Builds the dashboard's app and hub; neither listens nor polls until started. */
export async function buildDashboardApp(deps: DashboardDeps): Promise<DashboardApp> {
  const { bus, config, clock } = deps;
  const logger = deps.logger;
  const upstream = deps.upstream ?? httpUpstream(config);
  const metrics = createDashboardMetrics();
  const hub = new DashboardHub({
    bus,
    config,
    clock,
    logger,
    upstream,
    pollIntervalMs: deps.pollIntervalMs,
    healthIntervalMs: deps.healthIntervalMs,
  });
  const app = await createHttpApp({
    service: 'dashboard',
    title: 'quantum-trader Dashboard',
    description:
      'The loop at a glance: portfolio, equity and drawdown curves with fills, open positions with a close button, ' +
      'the latest risk decisions with their records, and pipeline health. Reads the streams without a consumer group.',
    apiToken: config.api_token,
    host: config.host,
    allowedHosts: config.allowed_hosts,
    metrics,
    logger,
    beforeMetrics: async () => metrics.observe({ sseClients: hub.listenerCount, streamsReadable: hub.state().health.feed.ok }),
  });

  const dir = publicDir();
  const files: Record<string, { path: string; type: string }> = {
    '/': { path: join(dir, 'index.html'), type: 'text/html; charset=utf-8' },
    '/assets/app.js': { path: join(dir, 'app.js'), type: 'text/javascript; charset=utf-8' },
    '/assets/sources.js': { path: join(dir, 'sources.js'), type: 'text/javascript; charset=utf-8' },
    '/assets/style.css': { path: join(dir, 'style.css'), type: 'text/css; charset=utf-8' },
    '/assets/lightweight-charts.js': { path: chartsLibraryPath(), type: 'text/javascript; charset=utf-8' },
  };
  const cache = new Map<string, Buffer>();
  for (const [route, file] of Object.entries(files)) {
    app.get(route, { schema: { hide: true } }, async (_request, reply) => {
      let body = cache.get(route);
      if (!body) {
        body = readFileSync(file.path);
        cache.set(route, body);
      }
      return reply.type(file.type).header('cache-control', 'no-cache').send(body);
    });
  }

  // The API's reads need the token too when one is set (POSTs are checked by createHttpApp).
  const token = config.api_token;
  if (token) {
    app.addHook('onRequest', async (request, reply) => {
      // The route that will answer, not the raw URL: the router decodes it (/%61pi/state is /api/state).
      const path = request.routeOptions.url ?? normalisedPath(request.url);
      if (request.method !== 'GET' || !path.startsWith('/api/')) return;
      const query = request.query as Record<string, string | undefined> | undefined;
      const given = bearerOf(request.headers.authorization) ?? (path === '/api/events' ? query?.token : undefined);
      if (!tokenMatches(given, token)) {
        return reply.code(401).send({
          error: 'unauthorized',
          message: 'the dashboard API needs "Authorization: Bearer <token>" (or ?token= on /api/events) because api_token is set',
        });
      }
    });
  }

  registerAccountsView(app, deps.accountsConfig ?? config, dir);

  app.get(
    '/health',
    { schema: { description: "The dashboard's own health: bus connection and its tail of the streams", tags: ['ops'] } },
    async (_request, reply) => {
      const connected = await bus.ping().catch(() => false);
      const feed = hub.state().health.feed;
      return reply.code(connected ? 200 : 503).send({
        status: connected ? 'ok' : 'degraded',
        service: 'dashboard',
        bus: { kind: bus.kind, connected },
        feed,
        sse_clients: hub.listenerCount,
      });
    },
  );

  app.get(
    '/api/state',
    { schema: { description: 'The full current picture (header figures, positions, curves, decisions, fills, health)', tags: ['dashboard'] } },
    async () => hub.state(),
  );

  app.get<{ Params: { key: string } }>(
    '/api/decisions/:key',
    { schema: { description: 'One decision record (checks and sizing) by the key from /api/state, while it is kept', tags: ['dashboard'] } },
    async (request) => {
      const record = hub.decision(request.params.key);
      if (!record) throw new HttpError(404, 'not_found', `decision ${request.params.key} is not among the latest kept`);
      return record;
    },
  );

  const streams = new Set<ServerResponse>();
  app.get(
    '/api/events',
    {
      schema: {
        description:
          'Server-Sent Events: `state` (the full picture) on connect, then `equity`, `decisions`, `fills`, `portfolio`, `stats` and `health`',
        tags: ['dashboard'],
      },
    },
    (request, reply: FastifyReply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      streams.add(res);
      const send = (event: HubEvent['event'] | 'state', data: unknown) => {
        if (res.writableEnded || res.destroyed) return;
        if (res.writableLength > SSE_MAX_BUFFER_BYTES) {
          logger.warn('dashboard: dropping a slow event-stream client');
          res.destroy();
          return;
        }
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      res.write(`retry: ${SSE_RETRY_MS}\n\n`);
      send('state', hub.state());
      const unsubscribe = hub.subscribe((e) => send(e.event, e.data));
      const keepAlive = setInterval(() => {
        if (!res.writableEnded) res.write(': keep-alive\n\n');
      }, SSE_KEEPALIVE_MS);
      const cleanup = () => {
        clearInterval(keepAlive);
        unsubscribe();
        streams.delete(res);
      };
      request.raw.on('close', cleanup);
      res.on('close', cleanup);
    },
  );
  // Open event streams would keep the server from closing.
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
    streams.clear();
  });

  app.get(
    '/api/sources',
    {
      schema: {
        description: "The monitor's GET /sources passed on (per-source attribution, calibration, drift); 502 when the monitor does not answer",
        tags: ['dashboard'],
      },
    },
    async (_request, reply) => {
      let answer;
      try {
        answer = await upstream.get('monitor', '/sources');
      } catch (err) {
        throw new HttpError(502, 'monitor_unreachable', `the position monitor at ${upstream.baseUrl('monitor')} cannot be reached (${describeFailure(err)})`);
      }
      const body =
        typeof answer.body === 'object' && answer.body !== null
          ? answer.body
          : { error: 'bad_gateway', message: `the monitor answered HTTP ${answer.status} without JSON` };
      return reply.code(answer.status).send(body);
    },
  );

  app.post<{ Params: { symbol: string } }>(
    '/api/close/:symbol',
    {
      schema: {
        description:
          "Closes a position through the monitor's POST /close/{symbol} (adding the api_token) and passes its answer on: " +
          '200 {closed, fill, realized_pnl_usd}, 404 no position, 409 rejected, 504 no fill; 502 when the monitor does not answer',
        tags: ['dashboard'],
        params: symbolParams,
      },
    },
    async (request, reply) => {
      const { symbol } = request.params;
      let answer;
      try {
        answer = await upstream.post('monitor', `/close/${symbol}`, {});
      } catch (err) {
        const why = describeFailure(err);
        const timedOut = why === 'no answer in time';
        throw new HttpError(
          timedOut ? 504 : 502,
          timedOut ? 'close_timeout' : 'monitor_unreachable',
          `the position monitor at ${upstream.baseUrl('monitor')} ${timedOut ? 'did not answer the close in time' : `cannot be reached (${why})`}`,
        );
      } finally {
        hub.requestRefresh();
      }
      const body =
        typeof answer.body === 'object' && answer.body !== null
          ? answer.body
          : { error: 'bad_gateway', message: `the monitor answered HTTP ${answer.status} without JSON` };
      return reply.code(answer.status).send(body);
    },
  );

  // The kill switch (docs/protections.md): the page's guarded button posts here; the
  // dashboard adds the api_token and passes the risk service's answer on.
  const toRisk = async (path: string, body: unknown, reply: FastifyReply) => {
    let answer;
    try {
      answer = await upstream.post('risk', path, body);
    } catch (err) {
      throw new HttpError(502, 'risk_unreachable', `the risk service at ${upstream.baseUrl('risk')} cannot be reached (${describeFailure(err)})`);
    } finally {
      hub.requestRefresh();
    }
    const out =
      typeof answer.body === 'object' && answer.body !== null
        ? answer.body
        : { error: 'bad_gateway', message: `the risk service answered HTTP ${answer.status} without JSON` };
    return reply.code(answer.status).send(out);
  };
  app.post<{ Body: { reason?: string; flatten?: boolean } }>(
    '/api/halt',
    {
      schema: {
        description:
          "The kill switch: the risk service's POST /halt (adding the api_token); entries are refused KILL_SWITCH until " +
          '/api/resume, and with flatten every open position gets a reduce-only close. 502 when risk does not answer',
        tags: ['dashboard'],
        body: haltBody,
      },
    },
    async (request, reply) => toRisk('/halt', request.body ?? {}, reply),
  );
  app.post(
    '/api/resume',
    { schema: { description: "Leaves HALTED: the risk service's POST /resume (adding the api_token)", tags: ['dashboard'] } },
    async (_request, reply) => toRisk('/resume', {}, reply),
  );

  return { app, hub };
}

/** Builds the dashboard, starts its hub and (when `listen`) opens its port. */
export async function startDashboard(opts: StartDashboardOptions): Promise<RunningDashboard> {
  const { config } = opts;
  const logger = opts.logger.child({ service: 'dashboard' });
  const { app, hub } = await buildDashboardApp({ ...opts, logger });
  await hub.start();
  let port: number | null = null;
  let url = '';
  if (opts.listen) {
    const wanted = opts.port ?? config.ports.dashboard;
    try {
      port = await listen(app, config.host, wanted);
    } catch (err) {
      await hub.stop();
      await app.close();
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(
        code === 'EADDRINUSE'
          ? `dashboard: port ${wanted} on ${config.host} is already in use (set ports.dashboard or QT_DASHBOARD_PORT)`
          : `dashboard: cannot listen on ${config.host}:${wanted}: ${(err as Error).message}`,
      );
    }
    url = `http://${serviceHost(config.host)}:${port}/`;
    if (!config.api_token && !isLoopback(config.host)) {
      logger.warn({ host: config.host }, 'dashboard: listening beyond loopback with no api_token: anyone who can reach it can close positions');
    }
    logger.info({ host: config.host, port, url }, 'dashboard listening');
  } else {
    await app.ready();
  }
  return {
    url,
    port,
    app,
    hub,
    async stop() {
      await hub.stop();
      await app.close();
    },
  };
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('127.');
}
