/**
 * Reading the journal: `quantum journal trades|decisions|equity` and `quantum journal
 * export DIR`. The same SQL runs on both databases (`?` placeholders; the PostgreSQL
 * store numbers them), and rows come back alike (decimals as text, booleans normalised).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TABLES, TABLE_NAMES, type Cell, type JournalTable, type Row } from './rows.js';
import type { JournalStore } from './store.js';

export type JournalView = 'trades' | 'decisions' | 'equity';
export const JOURNAL_VIEWS: readonly JournalView[] = ['trades', 'decisions', 'equity'];
export type OutputFormat = 'table' | 'csv' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'csv', 'json'];

export interface ViewFilter {
  /** Epoch ms: rows at or after it. */
  since?: number;
  symbol?: string;
  source?: string;
}

const BOOLEAN_COLUMNS = new Set(['win', 'reduce_only']);

/** SQLite stores booleans as 0/1: both stores answer true/false. */
function normalise(row: Row): Row {
  const out: Row = {};
  for (const [key, value] of Object.entries(row)) out[key] = BOOLEAN_COLUMNS.has(key) && typeof value === 'number' ? value !== 0 : value;
  return out;
}

const TRADE_COLUMNS = TABLES.round_trips.columns.map((c) => `r.${c}`).join(', ');
const DECISION_COLUMNS = TABLES.decisions.columns.filter((c) => c !== 'record' && c !== 'entry_id').join(', ');

/** The rows of one view, oldest first. Throws on a filter the view does not have. */
export async function readView(store: JournalStore, view: JournalView, filter: ViewFilter = {}): Promise<Row[]> {
  const where: string[] = [];
  const params: Cell[] = [];
  const add = (clause: string, value: Cell) => {
    where.push(clause);
    params.push(value);
  };
  let sql: string;
  if (view === 'trades') {
    if (filter.since !== undefined) add('r.closed_ts >= ?', filter.since);
    if (filter.symbol !== undefined) add('r.symbol = ?', filter.symbol);
    if (filter.source !== undefined) add('d.source = ?', filter.source);
    sql =
      `SELECT ${TRADE_COLUMNS}, d.source AS source FROM round_trips r LEFT JOIN decisions d ON d.signal_id = r.open_signal_id` +
      `${clause(where)} ORDER BY r.closed_ts, r.trade_id`;
  } else if (view === 'decisions') {
    if (filter.since !== undefined) add('ts >= ?', filter.since);
    if (filter.symbol !== undefined) add('symbol = ?', filter.symbol);
    if (filter.source !== undefined) add('source = ?', filter.source);
    sql = `SELECT ${DECISION_COLUMNS} FROM decisions${clause(where)} ORDER BY ts, signal_id`;
  } else {
    if (filter.source !== undefined) throw new Error('--source does not apply to equity (position updates carry no source)');
    if (filter.since !== undefined) add('ts >= ?', filter.since);
    if (filter.symbol !== undefined) add('symbol = ?', filter.symbol);
    sql = `SELECT ${TABLES.equity.columns.filter((c) => c !== 'entry_id').join(', ')} FROM equity${clause(where)} ORDER BY ts, symbol`;
  }
  return (await store.query(sql, params)).map(normalise);
}

function clause(where: string[]): string {
  return where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`;
}

/** Every row of a table, in key order (for export). */
export async function readTable(store: JournalStore, table: JournalTable): Promise<Row[]> {
  const spec = TABLES[table];
  return (await store.query(`SELECT ${spec.columns.join(', ')} FROM ${table} ORDER BY ${[spec.time, ...spec.key].join(', ')}`)).map(
    normalise,
  );
}

function csvCell(value: Cell | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV with a header line; an empty cell is NULL. */
export function toCsv(rows: readonly Row[], columns: readonly string[] = rows[0] ? Object.keys(rows[0]) : []): string {
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c])).join(','));
  return `${lines.join('\n')}\n`;
}

/** Fixed-width text; *_ts columns shown as ISO times. */
export function toTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(no rows)';
  const columns = Object.keys(rows[0]!).filter((c) => c !== 'record');
  const show = (column: string, value: Cell | undefined): string => {
    if (value === null || value === undefined) return '-';
    if (/(^|_)ts$/.test(column) && typeof value === 'number') return new Date(value).toISOString();
    return String(value);
  };
  const table = [columns, ...rows.map((row) => columns.map((c) => show(c, row[c])))];
  const widths = columns.map((_, i) => Math.max(...table.map((line) => line[i]!.length)));
  return table.map((line) => line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function formatRows(rows: readonly Row[], format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  if (format === 'csv') return toCsv(rows).trimEnd();
  return toTable(rows);
}

/** Writes DIR/<table>.csv for every table; returns the row count per table. */
export async function exportJournal(store: JournalStore, dir: string): Promise<Record<JournalTable, number>> {
  mkdirSync(dir, { recursive: true });
  const counts = {} as Record<JournalTable, number>;
  for (const table of TABLE_NAMES) {
    const rows = await readTable(store, table);
    writeFileSync(join(dir, `${table}.csv`), toCsv(rows, TABLES[table].columns));
    counts[table] = rows.length;
  }
  return counts;
}
