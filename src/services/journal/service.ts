/**
 * The trade journal: a consumer of its own (group `journal`) on every topic it records,
 * so it never takes work from the services. Each batch's rows are written to the
 * database in one transaction, with the fill fold's state, and only then acknowledged
 * on the bus (the subscription's beforeCommit). A crash between the two redelivers the
 * batch: every row is keyed (INSERT … ON CONFLICT DO NOTHING) and the fold skips fills
 * it already folded, so nothing is lost and nothing is written twice.
 *
 * What it records: decisions (trade.signal.safe: approved; trade.signal.rejected:
 * rejected; HOLDs from trade.signal.v5: skipped), fills (every ExecutionResult), round
 * trips (the fills folded through the monitor's ledger), equity (trade.position.update,
 * the first update of each symbol in each second) and dead letters (every `.dlq`).
 */
import type { Delivery, Subscription } from '../../bus/bus.js';
import { decodeSignal, decoderFor } from '../../bus/codec.js';
import { trimExecutionToWorkingSet } from '../../bus/execution-trim.js';
import { dlqTopic, GROUPS, TOPICS } from '../../bus/topics.js';
import { ExecutionResult, PositionUpdate, RiskApprovedSignal, RiskRejection, type TradeSignal } from '../../core/messages.js';
import type { ServiceDeps } from '../common/host.js';
import {
  FillFold,
  approvedRow,
  batchSize,
  deadLetterRow,
  emptyBatch,
  equityRow,
  fillRow,
  rejectedRow,
  skippedRow,
  type RowBatch,
} from './rows.js';
import type { JournalStore } from './store.js';

/** The topics the journal reads, in the order a batch is handled. */
export const JOURNAL_TOPICS: readonly string[] = [
  TOPICS.signal,
  TOPICS.safe,
  TOPICS.rejected,
  TOPICS.execution,
  TOPICS.position,
  ...[TOPICS.signal, TOPICS.safe, TOPICS.rejected, TOPICS.execution, TOPICS.position, TOPICS.tick].map(dlqTopic),
];
const DLQ_TOPICS = new Set(JOURNAL_TOPICS.filter((t) => t.endsWith('.dlq')));

type Decoded =
  | { kind: 'message'; value: unknown }
  | { kind: 'dead_letter' }
  /** Malformed: the service that owns the topic dead-letters it, and the journal records that from the .dlq. */
  | { kind: 'malformed' };

const DECODERS: Record<string, (fields: Record<string, string>, id: string) => unknown> = {
  [TOPICS.signal]: decodeSignal,
  [TOPICS.safe]: decoderFor(RiskApprovedSignal),
  [TOPICS.rejected]: decoderFor(RiskRejection),
  [TOPICS.execution]: decoderFor(ExecutionResult),
  [TOPICS.position]: decoderFor(PositionUpdate),
};

function decodeForJournal(topic: string, fields: Record<string, string>, id: string): Decoded {
  if (DLQ_TOPICS.has(topic)) return { kind: 'dead_letter' };
  const decode = DECODERS[topic];
  if (!decode) return { kind: 'malformed' };
  try {
    return { kind: 'message', value: decode(fields, id) };
  } catch {
    // Never dead-lettered by the journal: it would write the same dead letter twice.
    return { kind: 'malformed' };
  }
}

export interface JournalDeps extends ServiceDeps {
  store: JournalStore;
}

export interface JournalOptions {
  /**
   * The books start flat whatever the database holds (the embedded bus of `quantum up`
   * starts empty every run, and so do the monitor's books); the rows already written stay.
   */
  freshBooks?: boolean;
  /**
   * trade.execution.res is trimmed to about this many entries behind what the journal
   * has written and every group and the monitor's snapshot cover (default
   * streams.maxlen; 0 = never trim).
   */
  workingSet?: number;
  /** How often it trims. Default 10 s. */
  trimIntervalMs?: number;
}

export interface JournalCounts {
  batches: number;
  rows: number;
  malformed: number;
  /** trade.execution.res entries trimmed once journaled. */
  trimmed: number;
}

/** How often the journal logs what it wrote (counts, not one line per batch). */
const REPORT_INTERVAL_MS = 60_000;
const TRIM_INTERVAL_MS = 10_000;

export class JournalService {
  private readonly fold: FillFold;
  private pending: RowBatch = emptyBatch();
  private foldChanged = false;
  /** The fold state as last committed, to roll back to when a write fails. */
  private committedState: string | null = null;
  private subscription?: Subscription;
  private reportTimer?: NodeJS.Timeout;
  private trimTimer?: NodeJS.Timeout;
  private trimming?: Promise<void>;
  readonly counts: JournalCounts = { batches: 0, rows: 0, malformed: 0, trimmed: 0 };
  private reported = 0;

  constructor(
    private readonly deps: JournalDeps,
    private readonly options: JournalOptions = {},
  ) {
    this.fold = new FillFold(deps.config.account.initial_balance_usd);
  }

  get store(): JournalStore {
    return this.deps.store;
  }

  get consumer(): string {
    return this.deps.consumer ?? `${GROUPS.journal}-1`;
  }

