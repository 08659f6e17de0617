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
