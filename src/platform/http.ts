/**
 * What every service's HTTP side shares: JSON errors `{error, message}` naming the bad
 * field, the bearer-token rule for POSTs, OpenAPI + Swagger UI at /docs with every
 * message schema as a component, and GET /metrics. `createHttpApp` builds and never
 * listens (STYLE: build, don't start); only entry points call `listen`.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { z } from 'zod';
import { NAMED_SCHEMAS } from '../core/messages.js';
import type { Logger } from './logger.js';
import type { MetricsEndpoint } from './metrics.js';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** A zod schema as draft-07 JSON Schema, the dialect Fastify's validator speaks. */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { target: 'draft-7', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

let componentCache: Record<string, Record<string, unknown>> | undefined;
function messageComponents(): Record<string, Record<string, unknown>> {
  componentCache ??= Object.fromEntries(Object.entries(NAMED_SCHEMAS).map(([name, s]) => [name, jsonSchemaOf(s)]));
  return componentCache;
}

export interface HttpAppOptions {
  service: string;
  title: string;
  description: string;
  version?: string;
  apiToken?: string | undefined;
  metrics: MetricsEndpoint;
  logger: Logger;
  /** Refreshes gauges (bus lag) right before /metrics is rendered. */
  beforeMetrics?: () => Promise<void>;
  /** The address the app is bound to (config `host`): a Host header naming it is accepted. */
  host?: string;
  /** Further host names a Host header may carry (config `allowed_hosts`), e.g. behind a proxy. */
  allowedHosts?: readonly string[];
}

/** What each service's app builder takes from its launcher. */
export interface ServiceHttpOptions {
  apiToken?: string | undefined;
  logger: Logger;
  host?: string;
  allowedHosts?: readonly string[];
}

/** Host names every app answers to, whatever it is bound to. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]'] as const;

/** The host name of a Host header or URL authority ("[::1]:8003" -> "[::1]"), lower-cased. */
export function hostnameOf(authority: string): string {
  const trimmed = authority.trim().toLowerCase();
  if (trimmed.startsWith('[')) {
    const end = trimmed.indexOf(']');
    return end === -1 ? trimmed : trimmed.slice(0, end + 1);
  }
  const colon = trimmed.indexOf(':');
  return colon === -1 ? trimmed : trimmed.slice(0, colon);
}

/** The set of Host names accepted: loopback, the bound address (unless a wildcard) and allowed_hosts. */
export function acceptedHosts(host: string | undefined, allowedHosts: readonly string[] = []): Set<string> {
  const names = new Set<string>(LOOPBACK_HOSTS);
  const bound = (host ?? '').trim().toLowerCase();
  if (bound !== '' && bound !== '0.0.0.0' && bound !== '::' && bound !== '[::]') {
    names.add(bound.includes(':') && !bound.startsWith('[') ? `[${bound}]` : bound);
  }
  for (const name of allowedHosts) names.add(hostnameOf(name));
  return names;
}

/**
 * Why a request is refused before it reaches a route (403), or null. A browser can be
 * made to send a request to a local port from any web page (a form post, or a DNS name
 * rebound to 127.0.0.1): such a request carries a foreign Origin, or a Host that names
 * the attacker's site. Non-browser clients send no Origin and are unaffected.
 */
export function crossSiteProblem(headers: { host?: string | undefined; origin?: string | undefined }, accepted: ReadonlySet<string>): string | null {
  const host = headers.host ?? '';
  if (!accepted.has(hostnameOf(host))) {
    return `Host "${host}" is not this service's address; add it to allowed_hosts (QT_ALLOWED_HOSTS) if it is yours`;
  }
  const origin = headers.origin;
  if (origin === undefined) return null;
  let originHost: string;
  try {
    originHost = new URL(origin).host.toLowerCase();
  } catch {
    return `Origin "${origin}" is not this service's origin`;
  }
  // Same origin: the page was served by this host and port.
  if (originHost !== host.trim().toLowerCase()) return `Origin "${origin}" is not this service's origin (cross-site request refused)`;
  return null;
}

/**
 * Why a POST's body is refused (415), or null: a body must be JSON; no content type is
 * accepted only with an empty body on a route that takes none. (A text/plain form post
 * needs no CORS preflight, so accepting it would let any web page call the API.)
 */
export function contentTypeProblem(
  headers: { 'content-type'?: string | undefined; 'content-length'?: string | undefined; 'transfer-encoding'?: string | undefined },
  takesBody: boolean,
): string | null {
  const type = headers['content-type'];
  if (type === undefined) {
    const hasBody = (headers['content-length'] !== undefined && headers['content-length'] !== '0') || headers['transfer-encoding'] !== undefined;
    if (!hasBody && !takesBody) return null;
    return 'this POST needs "content-type: application/json"';
  }
  const media = type.split(';')[0]?.trim().toLowerCase();
  return media === 'application/json' ? null : `this POST needs "content-type: application/json", got "${type}"`;
}

interface AjvIssue {
  instancePath?: string;
  message?: string;
  params?: { missingProperty?: string; additionalProperty?: string };
}

function describeValidation(error: FastifyError): string {
  const issues = (error.validation ?? []) as AjvIssue[];
  const context = error.validationContext ?? 'body';
  const parts = issues.map((issue) => {
    const path = (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const field = issue.params?.missingProperty ?? issue.params?.additionalProperty ?? path;
    return `${field || context}: ${issue.message ?? 'is invalid'}`;
  });
  return parts.length ? parts.join('; ') : error.message;
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(header ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function createHttpApp(options: HttpAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { allErrors: true, coerceTypes: false, removeAdditional: false } },
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      return reply.code(400).send({ error: 'bad_request', message: describeValidation(error) });
    }
    if (error instanceof HttpError) {
      return reply.code(error.statusCode).send({ error: error.code, message: error.message });
    }
    const status = error.statusCode ?? 500;
    if (status < 500) {
      return reply.code(status).send({ error: error.code ?? 'bad_request', message: error.message });
    }
    request.log.error({ err: error, url: request.url }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the service log' });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` });
  });

  const accepted = acceptedHosts(options.host, options.allowedHosts);
  app.addHook('onRequest', async (request, reply) => {
    const crossSite = crossSiteProblem(request.headers, accepted);
    if (crossSite !== null) return reply.code(403).send({ error: 'forbidden', message: crossSite });
    if (request.method !== 'POST') return;
    const takesBody = request.routeOptions.schema?.body !== undefined;
    const badType = contentTypeProblem(request.headers, takesBody);
    if (badType !== null) return reply.code(415).send({ error: 'unsupported_media_type', message: badType });
  });

  if (options.apiToken) {
    const token = options.apiToken;
    app.addHook('onRequest', async (request, reply) => {
      if (request.method !== 'POST') return;
      if (!tokenMatches(request.headers.authorization, token)) {
        return reply
          .code(401)
          .send({ error: 'unauthorized', message: 'this POST needs "Authorization: Bearer <token>" (api_token is set)' });
      }
    });
  }

  await app.register(swagger, {
    openapi: {
      info: { title: options.title, description: options.description, version: options.version ?? '0.1.0' },
      components: { schemas: messageComponents() },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get(
    '/metrics',
    { schema: { description: 'Prometheus metrics (text exposition format)', tags: ['ops'] } },
    async (_request, reply) => {
      if (options.beforeMetrics) {
        try {
          await options.beforeMetrics();
        } catch (err) {
          options.logger.warn({ err }, 'refreshing metrics failed');
        }
      }
      reply.type(options.metrics.registry.contentType);
      return options.metrics.registry.metrics();
    },
  );

  return app;
}

/** Starts listening; the one place a port is opened. Returns the bound port. */
export async function listen(app: FastifyInstance, host: string, port: number): Promise<number> {
  await app.listen({ host, port });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : port;
}
