/**
 * CLI consistency (issue 12): every usage error exits 2 with one line naming the problem;
 * symbols and actions are matched the same way (any case, sent in upper case);
 * `quantum signal` warns about a symbol that is not a configured instrument and takes
 * --signal-id. Runs `main()` in this process against the real Redis (own prefix).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { EventBus } from '../src/bus/bus.js';
import { TOPICS } from '../src/bus/topics.js';
import { main } from '../src/cli/main.js';
import { TradeSignal } from '../src/core/messages.js';
import { cleanupPrefix, redisUrl, uniquePrefix } from './helpers/redis.js';
import { openBus, readPayloads } from './helpers/services.js';

const prefix = uniquePrefix('cli');
const dir = mkdtempSync(join(tmpdir(), 'qt-cli-'));
const configPath = join(dir, 'quantum.config.json');
let bus: EventBus;

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify({ stream_prefix: prefix }));
  bus = await openBus(prefix);
});
afterAll(async () => {
  await bus?.close();
  await cleanupPrefix(redisUrl(), prefix);
  rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs `quantum <args>` in-process; what it wrote to stdout and stderr. */
async function quantum(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  vi.spyOn(console, 'log').mockImplementation((...parts) => void (stdout += `${parts.join(' ')}\n`));
  vi.spyOn(console, 'error').mockImplementation((...parts) => void (stderr += `${parts.join(' ')}\n`));
  try {
    const code = await main(['node', 'quantum', ...args]);
    return { code, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

const withBus = ['--config', configPath, '--redis', redisUrl()];

describe('usage errors: exit 2, one line naming the problem', () => {
  it.each([
    ['a confidence that is not a number', ['signal', 'BTCUSDT', 'BUY', 'abc'], /confidence must be a number, got "abc"/],
    ['a confidence out of range', ['signal', 'BTCUSDT', 'BUY', '1.5', ...withBus], /confidence/],
    ['an unknown action', ['signal', 'BTCUSDT', 'BUYY', '0.7'], /action must be one of BUY, SELL, HOLD, CLOSE, got "BUYY"/],
    ['an unknown option', ['signal', 'BTCUSDT', 'BUY', '0.7', '--bogus'], /unknown option '--bogus'/],
    ['a missing argument', ['signal', 'BTCUSDT'], /missing required argument 'action'/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['a bad --rate', ['up', '--rate', 'fast'], /rate must be a number, got "fast"/],
    ['a missing mandatory option', ['streams', 'trim'], /--maxlen <n>/],
  ])('%s', async (_what, args, message) => {
    const run = await quantum(...args);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
  });

  it('--help and --version are not errors (exit 0)', async () => {
    expect((await quantum('--version')).code).toBe(0);
    const help = await quantum('signal', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--signal-id <id>');
  });
});

describe('quantum signal', () => {
  it('matches symbols and actions alike: any case, published in upper case, with your --signal-id', async () => {
    const run = await quantum('signal', 'btcusdt', 'buy', '0.7', '--signal-id', 'cli-test-1', ...withBus);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('cli-test-1');
    expect(run.stderr).toBe('');
    const signals = await readPayloads(bus, TOPICS.signal, TradeSignal);
    expect(signals.at(-1)).toMatchObject({ signal_id: 'cli-test-1', symbol: 'BTCUSDT', action: 'BUY', confidence: 0.7 });
  });

  it('warns (one line) when the symbol is not a configured instrument, and still publishes it', async () => {
    const run = await quantum('signal', 'DOGEUSDT', 'SELL', '0.7', '--signal-id', 'cli-test-2', ...withBus);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr.trim()).toBe(
      'quantum signal: warning: DOGEUSDT is not a configured instrument (BTCUSDT, ETHUSDT, BNBUSDT, SOLUSDT, XRPUSDT); the risk service will reject it UNKNOWN_SYMBOL',
    );
    const signals = await readPayloads(bus, TOPICS.signal, TradeSignal);
    expect(signals.at(-1)).toMatchObject({ signal_id: 'cli-test-2', symbol: 'DOGEUSDT', action: 'SELL' });
  });
});
