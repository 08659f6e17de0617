/**
 * The trading state that decides whether an entry can pass right now, as a person wants
 * to read it: HALTED (the operator's kill switch or the circuit breaker, until POST
 * /resume) wins over DAILY LOSS (until 00:00 UTC), over DAILY LIMIT, over LOCKED (a
 * protection locking every entry), over COOLDOWN (the one that ends first is not the one
 * to show); else ACTIVE.
 * Closes always pass, whatever this says. Pure: the risk service's /stats in, a verdict out.
 */

export type EntryStateName = 'ACTIVE' | 'COOLDOWN' | 'DAILY_LIMIT' | 'HALTED' | 'DAILY_LOSS_LIMIT' | 'LOCKED';

export interface EntryStateInput {
  trading_state: string;
  halt_reason?: string | null;
  cooldown_until: number | null;
  entries_today: number;
  max_daily_entries: number;
  /** The operator's kill switch (POST /halt); its reason is shown. */
  kill_switch?: { reason: string; since: number } | null;
  /** risk.max_daily_loss_pct reached today. */
  daily_loss?: { limit_reached: boolean; resets_at: number } | null;
  /** Protection locks still holding (symbol null = every entry). */
  locks?: ReadonlyArray<{ protection: string; symbol: string | null; until: number }>;
}

export interface EntryState {
  state: EntryStateName;
  /** Epoch ms when entries may pass again (COOLDOWN: the cooldown's end; DAILY_LIMIT: next UTC midnight). */
  until: number | null;
  reason: string | null;
}

const DAY_MS = 86_400_000;

export function entryState(stats: EntryStateInput, now: number): EntryState {
  if (stats.kill_switch) return { state: 'HALTED', until: null, reason: `kill switch: ${stats.kill_switch.reason}` };
  if (stats.trading_state === 'HALTED') return { state: 'HALTED', until: null, reason: stats.halt_reason ?? 'circuit breaker' };
  if (stats.daily_loss?.limit_reached) return { state: 'DAILY_LOSS_LIMIT', until: stats.daily_loss.resets_at, reason: null };
  if (stats.entries_today >= stats.max_daily_entries) {
    return { state: 'DAILY_LIMIT', until: (Math.floor(now / DAY_MS) + 1) * DAY_MS, reason: null };
  }
  const global = (stats.locks ?? []).filter((l) => l.symbol === null && l.until > now).sort((a, b) => b.until - a.until)[0];
  if (global !== undefined) return { state: 'LOCKED', until: global.until, reason: global.protection };
  if (stats.cooldown_until !== null && stats.cooldown_until > now) {
    return { state: 'COOLDOWN', until: stats.cooldown_until, reason: null };
  }
  return { state: 'ACTIVE', until: null, reason: null };
}

/** "ACTIVE", "COOLDOWN until 14:05", "DAILY LIMIT (until 00:00 UTC)", "HALTED (drawdown 15.2% >= 15%)". */
export function describeEntryState(s: EntryState, formatTime: (epochMs: number) => string): string {
  switch (s.state) {
    case 'ACTIVE':
      return 'ACTIVE';
    case 'COOLDOWN':
      return `COOLDOWN until ${formatTime(s.until!)}`;
    case 'DAILY_LIMIT':
      return 'DAILY LIMIT (until 00:00 UTC)';
    case 'DAILY_LOSS_LIMIT':
      return 'DAILY LOSS LIMIT (until 00:00 UTC)';
    case 'LOCKED':
      return `LOCKED by ${s.reason} until ${formatTime(s.until!)}`;
    case 'HALTED':
      return `HALTED (${s.reason})`;
  }
}

/** What the protections hold now, in figures a person reads (docs/protections.md). */
export interface ProtectionsInput {
  daily_loss?: { loss_pct: number | null; max_daily_loss_pct: number } | null;
  locks?: ReadonlyArray<{ protection: string; symbol: string | null; until: number }>;
  sources?: ReadonlyArray<{ source: string; stopped_at: number | null }>;
}

/**
 * One line for the live screen: "day loss 1.2% of 2.0% · BTCUSDT locked by stoploss_guard#0
 * until 14:05 · source xgb stopped"; null when no protection is on or holding.
 */
export function describeProtections(p: ProtectionsInput, now: number, formatTime: (epochMs: number) => string): string | null {
  const parts: string[] = [];
  const day = p.daily_loss;
  if (day && day.max_daily_loss_pct > 0) parts.push(`day loss ${((day.loss_pct ?? 0) * 100).toFixed(1)}% of ${(day.max_daily_loss_pct * 100).toFixed(1)}%`);
  for (const lock of p.locks ?? []) {
    if (lock.until > now) parts.push(`${lock.symbol ?? 'every entry'} locked by ${lock.protection} until ${formatTime(lock.until)}`);
  }
  for (const s of p.sources ?? []) if (s.stopped_at !== null) parts.push(`source ${s.source} stopped (POST /sources/${s.source}/resume)`);
  return parts.length > 0 ? parts.join(' · ') : null;
}
