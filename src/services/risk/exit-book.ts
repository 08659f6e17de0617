/**
 * The risk service's book of protective exits, with no I/O: each position's armed levels
 * (core/exits.ts holds the rules; quotes come from the risk state, their one owner), the one
 * protective close per position that may be in flight, and the exit counts by reason.
 * It is part of the risk snapshot, so the trail's high-water mark, the levels and the
 * in-flight close survive a restart (written atomically with each batch).
 *
 * Every change of a symbol's levels queues an ExitLevels message (trade.exit.levels) that
 * the service publishes with the batch's outputs: the monitor shows them on /positions.
 */
import { z } from 'zod';
import { toNumber, type Fixed } from '../../core/fixed.js';
import { MembersCache, VersionedMap } from '../../core/json-cache.js';
import {
  armedExitsFromJson,
  armedExitsToJson,
  evaluateExit,
  exitSidePrice,
  hasArmedLevel,
  protectiveExitSignalId,
  trailingStopLevel,
  type ArmedExits,
  type Direction,
  type ExitTrigger,
} from '../../core/exits.js';
import {
  SCHEMA_VERSION,
  type ExitLevels,
  type ExitLevelsCause,
  type ExitReason,
  type ProtectiveExitReason,
} from '../../core/messages.js';

const decimalBig = z.string().regex(/^-?\d+$/);

const ArmedExitsJson = z.object({
  entry_signal_id: z.string().min(1),
  direction: z.enum(['LONG', 'SHORT']),
  stop_loss: decimalBig.nullable(),
  take_profit: decimalBig.nullable(),
  trailing_pct: decimalBig.nullable(),
  high_water: decimalBig.nullable(),
  expires_ts: z.number().int().nonnegative().nullable(),
});

export const ExitBookSnapshot = z.object({
  levels: z.record(z.string(), ArmedExitsJson),
  /** Per symbol: how many protective closes ended (answered or expired) for the current levels. */
  attempts: z.record(z.string(), z.number().int().nonnegative()),
  /** Per symbol: the protective close in flight (at most one). */
  closing: z.record(z.string(), z.object({ signal_id: z.string(), reason: z.enum(['stop_loss', 'take_profit', 'trailing_stop', 'time_limit']) })),
  /** Written by earlier builds (quotes now live once, in the risk state); read and ignored. */
  quotes: z.record(z.string(), z.object({ bid: decimalBig.optional(), ask: decimalBig.optional() })).optional(),
  exits_by_reason: z.record(z.string(), z.number().int().nonnegative()),
});
export type ExitBookSnapshot = z.infer<typeof ExitBookSnapshot>;

export const EMPTY_EXIT_BOOK: ExitBookSnapshot = { levels: {}, attempts: {}, closing: {}, exits_by_reason: {} };

/** The latest accepted quote of a symbol, as the risk state keeps it (one source for it). */
export type QuoteOf = (symbol: string) => { bid: Fixed; ask: Fixed } | undefined;

const NOTHING: readonly ExitLevels[] = Object.freeze([]);

export interface FiredExit {
  symbol: string;
  signalId: string;
  trigger: ExitTrigger;
  levels: ArmedExits;
}

export class ExitBook {
  private readonly levels = new VersionedMap<string, ArmedExits>();
  private readonly attempts = new VersionedMap<string, number>();
  private readonly closing = new VersionedMap<string, { signal_id: string; reason: ProtectiveExitReason }>();
  private exitsByReason: Partial<Record<ExitReason, number>> = {};
  private outbox: ExitLevels[] = [];

  constructor(private readonly quoteOf: QuoteOf) {}

  /** The exit-side price for a position in `direction`: its quote when the latest tick had one, else `last`. */
  exitPrice(symbol: string, direction: Direction, last: Fixed): Fixed {
    return exitSidePrice({ last, ...this.quoteOf(symbol) }, direction);
  }

