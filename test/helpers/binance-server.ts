/**
 * A local stand-in for Binance's public market-data WebSocket (no test touches the
 * internet): `ws`'s WebSocketServer on a free port of 127.0.0.1, speaking the
 * combined-stream format. It routes like the venue (spot `/stream?streams=…`; USDⓈ-M
 * `/public/stream` and `/market/stream`), sends frames only to connections subscribed to
 * the frame's stream, and lets a test drop connections, go silent, ping, or send junk.
 *
 *   const venue = await FakeBinance.start();             // ws_url: venue.url
 *   await venue.waitForConnections(1);
 *   venue.send(bookTicker('BTCUSDT', 1, '65000.10', '65000.20'));
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { waitFor } from './redis.js';

export interface VenueConnection {
  socket: WebSocket;
  path: string;
  streams: Set<string>;
  pongs: number;
}

export class FakeBinance {
  readonly connections: VenueConnection[] = [];
  /** Every connection ever accepted (closed ones too), in order. */
  accepted = 0;
  /** Called for each new connection (e.g. to greet it with frames). */
  onConnect?: (conn: VenueConnection) => void;

  private constructor(
    private readonly server: WebSocketServer,
    readonly url: string,
  ) {
    server.on('connection', (socket, request) => {
      const target = new URL(request.url ?? '/', 'ws://localhost');
      const conn: VenueConnection = {
        socket,
        path: target.pathname,
        streams: new Set((target.searchParams.get('streams') ?? '').split('/').filter(Boolean)),
        pongs: 0,
      };
      this.accepted += 1;
      this.connections.push(conn);
      socket.on('pong', () => (conn.pongs += 1));
      socket.on('close', () => {
        const i = this.connections.indexOf(conn);
        if (i >= 0) this.connections.splice(i, 1);
      });
      this.onConnect?.(conn);
    });
  }

  static async start(): Promise<FakeBinance> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const { port } = server.address() as AddressInfo;
    return new FakeBinance(server, `ws://127.0.0.1:${port}`);
  }

  /** Sends a combined-stream frame (object or raw text) to every connection subscribed to its stream. */
  send(frame: string | { stream: string; data: unknown }): number {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
    const stream = typeof frame === 'string' ? streamOf(frame) : frame.stream;
    let sent = 0;
    for (const conn of this.connections) {
      if (stream !== undefined && !conn.streams.has(stream)) continue;
      conn.socket.send(text);
      sent += 1;
    }
    return sent;
  }

  /** Sends raw text to every open connection (malformed frames). */
  sendRaw(text: string): void {
    for (const conn of this.connections) conn.socket.send(text);
  }

  /** Cuts every connection without a close handshake (as a network drop looks). */
  dropAll(): void {
    for (const conn of [...this.connections]) conn.socket.terminate();
  }

  ping(payload = 'keepalive'): void {
    for (const conn of this.connections) conn.socket.ping(payload);
  }

  async waitForConnections(count: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.connections.length >= count, { timeoutMs, what: `${count} connection(s) to the local Binance server` });
  }

  async close(): Promise<void> {
    for (const conn of this.connections) conn.socket.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function streamOf(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { stream?: unknown };
    return typeof parsed.stream === 'string' ? parsed.stream : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------
// Frames in Binance's documented shapes

export type Market = 'spot' | 'usdm';

/** The documented frames of test/fixtures/binance/<market>.jsonl, one string per line. */
export function fixtureFrames(market: Market): string[] {
  return readFileSync(new URL(`../fixtures/binance/${market}.jsonl`, import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
}

export function bookTicker(market: Market, symbol: string, u: number, bid: string, ask: string, ts = Date.now()) {
  const base = { u, s: symbol, b: bid, B: '1.50000000', a: ask, A: '2.00000000' };
  return {
    stream: `${symbol.toLowerCase()}@bookTicker`,
    data: market === 'spot' ? base : { e: 'bookTicker', ...base, E: ts, T: ts - 1 },
  };
}

export function aggTrade(market: Market, symbol: string, id: number, price: string, ts = Date.now()) {
  const base = { e: 'aggTrade', E: ts, s: symbol, a: id, p: price, q: '0.01000000', f: id * 10, l: id * 10, T: ts - 1, m: false };
  return { stream: `${symbol.toLowerCase()}@aggTrade`, data: market === 'spot' ? { ...base, M: true } : { ...base, nq: '0.01000000' } };
}
