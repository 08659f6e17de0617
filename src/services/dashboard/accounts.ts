/**
 * The dashboard's accounts view (docs/scale-out.md): GET /accounts (a page of its own,
 * public/accounts.html + accounts.js) and GET /api/accounts, the accounts of the config
 * compared side by side from their services' HTTP APIs (the figures of `quantum accounts`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../platform/config.js';
import { collectAccounts, returnOf } from '../accounts-compare.js';

export function registerAccountsView(app: FastifyInstance, config: Config, publicDir: string): void {
  const files: Record<string, { path: string; type: string }> = {
    '/accounts': { path: join(publicDir, 'accounts.html'), type: 'text/html; charset=utf-8' },
    '/assets/accounts.js': { path: join(publicDir, 'accounts.js'), type: 'text/javascript; charset=utf-8' },
  };
  for (const [route, file] of Object.entries(files)) {
    app.get(route, { schema: { hide: true } }, async (_request, reply) =>
      reply.type(file.type).header('cache-control', 'no-cache').send(readFileSync(file.path)),
    );
  }
  app.get(
    '/api/accounts',
    {
      schema: {
        description:
          "The configured accounts side by side, from each account's monitor and risk service: equity, return, drawdown, " +
          'win rate, closed trades, signals, approval rate, rejections by reason (empty without `accounts`)',
        tags: ['dashboard'],
      },
    },
    async () => ({ accounts: (await collectAccounts(config)).map((figures) => ({ ...figures, return: returnOf(figures) })) }),
  );
}
