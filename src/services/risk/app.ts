/** HTTP routes of the Risk Safety service (port 8003). Builds; never listens. */
import type { FastifyInstance } from 'fastify';
import { createHttpApp, type ServiceHttpOptions } from '../../platform/http.js';
import { healthRoute } from '../common/routes.js';
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
    beforeMetrics: () => service.host.refreshLag(),
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

  return app;
}
