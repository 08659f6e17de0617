/**
 * Where the journal's rows go: one interface, two databases (SQLite through
 * better-sqlite3, PostgreSQL through node-postgres), chosen from `journal.url` here and
 * nowhere else. test/journal-store.test.ts runs one contract suite against both.
 */
import type { Dialect } from './migrations.js';
import { TABLES, TABLE_NAMES, type Cell, type Row, type RowBatch } from './rows.js';

export interface JournalStore {
  readonly dialect: Dialect;
  /** Where it writes, without any password (for logs and messages). */
  readonly label: string;
  /** Applies the migrations newer than the database's version (up to `target`, default all); returns the versions applied. */
  migrate(target?: number): Promise<number[]>;
  /** The highest migration applied; 0 for an empty database. */
  version(): Promise<number>;
  /**
   * Writes a batch in one transaction: every row with INSERT … ON CONFLICT DO NOTHING (a
   * row written twice changes nothing), and the journal's fold state with it.
   */
  write(batch: RowBatch, state: string | null): Promise<void>;
  /** The fold state saved with the last batch, or null. */
  loadState(): Promise<string | null>;
  /** A read query with `?` placeholders; amounts come back as decimal strings. */
  query(sql: string, params?: readonly Cell[]): Promise<Row[]>;
  close(): Promise<void>;
}

export type JournalUrl = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** `sqlite:PATH` (PATH relative to the working folder, or absolute) or `postgres://…` / `postgresql://…`. */
export function parseJournalUrl(url: string): JournalUrl | null {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    return path.length > 0 ? { kind: 'sqlite', path } : null;
  }
  if (/^postgres(ql)?:\/\/.+/.test(url)) return { kind: 'postgres', url };
  return null;
}

/** Hides a password in a database URL. */
export function redactJournalUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

export const DEFAULT_UP_JOURNAL_URL = 'sqlite:./quantum-journal.sqlite';

export interface OpenStoreOptions {
  url: string;
  /** PostgreSQL schema (created when missing); SQLite keeps one file per account instead. */
  schema: string;
}

export async function openStore(options: OpenStoreOptions): Promise<JournalStore> {
  const parsed = parseJournalUrl(options.url);
  if (!parsed) throw new Error(`journal.url must be sqlite:PATH or postgres://…, got "${redactJournalUrl(options.url)}"`);
  if (parsed.kind === 'sqlite') {
    const { SqliteStore } = await import('./sqlite-store.js');
    return SqliteStore.open(parsed.path);
  }
  const { PostgresStore } = await import('./postgres-store.js');
  return PostgresStore.open(parsed.url, options.schema);
}

/** INSERT … ON CONFLICT DO NOTHING for `rows` of one table, with the dialect's placeholders. */
export function insertSql(table: string, columns: readonly string[], key: readonly string[], rowCount: number, dialect: Dialect): string {
  let n = 0;
  const tuple = () => `(${columns.map(() => (dialect === 'postgres' ? `$${++n}` : '?')).join(', ')})`;
  const values = Array.from({ length: rowCount }, tuple).join(', ');
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values} ON CONFLICT (${key.join(', ')}) DO NOTHING`;
}

export function rowValues(row: Row, columns: readonly string[]): Cell[] {
  return columns.map((column) => row[column] ?? null);
}

/**
 * The INSERT statements that write one batch, table by table, each at most `maxParams`
 * bound values (the driver's limit); the stores run them inside their transaction.
 */
export function* batchInserts(batch: RowBatch, dialect: Dialect, maxParams: number): Generator<{ sql: string; values: Cell[] }> {
  for (const name of TABLE_NAMES) {
    const rows = batch[name];
    if (rows.length === 0) continue;
    const spec = TABLES[name];
    const perChunk = Math.max(1, Math.floor(maxParams / spec.columns.length));
    for (let i = 0; i < rows.length; i += perChunk) {
      const chunk = rows.slice(i, i + perChunk);
      yield { sql: insertSql(name, spec.columns, spec.key, chunk.length, dialect), values: chunk.flatMap((row) => rowValues(row, spec.columns)) };
    }
  }
}
