/**
 * The journal's schema, versioned. Each migration is written once per dialect and never
 * edited after release: a change is a new migration. They run in order at start-up, each
 * in its own transaction together with its row in `schema_version`.
 *
 * Types: money, prices, quantities and fractions are NUMERIC in PostgreSQL and TEXT
 * decimals in SQLite (exact, never a float); times are epoch milliseconds (BIGINT /
 * INTEGER); JSON is JSONB in PostgreSQL and TEXT in SQLite.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  name: string;
  sql: Record<Dialect, string>;
}

/** Column types per dialect, so the two schemas say the same thing. */
const T = {
  sqlite: { num: 'TEXT', int: 'INTEGER', json: 'TEXT', bool: 'INTEGER' },
  postgres: { num: 'NUMERIC', int: 'BIGINT', json: 'JSONB', bool: 'BOOLEAN' },
} as const;

function initial(d: Dialect): string {
  const { num, int, json, bool } = T[d];
  return `
CREATE TABLE decisions (
  signal_id TEXT PRIMARY KEY,
  outcome TEXT NOT NULL,
  symbol TEXT NOT NULL,
  action TEXT NOT NULL,
  confidence ${num} NOT NULL,
  source TEXT NOT NULL,
  reasons ${json} NOT NULL,
  intent TEXT,
  side TEXT,
  quantity ${num},
  notional_usd ${num},
  reference_price ${num},
  origin TEXT,
  signal_ts ${int} NOT NULL,
  ts ${int} NOT NULL,
  record ${json} NOT NULL,
  entry_id TEXT NOT NULL
);
CREATE TABLE fills (
  order_id TEXT PRIMARY KEY,
  signal_id TEXT NOT NULL,
  symbol TEXT NOT NULL,
  side TEXT NOT NULL,
  quantity ${num} NOT NULL,
  reference_price ${num} NOT NULL,
  fill_price ${num} NOT NULL,
  slippage_pct ${num} NOT NULL,
  fee_usd ${num} NOT NULL,
  fee_rate ${num} NOT NULL,
  notional_usd ${num} NOT NULL,
  status TEXT NOT NULL,
  reject_reason TEXT,
  signal_ts ${int} NOT NULL,
  ts ${int} NOT NULL,
  reduce_only ${bool} NOT NULL,
  origin TEXT NOT NULL,
  entry_id TEXT NOT NULL
);
CREATE TABLE round_trips (
  trade_id TEXT PRIMARY KEY,
  symbol TEXT NOT NULL,
  side TEXT NOT NULL,
  quantity ${num} NOT NULL,
  entry_price ${num} NOT NULL,
  exit_price ${num} NOT NULL,
  gross_pnl_usd ${num} NOT NULL,
  fees_usd ${num} NOT NULL,
  realized_pnl_usd ${num} NOT NULL,
  win ${bool} NOT NULL,
  opened_ts ${int} NOT NULL,
  closed_ts ${int} NOT NULL,
  hold_ms ${int} NOT NULL,
  exit_reason TEXT,
  open_order_id TEXT,
  open_signal_id TEXT,
  close_signal_id TEXT NOT NULL
);
CREATE TABLE equity (
  symbol TEXT NOT NULL,
  second ${int} NOT NULL,
  ts ${int} NOT NULL,
  side TEXT NOT NULL,
  quantity ${num} NOT NULL,
  avg_entry_price ${num} NOT NULL,
  mark_price ${num} NOT NULL,
  unrealized_pnl_usd ${num} NOT NULL,
  realized_pnl_usd ${num} NOT NULL,
  fees_usd ${num} NOT NULL,
  cause TEXT NOT NULL,
  order_id TEXT,
  balance_usd ${num} NOT NULL,
  equity_usd ${num} NOT NULL,
  exposure_usd ${num} NOT NULL,
  exposure_pct ${num} NOT NULL,
  drawdown_pct ${num} NOT NULL,
  open_positions ${int} NOT NULL,
  win_rate ${num} NOT NULL,
  closed_trades ${int} NOT NULL,
  entry_id TEXT NOT NULL,
  PRIMARY KEY (symbol, second)
);
CREATE TABLE dead_letters (
  topic TEXT NOT NULL,
  entry_id TEXT NOT NULL,
  dlq_source_id TEXT,
  dlq_group TEXT,
  dlq_attempts ${int},
  dlq_ts ${int},
  dlq_error TEXT,
  payload TEXT,
  PRIMARY KEY (topic, entry_id)
);
CREATE TABLE journal_state (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;
}

function readerIndexes(): string {
  return `
ALTER TABLE fills ADD COLUMN exit_reason TEXT;
CREATE INDEX decisions_ts ON decisions (ts);
CREATE INDEX decisions_source ON decisions (source, ts);
CREATE INDEX fills_ts ON fills (ts);
CREATE INDEX round_trips_closed_ts ON round_trips (closed_ts);
CREATE INDEX round_trips_open_signal ON round_trips (open_signal_id);
CREATE INDEX equity_ts ON equity (ts);
`;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: { sqlite: initial('sqlite'), postgres: initial('postgres') } },
  { version: 2, name: 'reader-indexes-and-fill-exit-reason', sql: { sqlite: readerIndexes(), postgres: readerIndexes() } },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** The table that records which migrations ran. */
export function schemaVersionTable(d: Dialect): string {
  return `CREATE TABLE IF NOT EXISTS schema_version (version ${T[d].int} PRIMARY KEY, name TEXT NOT NULL, applied_ts ${T[d].int} NOT NULL)`;
}
