/** HTTP routes of the Execution service (port 8002). Builds; never listens. */
import type { FastifyInstance } from 'fastify';
import { HttpError, createHttpApp, type ServiceHttpOptions } from '../../platform/http.js';
import { healthRoute, priceBodySchema, symbolParamsSchema } from '../common/routes.js';
import type { ExecutionService } from './service.js';

export async function buildExecutionApp(
  service: ExecutionService,
  options: ServiceHttpOptions,
): Promise<FastifyInstance> {
  const app = await createHttpApp({
    service: 'execution',
    title: 'quantum-trader Execution (paper)',
    description:
      'Fills approved orders from trade.signal.safe on paper at the latest quote (BUY at the ask, SELL at the bid; the last price without quotes) ' +
      'with adverse slippage and a taker fee; publishes ExecutionResult to trade.execution.res and the price source\'s ticks to market.tick.',
    apiToken: options.apiToken,
    host: options.host,
    allowedHosts: options.allowedHosts,
    metrics: service.metrics,
    logger: options.logger,
    beforeMetrics: () => service.host.refreshMetrics(),
  });

  healthRoute(
    app,
    () => service.health(),
    'Status, bus connection, price feed state and fill rate (503 when the bus is unreachable or the live feed has been down longer than market.stale_after_ms)',
  );

  app.get('/stats', { schema: { description: 'Orders, fills, rejects, volume, fees, average slippage', tags: ['execution'] } }, async () =>
    service.state.statistics(),
  );

  app.get(
    '/prices',
    { schema: { description: 'Current prices: {"prices": {SYMBOL: price}, "quotes": {SYMBOL: {bid, ask}}}', tags: ['market'] } },
    async () => ({ prices: service.state.prices(), quotes: service.state.quoteTable() }),
  );

  app.post<{ Params: { symbol: string }; Body: { price: number } }>(
    '/prices/:symbol',
    {
      schema: {
        description: 'Sets a price (rounded to the tick size) and publishes it to market.tick',
        tags: ['market'],
        params: symbolParamsSchema,
        body: priceBodySchema,
      },
    },
    async (request) => {
      const { symbol } = request.params;
      const result = await service.setPrice(symbol, request.body.price);
      if (!result.ok) {
        if (result.code === 'UNKNOWN_SYMBOL') throw new HttpError(404, 'unknown_symbol', result.message);
        throw new HttpError(400, 'bad_request', `price: ${result.message}`);
      }
      return { symbol, price: Number(result.tick?.price), tick: result.tick };
    },
  );

  app.post(
    '/reset',
    // No body schema: a bare `curl -X POST .../reset` (no body) must work; a body is ignored.
    { schema: { description: 'Clears the statistics (prices and the fill guard stay)', tags: ['execution'] } },
    async () => {
      await service.reset();
      return { reset: true, stats: service.state.statistics() };
    },
  );

  return app;
}