  /** Entries acknowledged on the bus so far. */
  get acknowledged(): number {
    return this.subscription?.acknowledged ?? 0;
  }

  async start(): Promise<void> {
    const { bus, logger, store } = this.deps;
    const applied = await store.migrate();
    this.committedState = this.options.freshBooks ? null : await store.loadState();
    this.restoreFold();
    logger.info({ journal: store.label, migrations_applied: applied, restored: this.committedState !== null }, 'journal started');
    this.subscription = bus.subscribe<Decoded>({
      topics: JOURNAL_TOPICS,
      group: GROUPS.journal,
      consumer: this.consumer,
      decode: decodeForJournal,
      handler: (delivery) => this.handle(delivery),
      beforeCommit: () => this.flush(),
      onError: (err) => logger.warn({ err }, 'journal: bus or database error; retrying'),
    });
    this.reportTimer = setInterval(() => this.report(), REPORT_INTERVAL_MS);
    this.reportTimer.unref();
    const workingSet = this.options.workingSet ?? this.deps.config.streams.maxlen;
    if (workingSet > 0) {
      this.trimTimer = setInterval(() => void this.trimExecution(workingSet), this.options.trimIntervalMs ?? TRIM_INTERVAL_MS);
      this.trimTimer.unref();
    }
  }

  /**
   * Redis keeps the working set: fills the journal has written (and every other group
   * and the monitor's snapshot cover) leave trade.execution.res, down to `workingSet`.
   */
  trimExecution(workingSet: number): Promise<void> {
    this.trimming ??= trimExecutionToWorkingSet(this.deps.bus, workingSet)
      .then((removed) => {
        this.counts.trimmed += removed;
      })
      .catch((err: unknown) => this.deps.logger.warn({ err }, 'journal: trimming trade.execution.res failed; tried again later'))
      .finally(() => {
        this.trimming = undefined;
      });
    return this.trimming;
  }

  private handle(delivery: Delivery<Decoded>): void {
    const { topic, id, message } = delivery;
    if (message.kind === 'dead_letter') {
      this.pending.dead_letters.push(deadLetterRow(topic.slice(0, -'.dlq'.length), id, delivery.fields));
      return;
    }
    if (message.kind === 'malformed') {
      this.counts.malformed += 1;
      return;
    }
    switch (topic) {
      case TOPICS.signal: {
        const signal = message.value as TradeSignal;
        if (signal.action === 'HOLD') this.pending.decisions.push(skippedRow(signal, id));
        return;
      }
      case TOPICS.safe:
        this.pending.decisions.push(approvedRow(message.value as RiskApprovedSignal, id));
        return;
      case TOPICS.rejected:
        this.pending.decisions.push(rejectedRow(message.value as RiskRejection, id));
        return;
      case TOPICS.execution: {
        const result = message.value as ExecutionResult;
        this.pending.fills.push(fillRow(result, id));
        const trip = this.fold.onResult(result, id);
        this.foldChanged = true;
        if (trip) this.pending.round_trips.push(trip);
        return;
      }
      case TOPICS.position:
        this.pending.equity.push(equityRow(message.value as PositionUpdate, id));
        return;
    }
  }

  /** Writes the batch's rows and the fold state in one transaction; on failure rolls the fold back. */
  private async flush(): Promise<void> {
    const rows = batchSize(this.pending);
    if (rows === 0 && !this.foldChanged) return;
    const batch = this.pending;
    const state = this.foldChanged ? JSON.stringify(this.fold.toState()) : null;
    this.pending = emptyBatch();
    this.foldChanged = false;
    try {
      await this.deps.store.write(batch, state);
    } catch (err) {
      // The batch stays unacknowledged and comes again: fold it again from the last commit.
      this.restoreFold();
      throw err;
    }
    if (state !== null) this.committedState = state;
    this.counts.batches += 1;
    this.counts.rows += rows;
  }

  private restoreFold(): void {
    if (this.committedState === null) this.fold.reset();
    else this.fold.restore(JSON.parse(this.committedState));
  }

  private report(): void {
    if (this.counts.rows === this.reported) return;
    this.reported = this.counts.rows;
    this.deps.logger.info({ ...this.counts }, 'journal: rows written so far');
  }

  /** True once the journal's group has nothing left to read or acknowledge on any topic; false at the deadline. */
  async caughtUp(): Promise<boolean> {
    for (const topic of JOURNAL_TOPICS) {
      const info = await this.deps.bus.info(topic);
      if (info.length === 0) continue;
      const group = info.groups.find((g) => g.name === GROUPS.journal);
      if (!group || group.pending > 0 || group.lag !== 0) return false;
    }
    return true;
  }

  /** Waits until caughtUp() (polling), at most `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = this.deps.clock.now() + timeoutMs;
    for (;;) {
      if (await this.caughtUp().catch(() => false)) return true;
      if (this.deps.clock.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async stop(): Promise<void> {
    if (this.reportTimer) clearInterval(this.reportTimer);
    if (this.trimTimer) clearInterval(this.trimTimer);
    await this.trimming;
    await this.subscription?.close();
    this.subscription = undefined;
    this.report();
  }
}
