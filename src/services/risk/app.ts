/** HTTP routes of the Risk Safety service (port 8003). Builds; never listens. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { LevelPatch } from '../../core/exits.js';
import { HttpError, createHttpApp, jsonSchemaOf, type ServiceHttpOptions } from '../../platform/http.js';
import { healthRoute, symbolParamsSchema } from '../common/routes.js';
import type { RiskService } from './service.js';

export async function buildRiskApp(service: RiskService, options: ServiceHttpOptions): Promise<FastifyInstance> {
  const app = await createHttpApp({
    service: 'risk',
    title: 'quantum-trader Risk Safety',
    description:
      'Decides every signal from trade.signal.v5 once: approvals with fractional-Kelly sizing go to trade.signal.safe, ' +
      'rejections with reason codes and the decision record to trade.signal.rejected. Closes are always approved.',
    apiToken: options.apiToken,
    host: options.host,
    allowedHosts: options.allowedHosts,
    metrics: service.metrics,
    logger: options.logger,
    beforeMetrics: () => service.host.refreshMetrics(),
  });

  healthRoute(app, () => service.health(), 'Status, bus connection, trading state and approval rate (503 when the bus is unreachable)');

  app.get(
    '/stats',
    {
      schema: {
        description:
          'Balance, equity, peak equity, drawdown, win rate, entries today, cooldown until, trading state, counts ' +
          'received / skipped / approved / rejected by reason, and approval rate = approved / (approved + rejected)',
        tags: ['risk'],
      },
    },
    async () => service.stats(),
  );

  app.post('/reset', { schema: { description: 'Clears the statistics (not the books, not the trading state)', tags: ['risk'] } }, async () =>
    service.reset(),
  );

  app.post(
    '/resume',
    { schema: { description: 'Leaves HALTED; peak equity restarts at current equity', tags: ['risk'] } },
    async () => service.resume(),
  );

  app.post<{ Body: { reason?: string; flatten?: boolean } | undefined }>(
    '/halt',
    {
      schema: {
        description:
          'The kill switch (docs/protections.md): entries are refused KILL_SWITCH with the reason until POST /resume; closes ' +
          'still pass. With flatten: true, also publishes a reduce-only close (origin manual_close, exit_reason kill_switch) ' +
          'for every open position, in-flight orders included, and lists them in `closes`. Survives restarts.',
        tags: ['risk'],
        body: haltBodySchema,
      },
    },
    async (request) => service.halt(request.body?.reason ?? 'operator halt', request.body?.flatten ?? false),
  );

  app.post<{ Params: { source: string } }>(
    '/sources/:source/resume',
    {
      schema: {
        description: 'A source refused SOURCE_DRAWDOWN (risk.max_source_drawdown_pct) trades again; its peak restarts at its current value',
        tags: ['risk'],
        params: sourceParamsSchema,
      },
    },
    async (request) => service.resumeSource(request.params.source),
  );

  app.get(
    '/positions/exits',
    { schema: { description: 'The armed exit levels of every position: {"exits": [ExitLevels]}', tags: ['exits'] } },
    async () => ({ exits: service.exitLevels() }),
  );

  app.post<{ Params: { symbol: string }; Body: LevelPatch }>(
    '/positions/:symbol/exits',
    {
      schema: {
        description:
          'Sets (a value) or clears (null) exit levels of an open position; omitted keys stay as they are. A new trailing ' +
          'stop starts from the exit-side price now, a new max_hold_ms counts from now. 400 naming the field for a level on ' +
          'the wrong side of the price; 404 when the position is flat. Publishes the change to trade.exit.levels.',
        tags: ['exits'],
        params: symbolParamsSchema,
        body: exitPatchSchema,
      },
    },
    async (request) => {
      const result = await service.setExitLevels(request.params.symbol, request.body);
      if (!result.ok) {
        if (result.status === 404) throw new HttpError(404, 'no_position', result.message);
        throw new HttpError(400, 'bad_request', result.message);
      }
      return { symbol: request.params.symbol, exits: result.levels };
    },
  );

  return app;
}

const haltBodySchema = jsonSchemaOf(
  z
    .object({
      reason: z.string().min(1).max(200).optional().describe("the operator's reason, shown on every rejection (default: operator halt)"),
      flatten: z.boolean().optional().describe('also close every open position (reduce-only); default false'),
    })
    .strict()
    .nullable(),
);

const sourceParamsSchema = jsonSchemaOf(z.object({ source: z.string().min(1).max(64) }));

const exitPatchSchema = jsonSchemaOf(
  z
    .object({
      stop_loss: z.number().positive().nullable().optional().describe('stop price; null clears it'),
      take_profit: z.number().positive().nullable().optional().describe('target price; null clears it'),
      trailing_stop_pct: z.number().positive().lt(1).nullable().optional().describe('trail distance as a fraction; null clears it'),
      max_hold_ms: z.number().int().positive().nullable().optional().describe('time limit from now, ms; null clears it'),
    })
    .strict(),
);
