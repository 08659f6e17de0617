/** Route pieces every service uses the same way. */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SYMBOL_PATTERN } from '../../core/messages.js';
import { jsonSchemaOf } from '../../platform/http.js';

export const symbolParamsSchema = jsonSchemaOf(
  z.object({ symbol: z.string().regex(SYMBOL_PATTERN).describe('instrument symbol, e.g. BTCUSDT') }),
);

export const priceBodySchema = jsonSchemaOf(
  z.object({ price: z.number().positive().describe('the new price in USDT') }).strict(),
);

/** GET /health: 200 when the bus answers (and `healthy` is not false), 503 (same body) otherwise. */
export function healthRoute(
  app: FastifyInstance,
  health: () => Promise<{ status: string; healthy?: boolean; bus: { connected: boolean } }>,
  description: string,
): void {
  app.get('/health', { schema: { description, tags: ['ops'] } }, async (_request, reply) => {
    const body = await health();
    return reply.code(body.bus.connected && body.healthy !== false ? 200 : 503).send(body);
  });
}
