/**
 * Binance public market data as a running price source: the thin I/O shell around the
 * pure frame parser (frames.ts) and book (book.ts). No API key: public streams only.
 *
 * Built on the `ws` package rather than ccxt: we need exactly two public streams, the
 * venue's own frame format (update ids, aggTrade ids for gap detection, exact decimal
 * strings) and control over keep-alive, reconnects and the 24-hour limit; ccxt's
 * WebSocket layer (ccxt.pro) normalises all that away, parses prices into floats and
 * brings hundreds of exchanges we do not use. Another venue plugs in the same way: a
 * module of its own beside this one implementing RunningPriceSource.
 *
 * - One combined-stream connection per route (spot: one; USDⓈ-M: /public for
 *   bookTicker, /market for aggTrade), for the configured instruments.
 * - Keep-alive: Binance pings (spot every 20 s, futures every 3 min) and closes a
 *   connection that does not pong; `ws` answers every ping with a pong carrying the same
 *   payload (`autoPong`, on by default; set explicitly here and tested). A connection
 *   silent for `idleTimeoutMs` (no frame, no ping) is taken as dead and replaced.
 * - Reconnect after any drop with jittered exponential backoff (seeded random); the
 *   attempt count restarts once a new connection delivers data.
 * - A planned reconnect before the venue's 24-hour limit: a second connection is opened,
 *   and the old one closed once the new one is open (make before break; overlapping
 *   frames are dropped by update / trade id).
 * - aggTrade id gaps are counted (qt_feed_gaps_total) and logged one by one.
 * - Conflation: at most one tick per symbol per `minTickIntervalMs`, the latest book
 *   always wins, with a trailing flush.
 */
import WebSocket from 'ws';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from '../../core/backoff.js';
import type { Clock } from '../../core/clock.js';
import { Conflator } from '../../core/conflation.js';
import { fx, type Fixed } from '../../core/fixed.js';
import type { InstrumentTable } from '../../core/instruments.js';
import type { FeedStatus, RunningPriceSource, TickSink } from '../../core/market.js';
import type { Random } from '../../core/random.js';
import type { Logger } from '../../platform/logger.js';
import type { FeedMetrics } from '../../platform/metrics.js';
import { BinanceBook } from './book.js';
import { parseFrame, streamRoutes, type BinanceMarket, type StreamRoute } from './frames.js';

/** Binance closes every connection at 24 h; we move to a new one a little before. */
export const DEFAULT_MAX_CONNECTION_MS = 23 * 3_600_000 + 30 * 60_000;
/** Silence after which a connection is replaced: spot pings every 20 s, futures every 3 min. */
export const DEFAULT_IDLE_TIMEOUT_MS: Record<BinanceMarket, number> = { spot: 60_000, usdm: 400_000 };
/** Malformed frames logged one by one; after that, every 1000th. */
const MALFORMED_LOGGED = 20;

export interface BinanceSourceOptions {
  market: BinanceMarket;
  instruments: InstrumentTable;
  clock: Clock;
  logger: Logger;
  /** Seeded: the reconnect jitter. */
  rng: Random;
  minTickIntervalMs: number;
  /** market.binance.ws_url: replaces Binance's base URL. */
  baseUrl?: string;
  metrics?: FeedMetrics;
  backoff?: BackoffOptions;
  maxConnectionMs?: number;
  idleTimeoutMs?: number;
}

interface Link {
  route: StreamRoute;
  ws?: WebSocket;
  /** The next connection during a planned reconnect, until it opens. */
  standby?: WebSocket;
  open: boolean;
  /** Failed attempts since data last flowed. */
  attempt: number;
  gotData: boolean;
  reconnectTimer?: NodeJS.Timeout;
  rotateTimer?: NodeJS.Timeout;
  idleTimer?: NodeJS.Timeout;
  lastFrameAt: number;
}

export class BinanceSource implements RunningPriceSource {
  readonly kind = 'binance' as const;
  private readonly book: BinanceBook;
  private readonly conflator: Conflator;
  private readonly links: Link[];
  private readonly backoff: BackoffOptions;
  private readonly maxConnectionMs: number;
  private readonly idleTimeoutMs: number;
  private emit: TickSink = () => undefined;
  private flushTimer?: NodeJS.Timeout;
  private stopped = false;
  private downSince: number | null = null;
  private reconnects = 0;
  private plannedReconnects = 0;
  private gaps = 0;
  private malformed = 0;
  private lastError: string | null = null;

