/** HTTP routes of the Position Monitor (port 8004). Builds; never listens. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SYMBOL_PATTERN } from '../../core/messages.js';
import { HttpError, createHttpApp, jsonSchemaOf, type ServiceHttpOptions } from '../../platform/http.js';
import { healthRoute, priceBodySchema, symbolParamsSchema } from '../common/routes.js';
import type { MonitorService } from './service.js';

export async function buildMonitorApp(
  service: MonitorService,
  options: ServiceHttpOptions & { knownSymbols: readonly string[] },
): Promise<FastifyInstance> {
  const app = await createHttpApp({
    service: 'monitor',
    title: 'quantum-trader Position Monitor',
    description:
      'Keeps the books from trade.execution.res and market.tick (netting per symbol, exact decimals) and publishes ' +
      'PositionUpdate to trade.position.update on every fill and on each mark-to-market cycle.',
    apiToken: options.apiToken,
    host: options.host,
    allowedHosts: options.allowedHosts,
    metrics: service.metrics,
    logger: options.logger,
    beforeMetrics: () => service.host.refreshMetrics(),
  });
  const known = new Set(options.knownSymbols);

  healthRoute(app, () => service.health(), 'Open positions and unrealized PnL (503 when the bus is unreachable)');

  app.get(
    '/portfolio',
    { schema: { description: 'The portfolio summary plus realized_pnl_usd, unrealized_pnl_usd and fees_usd totals', tags: ['portfolio'] } },
    async () => service.state.portfolio(),
  );

  app.get(
    '/positions',
    { schema: { description: 'Open positions: {"positions": [PositionView]}', tags: ['portfolio'] } },
    async () => ({ positions: service.positions() }),
  );

  app.get(
    '/sources',
    {
      schema: {
        description:
          'Per signal source: signals, approved, rejected by reason (from the risk service\'s streams), trades, win rate, net PnL, ' +
          'profit factor, average hold, average MAE/MFE, the calibration table (buckets of 0.05 from risk.min_confidence, 95% Wilson ' +
          'intervals), the Brier score and the drift state (docs/feedback.md)',
        tags: ['feedback'],
      },
    },
    async () => service.sources(),
  );

  app.get('/prices', { schema: { description: 'Latest marks: {"prices": {SYMBOL: price}}', tags: ['market'] } }, async () => ({
    prices: service.state.prices(),
  }));

  app.post<{ Params: { symbol: string }; Body: { price: number } }>(
    '/prices/:symbol',
    {
      schema: {
        description: 'Publishes a manual tick to market.tick, rounded to the tick size (every service applies it)',
        tags: ['market'],
        params: symbolParamsSchema,
        body: priceBodySchema,
      },
    },
    async (request) => {
      const { symbol } = request.params;
      if (!known.has(symbol)) throw new HttpError(404, 'unknown_symbol', `UNKNOWN_SYMBOL: ${symbol} is not a configured instrument`);
      const result = await service.publishPrice(symbol, request.body.price);
      if (!result.ok) {
        if (result.code === 'UNKNOWN_SYMBOL') throw new HttpError(404, 'unknown_symbol', result.message);
        throw new HttpError(400, 'bad_request', `price: ${result.message}`);
      }
      return { symbol, price: result.tick.price, tick: result.tick };
    },
  );

  app.post<{ Params: { symbol: string } }>(
    '/close/:symbol',
    {
      schema: {
        description:
          'Closes the whole position through the risk gate (a CLOSE signal from manual_close) and waits up to 5 s for the fill. ' +
          '404 when flat; 409 when the risk gate or execution rejected the close; 504 when no fill came.',
        tags: ['portfolio'],
        params: jsonSchemaOf(z.object({ symbol: z.string().regex(SYMBOL_PATTERN) })),
      },
    },
    async (request) => {
      const { symbol } = request.params;
      const result = await service.close(symbol);
      switch (result.kind) {
        case 'not_open':
          throw new HttpError(404, 'no_position', `no open position in ${symbol}`);
        case 'rejected':
          throw new HttpError(409, 'close_rejected', `the close of ${symbol} was rejected: ${result.reason} (signal ${result.signal_id})`);
        case 'timeout':
          throw new HttpError(
            504,
            'close_timeout',
            `no fill for the close of ${symbol} within 5 s (signal ${result.signal_id}): is the risk service ` +
              `(port ${result.risk_port}) or the execution service (port ${result.execution_port}) down? The CLOSE signal stays ` +
              `queued on trade.signal.v5 and is carried out when they are back (unless the position is flat by then).`,
          );
        case 'filled':
          return {
            closed: true,
            symbol,
            fill: result.fill,
            realized_pnl_usd: result.realized_pnl_usd,
            position: result.position,
          };
      }
    },
  );

  return app;
}
