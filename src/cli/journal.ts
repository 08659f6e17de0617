/** `quantum journal` (the journal as its own service on Redis) and its readers. */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { createBus } from '../bus/factory.js';
import { StreamNames } from '../bus/topics.js';
import type { Config } from '../platform/config.js';
import { systemClock } from '../platform/clock.js';
import { createLogger } from '../platform/logger.js';
import { exportJournal, formatRows, readView, type JournalView, type OutputFormat } from '../services/journal/reader.js';
import { ServiceLease, isLeaseStore } from '../services/common/lease.js';
import { JournalService } from '../services/journal/service.js';
import { DEFAULT_UP_JOURNAL_URL, openStore, parseJournalUrl, type JournalStore } from '../services/journal/store.js';
import { redactUrl } from './serve.js';
import { untilSignal } from './signals.js';

/** The journal's URL: `journal.url`, else the SQLite file in the working folder. */
export function journalUrl(config: Config): string {
  return config.journal.url ?? DEFAULT_UP_JOURNAL_URL;
}

export async function openJournalStore(config: Config): Promise<JournalStore> {
  return openStore({ url: journalUrl(config), schema: config.journal.schema });
}

export async function runJournal(config: Config & { redis_url: string }): Promise<number> {
  const logger = createLogger().child({ service: 'journal' });
  let store: JournalStore;
  try {
    store = await openJournalStore(config);
  } catch (err) {
    console.error(`quantum journal: ${(err as Error).message}`);
    return 1;
  }
  let bus;
  try {
    bus = await createBus({ redisUrl: config.redis_url, clusterNodes: config.redis_cluster_nodes, prefix: config.stream_prefix, maxlen: config.streams.maxlen });
  } catch (err) {
    console.error(`quantum journal: cannot connect to Redis at ${redactUrl(config.redis_url)}: ${(err as Error).message}`);
    await store.close();
    return 1;
  }
  // One journal per account (one group, one consumer name): a second waits as a standby.
  const stopped = untilSignal();
  const lease = isLeaseStore(bus)
    ? new ServiceLease({
        store: bus,
        key: new StreamNames('').lease('journal'),
        holder: `${hostname()}/journal/${process.pid}`,
        ttlMs: config.lease.ttl_ms,
        logger,
      })
    : null;
  if (lease && !(await lease.tryAcquire())) {
    console.log('quantum journal: another journal holds this account\'s lease; waiting as a standby');
    if (!(await lease.acquire(stopped))) {
      await bus.close();
      await store.close();
      return 0;
    }
    logger.warn('lease taken: this journal is now the active one');
  }
  const lost = new Promise<string>((resolve) => lease?.keepRenewing(resolve));
  const journal = new JournalService({ bus, config, clock: systemClock, logger, store });
  try {
    await journal.start();
  } catch (err) {
    console.error(`quantum journal: ${(err as Error).message}`);
    await lease?.release();
    await bus.close();
    await store.close();
    return 1;
  }
  console.log(`quantum journal: writing to ${store.label} from ${redactUrl(config.redis_url)}`);
  const outcome = await Promise.race([stopped.then((signal) => ({ signal })), lost.then((why) => ({ why }))]);
  if ('why' in outcome) {
    // Fenced: stop consuming before the lease can lapse in Redis (its supervisor restarts it as a standby).
    console.error(`quantum journal: lease lost (${outcome.why}), stopping`);
    await journal.stop();
    await bus.close();
    await store.close();
    return 1;
  }
  logger.info({ signal: outcome.signal }, 'shutting down');
  await journal.stop();
  await lease?.release();
  await bus.close();
  await store.close();
  return 0;
}

export interface ViewArgs {
  since?: string;
  symbol?: string;
  source?: string;
  format: string;
}

export async function runJournalView(config: Config, view: JournalView, args: ViewArgs): Promise<number> {
  const name = `quantum journal ${view}`;
  if (!['table', 'csv', 'json'].includes(args.format)) {
    console.error(`${name}: --format must be table, csv or json, got "${args.format}"`);
    return 2;
  }
  let since: number | undefined;
  if (args.since !== undefined) {
    since = Date.parse(args.since);
    if (!Number.isFinite(since)) {
      console.error(`${name}: --since must be an ISO time such as 2026-01-31 or 2026-01-31T12:00:00Z, got "${args.since}"`);
      return 2;
    }
  }
  return withStore(config, name, async (store) => {
    let rows;
    try {
      rows = await readView(store, view, { since, symbol: args.symbol, source: args.source });
    } catch (err) {
      if ((err as Error).message.startsWith('--source')) {
        console.error(`${name}: ${(err as Error).message}`);
        return 2;
      }
      throw err;
    }
    console.log(formatRows(rows, args.format as OutputFormat));
    return 0;
  });
}

export async function runJournalExport(config: Config, dir: string): Promise<number> {
  return withStore(config, 'quantum journal export', async (store) => {
    const counts = await exportJournal(store, dir);
    for (const [table, n] of Object.entries(counts)) console.log(`${dir}/${table}.csv: ${n} rows`);
    return 0;
  });
}

async function withStore(config: Config, name: string, fn: (store: JournalStore) => Promise<number>): Promise<number> {
  const url = parseJournalUrl(journalUrl(config));
  if (url?.kind === 'sqlite' && !existsSync(url.path)) {
    console.error(`${name}: no journal at ${url.path} (journal.url ${journalUrl(config)}; run quantum up or quantum journal first)`);
    return 1;
  }
  let store: JournalStore;
  try {
    store = await openJournalStore(config);
    // Readers see the newest schema even before a journal ran on this database.
    await store.migrate();
  } catch (err) {
    console.error(`${name}: ${(err as Error).message}`);
    return 1;
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
