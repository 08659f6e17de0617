/** The journal in PostgreSQL (node-postgres), in one schema per account (`journal.schema`). */
import pg from 'pg';
import { LATEST_VERSION, MIGRATIONS, schemaVersionTable } from './migrations.js';
import type { Cell, Row, RowBatch } from './rows.js';
import { batchInserts, redactJournalUrl, type JournalStore } from './store.js';

/** PostgreSQL allows 65,535 parameters per statement. */
const MAX_PARAMS = 60_000;
const INT8_OID = 20;
const JSON_OIDS = new Set([114, 3802]);
/** Any constant: the key of the advisory lock that lets one journal migrate at a time. */
const MIGRATION_LOCK = 0x71_6a_6f_75;

/**
 * Epoch milliseconds (BIGINT) come back as numbers; NUMERIC stays an exact decimal
 * string; JSON stays its text (as SQLite gives it), so both stores return the same rows.
 */
const types = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8_OID) return (text: string) => Number(text);
    if (JSON_OIDS.has(oid)) return (text: string) => text;
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class PostgresStore implements JournalStore {
  readonly dialect = 'postgres' as const;
  readonly label: string;

  private constructor(
    private readonly pool: pg.Pool,
    url: string,
    readonly schema: string,
  ) {
    this.label = `${redactJournalUrl(url)} (schema ${schema})`;
  }

  static async open(url: string, schema: string): Promise<PostgresStore> {
    const pool = new pg.Pool({ connectionString: url, max: 2, types, options: `-c search_path=${quoteIdent(schema)}` });
    pool.on('error', () => undefined); // an idle client's error surfaces on the next query
    try {
      await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    } catch (err) {
      await pool.end();
      throw new Error(`cannot open the journal at ${redactJournalUrl(url)}: ${(err as Error).message}`);
    }
    return new PostgresStore(pool, url, schema);
  }

  private async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async version(): Promise<number> {
    await this.pool.query(schemaVersionTable('postgres'));
    const { rows } = await this.pool.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
    return rows[0]?.v ?? 0;
  }

  async migrate(target = LATEST_VERSION): Promise<number[]> {
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(schemaVersionTable('postgres'));
      const { rows } = await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
      const current = rows[0]?.v ?? 0;
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (m.version <= current || m.version > target) continue;
        await client.query(m.sql.postgres);
        await client.query('INSERT INTO schema_version (version, name, applied_ts) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
        applied.push(m.version);
      }
      return applied;
    });
  }

  async write(batch: RowBatch, state: string | null): Promise<void> {
    await this.transaction(async (client) => {
      for (const { sql, values } of batchInserts(batch, 'postgres', MAX_PARAMS)) await client.query(sql, values);
      if (state !== null) {
        await client.query(
          "INSERT INTO journal_state (key, value) VALUES ('fold', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          [state],
        );
      }
    });
  }

  async loadState(): Promise<string | null> {
    const { rows } = await this.pool.query<{ value: string }>("SELECT value FROM journal_state WHERE key = 'fold'");
    return rows[0]?.value ?? null;
  }

  async query(sql: string, params: readonly Cell[] = []): Promise<Row[]> {
    let n = 0;
    const text = sql.replace(/\?/g, () => `$${++n}`);
    const { rows } = await this.pool.query<Row>(text, [...params]);
    return rows;
  }

  /** Drops the schema and everything in it (for tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(this.schema)} CASCADE`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