  /** Arms (or replaces) a position's levels: a later entry replaces them whole. */
  arm(symbol: string, levels: ArmedExits, now: number, cause: ExitLevelsCause = 'armed'): void {
    const previous = this.levels.get(symbol);
    if (previous?.entrySignalId !== levels.entrySignalId) this.attempts.delete(symbol);
    this.levels.set(symbol, levels);
    // Levels that arm nothing are worth a message only when they replace armed ones.
    if (hasArmedLevel(levels) || (previous !== undefined && hasArmedLevel(previous))) this.queue(symbol, cause, now);
  }

  get(symbol: string): ArmedExits | undefined {
    return this.levels.get(symbol);
  }

  /** Forgets a symbol's levels (its position is flat). */
  clear(symbol: string, now: number): void {
    const previous = this.levels.get(symbol);
    if (previous === undefined) return;
    this.levels.delete(symbol);
    this.attempts.delete(symbol);
    if (hasArmedLevel(previous)) this.queue(symbol, 'cleared', now);
  }

  isClosing(symbol: string): boolean {
    return this.closing.has(symbol);
  }

  /**
   * Checks one symbol's levels against its exit-side price for a position in `direction`
   * (the caller knows the position and the last price); moves the trail; returns the exit to
   * fire, if any. Nothing fires while a protective close of that symbol is in flight.
   */
  evaluate(symbol: string, direction: Direction, last: Fixed, now: number): FiredExit | null {
    const levels = this.levels.get(symbol);
    if (levels === undefined || levels.direction !== direction || this.closing.has(symbol)) return null;
    const price = this.exitPrice(symbol, direction, last);
    const result = evaluateExit(levels, price, now);
    if (result.trailed) {
      this.levels.set(symbol, result.levels);
      if (result.trigger === null) this.queue(symbol, 'trailed', now);
    }
    if (result.trigger === null) return null;
    const signalId = protectiveExitSignalId(levels.entrySignalId, result.trigger.reason, this.attempts.get(symbol) ?? 0);
    return { symbol, signalId, trigger: result.trigger, levels: result.levels };
  }

  /** Records that the protective close of `fired` was approved and is in flight. */
  markClosing(fired: FiredExit, now: number): void {
    this.closing.set(fired.symbol, { signal_id: fired.signalId, reason: fired.trigger.reason });
    this.queue(fired.symbol, 'triggered', now, fired.trigger.reason);
  }

  /** Symbols with armed levels. */
  symbols(): string[] {
    return [...this.levels.keys()];
  }

  /**
   * An execution result: ends the symbol's protective close when it is that close's
   * result (and raises the attempt, so a next fire gets a fresh signal_id), and counts
   * filled closes by exit reason.
   */
  onResult(symbol: string, signalId: string, filled: boolean, exitReason: ExitReason | undefined): void {
    // A filled close that left a position (execution clipped it to its own, smaller fold
    // while risk's was larger) needs a fresh id too: execution fills an id once.
    this.endClosing(symbol, signalId);
    if (filled && exitReason !== undefined) this.exitsByReason[exitReason] = (this.exitsByReason[exitReason] ?? 0) + 1;
  }

  /**
   * The symbol's protective close expired in flight (risk no longer counts it; execution can
   * only reject it EXPIRED): like a rejection, the next check fires a fresh one.
   */
  onExpired(symbol: string, signalId: string): void {
    this.endClosing(symbol, signalId);
  }

  private endClosing(symbol: string, signalId: string): void {
    if (this.closing.get(symbol)?.signal_id !== signalId) return;
    this.closing.delete(symbol);
    this.attempts.set(symbol, (this.attempts.get(symbol) ?? 0) + 1);
  }

  exitCounts(): Partial<Record<ExitReason, number>> {
    return { ...this.exitsByReason };
  }

  /** True when some position has a time limit (the service's clock check can be skipped otherwise). */
  hasTimeLimit(): boolean {
    for (const levels of this.levels.values()) if (levels.expiresTs !== null) return true;
    return false;
  }