  constructor(private readonly options: BinanceSourceOptions) {
    this.book = new BinanceBook(options.instruments);
    this.conflator = new Conflator(options.minTickIntervalMs);
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.maxConnectionMs = options.maxConnectionMs ?? DEFAULT_MAX_CONNECTION_MS;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS[options.market];
    this.links = streamRoutes(options.market, [...options.instruments.keys()], options.baseUrl).map((route) => ({
      route,
      open: false,
      attempt: 0,
      gotData: false,
      lastFrameAt: 0,
    }));
  }

  /** The connections' URLs (for logs and `quantum feed`). */
  urls(): string[] {
    return this.links.map((l) => l.route.url);
  }

  /** Opens every connection and returns at once; ticks flow to `emit` as they come. */
  async start(emit: TickSink): Promise<void> {
    this.emit = emit;
    this.stopped = false;
    this.downSince = this.options.clock.now();
    this.options.metrics?.connected.set({ source: this.kind }, 0);
    for (const link of this.links) this.connect(link);
    this.options.logger.info({ market: this.options.market, urls: this.urls() }, 'binance feed connecting');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    const closing: Promise<void>[] = [];
    for (const link of this.links) {
      clearTimeout(link.reconnectTimer);
      clearTimeout(link.rotateTimer);
      clearTimeout(link.idleTimer);
      for (const ws of [link.ws, link.standby]) if (ws) closing.push(closeSocket(ws));
      link.ws = undefined;
      link.standby = undefined;
      link.open = false;
    }
    await Promise.all(closing);
  }

  price(symbol: string): Fixed | undefined {
    const tick = this.book.tick(symbol, this.options.clock.now());
    return tick === undefined ? undefined : fx(tick.price);
  }

  status(now: number): FeedStatus {
    const ages: Record<string, number | null> = {};
    for (const symbol of this.book.symbols()) {
      const at = this.book.lastMessageAt(symbol);
      ages[symbol] = at === undefined ? null : Math.max(0, now - at);
    }
    return {
      source: this.kind,
      connected: this.downSince === null,
      down_since: this.downSince,
      down_ms: this.downSince === null ? 0 : Math.max(0, now - this.downSince),
      reconnects: this.reconnects,
      planned_reconnects: this.plannedReconnects,
      gaps: this.gaps,
      malformed: this.malformed,
      last_error: this.lastError,
      last_message_age_ms: ages,
    };
  }

  // -- connections ------------------------------------------------------------------

  private connect(link: Link): void {
    if (this.stopped) return;
    const ws = new WebSocket(link.route.url, { autoPong: true, handshakeTimeout: 10_000 });
    link.ws = ws;
    link.gotData = false;
    ws.on('open', () => this.onOpen(link, ws));
    ws.on('message', (data, isBinary) => this.onMessage(link, ws, data, isBinary));
    ws.on('ping', () => this.touch(link, ws));
    ws.on('error', (error) => {
      if (ws === link.ws) this.lastError = error.message;
      if (ws === link.ws) this.options.logger.warn({ url: link.route.url, err: error.message, attempt: link.attempt }, 'binance feed connection error');
    });
    ws.on('close', (code, reason) => this.onClose(link, ws, code, reason.toString()));
  }

  private onOpen(link: Link, ws: WebSocket): void {
    if (ws !== link.ws) return;
    link.open = true;
    this.touch(link, ws);
    this.options.logger.info({ url: link.route.url, streams: link.route.streams.length }, 'binance feed connected');
    this.scheduleRotation(link);
    this.updateConnected();
  }

  private onClose(link: Link, ws: WebSocket, code: number, reason: string): void {
    if (ws === link.standby) {
      // The next connection of a planned reconnect failed before it opened: the current one stays; try again later.
      link.standby = undefined;
      if (!this.stopped) this.scheduleRotation(link, this.backoffFor(link));
      return;
    }
    if (ws !== link.ws || this.stopped) return;
    link.open = false;
    link.ws = undefined;
    clearTimeout(link.rotateTimer);
    clearTimeout(link.idleTimer);
    this.updateConnected();
    const delay = this.backoffFor(link);
    link.attempt += 1;
    this.reconnects += 1;
    this.options.metrics?.reconnects.inc({ source: this.kind, kind: 'unplanned' });
    this.options.logger.warn({ url: link.route.url, code, reason, retry_in_ms: delay, attempt: link.attempt }, 'binance feed connection lost; reconnecting');
    link.reconnectTimer = setTimeout(() => this.connect(link), delay);
    link.reconnectTimer.unref?.();
  }

  private backoffFor(link: Link): number {
    return backoffDelay(link.attempt, this.options.rng, this.backoff);
  }

