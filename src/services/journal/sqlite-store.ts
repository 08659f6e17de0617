/** The journal in a SQLite file (better-sqlite3: synchronous, one writer, WAL). */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { LATEST_VERSION, MIGRATIONS, schemaVersionTable } from './migrations.js';
import type { Cell, Row, RowBatch } from './rows.js';
import { batchInserts, type JournalStore } from './store.js';

/** SQLite allows 32,766 parameters per statement; rows go in chunks well below it. */
const MAX_PARAMS = 30_000;

function bind(value: Cell): string | number | null {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

export class SqliteStore implements JournalStore {
  readonly dialect = 'sqlite' as const;
  readonly label: string;

  private constructor(private readonly db: Database.Database, path: string) {
    this.label = `sqlite:${path}`;
  }

  static open(path: string): SqliteStore {
    const full = resolve(path);
    mkdirSync(dirname(full), { recursive: true });
    const db = new Database(full);
    db.pragma('journal_mode = WAL');
    // NORMAL (with WAL): a committed batch survives the process dying (kill -9) without
    // an fsync per batch, which would stall `quantum up`'s event loop; only a power cut
    // can take the last batches, and then the Redis of these machines (nothing on disk)
    // has lost the streams too.
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    return new SqliteStore(db, full);
  }

  async version(): Promise<number> {
    this.db.exec(schemaVersionTable('sqlite'));
    const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
    return row.v ?? 0;
  }

  async migrate(target = LATEST_VERSION): Promise<number[]> {
    const applied: number[] = [];
    // IMMEDIATE: a second journal starting at the same time waits instead of migrating twice.
    const run = this.db.transaction(() => {
      this.db.exec(schemaVersionTable('sqlite'));
      const row = this.db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
      const current = row.v ?? 0;
      for (const m of MIGRATIONS) {
        if (m.version <= current || m.version > target) continue;
        this.db.exec(m.sql.sqlite);
        this.db.prepare('INSERT INTO schema_version (version, name, applied_ts) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
        applied.push(m.version);
      }
    });
    run.immediate();
    return applied;
  }

  async write(batch: RowBatch, state: string | null): Promise<void> {
    const tx = this.db.transaction(() => {
      for (const { sql, values } of batchInserts(batch, 'sqlite', MAX_PARAMS)) this.db.prepare(sql).run(values.map(bind));
      if (state !== null) {
        this.db
          .prepare("INSERT INTO journal_state (key, value) VALUES ('fold', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
          .run(state);
      }
    });
    tx.immediate();
  }

  async loadState(): Promise<string | null> {
    const row = this.db.prepare("SELECT value FROM journal_state WHERE key = 'fold'").get() as { value: string } | undefined;
    return row?.value ?? null;
  }

  async query(sql: string, params: readonly Cell[] = []): Promise<Row[]> {
    const statement = this.db.prepare(sql);
    if (!statement.reader) {
      statement.run(params.map(bind));
      return [];
    }
    return statement.all(params.map(bind)) as Row[];
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
