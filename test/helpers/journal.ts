/**
 * For the journal tests: the PostgreSQL to use, a seeded signal list, and the example
 * SQL of docs/journal.md.
 *
 * The example SQL of docs/journal.md, read from the document itself so the test runs
 * what the reader copies. Each ```sql block starts with `-- name: NAME (DIALECTS)`,
 * DIALECTS being `sqlite`, `postgres` or `sqlite, postgres`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { TradeSignal } from '../../src/core/messages.js';
import { keyedRandom } from '../../src/core/random.js';

/** The test PostgreSQL (trust auth); each test works in a schema of its own and drops it. */
export const POSTGRES_URL = process.env.QT_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether the test PostgreSQL answers. When it does not: outside CI a loud warning and
 * false (the PostgreSQL half is skipped); in CI (process.env.CI) a failure.
 */
export async function postgresAvailable(who: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (err) {
    const message = `${who}: PostgreSQL does not answer at ${POSTGRES_URL} (${(err as Error).message}); set QT_TEST_POSTGRES_URL or start it (.ci/run does)`;
    if (process.env.CI) throw new Error(message);
    console.warn(`\n!!! ${message}: the PostgreSQL tests are SKIPPED !!!\n`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Start prices of the default five instruments for the seeded runs. */
export const PRICES: Record<string, number> = { BTCUSDT: 64_250.5, ETHUSDT: 3_412.37, BNBUSDT: 587.12, SOLUSDT: 143.87, XRPUSDT: 0.5731 };

/** `count` signals over the five symbols: BUY / SELL / CLOSE / HOLD, confidence 0.50–0.95, two sources. */
export function seededSignals(count: number, prefix: string, seed = 20260112): TradeSignal[] {
  const rng = keyedRandom(seed, 'journal-test-signals');
  const random = () => rng.next();
  const symbols = Object.keys(PRICES);
  const ts = Date.now();
  return Array.from({ length: count }, (_, i) => {
    const r = random();
    const action = r < 0.4 ? 'BUY' : r < 0.75 ? 'SELL' : r < 0.85 ? 'CLOSE' : 'HOLD';
    return {
      schema_version: 1,
      signal_id: `${prefix}-${String(i).padStart(4, '0')}`,
      symbol: symbols[Math.floor(random() * symbols.length)]!,
      action,
      confidence: Math.round((0.5 + random() * 0.45) * 100) / 100,
      source: i % 3 === 0 ? 'model-a' : 'model-b',
      ts,
    };
  });
}

const DOC = fileURLToPath(new URL('../../docs/journal.md', import.meta.url));

export type QueryDialect = 'sqlite' | 'postgres';

function load(): Record<QueryDialect, Record<string, string>> {
  const text = readFileSync(DOC, 'utf8');
  const out: Record<QueryDialect, Record<string, string>> = { sqlite: {}, postgres: {} };
  for (const match of text.matchAll(/```sql\n([\s\S]*?)```/g)) {
    const body = match[1]!;
    const head = /^-- name: (\w+) \(([a-z, ]+)\)\n/.exec(body);
    if (!head) continue;
    for (const dialect of head[2]!.split(',').map((d) => d.trim()) as QueryDialect[]) out[dialect][head[1]!] = body.trim();
  }
  return out;
}

export const JOURNAL_EXAMPLE_QUERIES = load();