  /** True when a protective close ended (rejected, expired, or filled short of flat) and none is in flight for that symbol. */
  hasRetry(): boolean {
    for (const symbol of this.attempts.keys()) if (!this.closing.has(symbol) && this.levels.has(symbol)) return true;
    return false;
  }

  closingCount(): number {
    return this.closing.size;
  }

  resetStatistics(): void {
    this.exitsByReason = {};
  }

  /** The ExitLevels messages queued since the last drain, oldest first. */
  drain(): readonly ExitLevels[] {
    if (this.outbox.length === 0) return NOTHING;
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  /** The wire view of a symbol's levels now (all null when none are armed). */
  message(symbol: string, cause: ExitLevelsCause, now: number, reason?: ProtectiveExitReason): ExitLevels {
    const l = this.levels.get(symbol);
    const trail = l ? trailingStopLevel(l) : null;
    const out: ExitLevels = {
      schema_version: SCHEMA_VERSION,
      symbol,
      entry_signal_id: l?.entrySignalId ?? null,
      stop_loss: l?.stopLoss != null ? toNumber(l.stopLoss) : null,
      take_profit: l?.takeProfit != null ? toNumber(l.takeProfit) : null,
      trailing_stop: trail !== null ? toNumber(trail) : null,
      trailing_stop_pct: l?.trailingPct != null ? toNumber(l.trailingPct) : null,
      high_water_mark: l?.highWater != null ? toNumber(l.highWater) : null,
      expires_ts: l?.expiresTs ?? null,
      cause,
      ts: now,
    };
    if (reason !== undefined) out.exit_reason = reason;
    return out;
  }

  /** Every symbol's armed levels, for /stats and the HTTP answer. */
  views(now: number): ExitLevels[] {
    return [...this.levels.keys()].sort().map((symbol) => this.message(symbol, 'armed', now));
  }

  toSnapshot(): ExitBookSnapshot {
    return {
      levels: Object.fromEntries([...this.levels].map(([s, l]) => [s, armedExitsToJson(l)])),
      attempts: Object.fromEntries(this.attempts),
      closing: Object.fromEntries([...this.closing].map(([s, c]) => [s, { ...c }])),
      exits_by_reason: { ...this.exitsByReason },
    };
  }

  /**
   * Exactly JSON.stringify(this.toSnapshot()) (written with every batch): each symbol's
   * text is kept until its entry is replaced (levels are readonly, replaced whole).
   */
  toSnapshotJson(): string {
    const levels = this.levelsText.members(this.levels);
    const attempts = this.attemptsText.members(this.attempts);
    const closing = this.closingText.members(this.closing);
    if (levels === null || attempts === null || closing === null) return JSON.stringify(this.toSnapshot());
    return `{"levels":{${levels}},"attempts":{${attempts}},"closing":{${closing}},"exits_by_reason":${JSON.stringify(this.exitsByReason)}}`;
  }

  private readonly levelsText = new MembersCache<ArmedExits>((l) => JSON.stringify(armedExitsToJson(l)));
  private readonly attemptsText = new MembersCache<number>((n) => JSON.stringify(n));
  private readonly closingText = new MembersCache<{ signal_id: string; reason: ProtectiveExitReason }>((c) => JSON.stringify({ ...c }));

  restore(snap: ExitBookSnapshot): void {
    this.levels.clear();
    this.attempts.clear();
    this.closing.clear();
    this.outbox = [];
    for (const [s, l] of Object.entries(snap.levels)) this.levels.set(s, armedExitsFromJson(l));
    for (const [s, n] of Object.entries(snap.attempts)) this.attempts.set(s, n);
    for (const [s, c] of Object.entries(snap.closing)) this.closing.set(s, { ...c });
    this.exitsByReason = { ...snap.exits_by_reason } as Partial<Record<ExitReason, number>>;
  }

  private queue(symbol: string, cause: ExitLevelsCause, now: number, reason?: ProtectiveExitReason): void {
    this.outbox.push(this.message(symbol, cause, now, reason));
  }
}