  private scheduleRotation(link: Link, inMs = this.maxConnectionMs): void {
    clearTimeout(link.rotateTimer);
    link.rotateTimer = setTimeout(() => this.rotate(link), inMs);
    link.rotateTimer.unref?.();
  }

  /** Planned reconnect: open the next connection; the current one closes once it is open. */
  private rotate(link: Link): void {
    if (this.stopped || link.standby) return;
    const next = new WebSocket(link.route.url, { autoPong: true, handshakeTimeout: 10_000 });
    link.standby = next;
    next.on('error', (error) => this.options.logger.warn({ url: link.route.url, err: error.message }, 'binance feed: planned reconnect failed'));
    next.on('close', (code, reason) => this.onClose(link, next, code, reason.toString()));
    next.on('message', (data, isBinary) => this.onMessage(link, next, data, isBinary));
    next.on('ping', () => this.touch(link, next));
    next.once('open', () => {
      if (link.standby !== next) return;
      const old = link.ws;
      link.standby = undefined;
      link.ws = next;
      link.open = true;
      this.plannedReconnects += 1;
      this.options.metrics?.reconnects.inc({ source: this.kind, kind: 'planned' });
      this.options.logger.info({ url: link.route.url }, 'binance feed: planned reconnect before the 24 h connection limit');
      if (old) void closeSocket(old);
      this.touch(link, next);
      this.scheduleRotation(link);
      this.updateConnected();
    });
  }

  /** Any frame or ping proves the connection alive; silence past the idle timeout replaces it. */
  private touch(link: Link, ws: WebSocket): void {
    if (ws !== link.ws) return;
    link.lastFrameAt = this.options.clock.now();
    clearTimeout(link.idleTimer);
    link.idleTimer = setTimeout(() => {
      if (ws !== link.ws) return;
      this.options.logger.warn({ url: link.route.url, idle_ms: this.idleTimeoutMs }, 'binance feed silent (no data, no ping); replacing the connection');
      ws.terminate();
    }, this.idleTimeoutMs);
    link.idleTimer.unref?.();
  }

  private updateConnected(): void {
    const all = this.links.every((l) => l.open);
    if (all && this.downSince !== null) this.downSince = null;
    else if (!all && this.downSince === null) this.downSince = this.options.clock.now();
    this.options.metrics?.connected.set({ source: this.kind }, all ? 1 : 0);
  }

  // -- frames -----------------------------------------------------------------------

  private onMessage(link: Link, ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (ws === link.ws) this.touch(link, ws);
    const text = isBinary ? '' : data.toString();
    const parsed = isBinary ? ({ ok: false, error: 'binary frame' } as const) : parseFrame(text);
    if (!parsed.ok) {
      this.malformed += 1;
      this.options.metrics?.malformed.inc({ source: this.kind });
      if (this.malformed <= MALFORMED_LOGGED || this.malformed % 1000 === 0) {
        this.options.logger.warn({ url: link.route.url, error: parsed.error, frame: text.slice(0, 200), malformed_total: this.malformed }, 'binance feed: malformed frame skipped');
      }
      return;
    }
    const event = parsed.event;
    if (event.kind === 'reply') {
      if (event.error) this.options.logger.warn({ url: link.route.url, error: event.error }, 'binance feed: error reply');
      return;
    }
    if (ws === link.ws && !link.gotData) {
      link.gotData = true;
      link.attempt = 0;
    }
    const now = this.options.clock.now();
    const outcome = this.book.apply(event, now);
    if (outcome.kind === 'ignored') return;
    if (outcome.gap) {
      this.gaps += 1;
      this.options.metrics?.gaps.inc({ source: this.kind });
      this.options.logger.warn({ ...outcome.gap, gaps_total: this.gaps }, 'binance feed: aggTrade id gap (trades missed)');
    }
    if (this.conflator.offer(outcome.symbol, now)) {
      const tick = this.book.tick(outcome.symbol, now);
      if (tick) this.emit([tick]);
    } else {
      this.scheduleFlush();
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.stopped) return;
    const at = this.conflator.nextDue();
    if (at === undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      const now = this.options.clock.now();
      const ticks = this.conflator.due(now).flatMap((symbol) => this.book.tick(symbol, now) ?? []);
      if (ticks.length > 0) this.emit(ticks);
      this.scheduleFlush();
    }, Math.max(0, at - this.options.clock.now()));
    this.flushTimer.unref?.();
  }
}

/** Closes politely; terminates when the close handshake does not finish in time. */
function closeSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 2000);
    ws.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(1000, 'closing');
  });
}
