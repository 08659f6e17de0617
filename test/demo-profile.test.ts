/**
 * The demo of `quantum up` keeps showing the loop working (issue 12): the whole loop on
 * the embedded bus with the demo source, on a simulated clock. The services' timers
 * (price steps, demo emissions, sweeps) are vitest's fake intervals moved in step with a
 * ManualClock; after each simulated second the test waits until the loop has settled
 * (every signal decided, every approval filled and seen by risk), so 30 simulated
 * minutes take seconds and the run is the same every time.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBus } from '../src/bus/factory.js';
import { TOPICS } from '../src/bus/topics.js';
import { DEMO_PROFILE, demoProfileFor } from '../src/cli/demo-profile.js';
import { ManualClock } from '../src/core/clock.js';
import { entryState } from '../src/core/entry-state.js';
import { defaultConfig, loadConfig, type Config } from '../src/platform/config.js';
import { silentLogger } from '../src/platform/logger.js';
import { startLoop } from '../src/services/loop.js';
import { waitFor } from './helpers/redis.js';

const START = Date.UTC(2026, 0, 5, 0, 0, 0);
const STEP_MS = 1000;
const WINDOW_MS = 5 * 60_000;

interface Window {
  approved: number;
  rejected: number;
  fills: number;
  closes: number;
}

/** Runs the demo loop for `minutes` of simulated time; per 5-minute window, what happened. */
async function simulateDemo(
  config: Config,
  minutes: number,
): Promise<{ windows: Window[]; states: Set<string>; fills: unknown[] }> {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  const clock = new ManualClock(START);
  const bus = await createBus({ clock });
  const loop = await startLoop({ bus, config, clock, logger: silentLogger, listen: false, demo: true });
  const windows: Window[] = [];
  const states = new Set<string>();
  let fills: unknown[] = [];
  const totals = () => {
    const risk = loop.risk.service.stats();
    return {
      approved: risk.counts.approved,
      rejected: risk.counts.rejected,
      fills: loop.execution.service.state.statistics().fills,
      closes: risk.closed_trades,
    };
  };
  try {
    let before = totals();
    for (let t = STEP_MS; t <= minutes * 60_000; t += STEP_MS) {
      clock.advance(STEP_MS);
      vi.advanceTimersByTime(STEP_MS);
      await waitFor(
        () => {
          const risk = loop.risk.service.stats();
          const execution = loop.execution.service.state.statistics();
          return (
            risk.counts.received === loop.demo!.count &&
            execution.orders === risk.counts.approved &&
            risk.inflight_orders === 0
          );
        },
        { intervalMs: 1, what: `the loop to settle at ${t / 1000} s` },
      );
      states.add(entryState(loop.risk.service.stats(), clock.now()).state);
      if (t % WINDOW_MS === 0) {
        const now = totals();
        windows.push({
          approved: now.approved - before.approved,
          rejected: now.rejected - before.rejected,
          fills: now.fills - before.fills,
          closes: now.closes - before.closes,
        });
        before = now;
      }
    }
    fills = (await bus.readLatest(TOPICS.execution, 100_000)).map((e) => JSON.parse(e.fields.payload ?? '') as unknown);
  } finally {
    await loop.stop();
    await bus.close();
    vi.useRealTimers();
  }
  return { windows, states, fills };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('quantum up: the demo profile', () => {
  it('keeps approvals, fills, closes and rejections coming in every 5 minutes of a 30-minute simulated run', async () => {
    const config = defaultConfig(nested(DEMO_PROFILE));
    const { windows, states } = await simulateDemo(config, 30);
    expect(windows).toHaveLength(6);
    // A loss still pauses entries, briefly: the screen has a COOLDOWN to show.
    expect([...states]).toContain('COOLDOWN');
    for (const [i, w] of windows.entries()) {
      const label = `minutes ${i * 5}-${i * 5 + 5}: ${JSON.stringify(w)}`;
      expect(w.approved, label).toBeGreaterThan(0);
      expect(w.fills, label).toBeGreaterThan(0);
      expect(w.closes, label).toBeGreaterThan(0);
      expect(w.rejected, label).toBeGreaterThan(0);
    }
  }, 120_000);

  it('under the SPEC defaults (services, config files) the same demo stalls: the reason the profile exists', async () => {
    const { windows } = await simulateDemo(defaultConfig(), 30);
    const late = windows.slice(2);
    expect(late.every((w) => w.approved === 0 || w.closes === 0), JSON.stringify(windows)).toBe(true);
  }, 120_000);
});

describe('quantum up: the demo is reproducible on the same clock', () => {
  it('two seeded runs with the same timing give the same fills, price for price', async () => {
    const config = defaultConfig(nested(DEMO_PROFILE));
    const first = await simulateDemo(config, 5);
    const second = await simulateDemo(config, 5);
    expect(first.fills.length).toBeGreaterThan(0);
    expect(second.fills).toEqual(first.fills);
    const otherSeed = await simulateDemo(defaultConfig({ ...nested(DEMO_PROFILE), seed: 7 }), 5);
    expect(otherSeed.fills).not.toEqual(first.fills);
  }, 120_000);
});

describe('quantum up: which runs get the demo profile', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const emptyDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'qt-profile-'));
    dirs.push(dir);
    return dir;
  };

  it('the demo source with no config file: the profile; --no-demo, --config, QT_CONFIG or ./quantum.config.json: none', () => {
    const cwd = emptyDir();
    expect(demoProfileFor({ demo: true, env: {}, cwd })).toBe(DEMO_PROFILE);
    expect(demoProfileFor({ demo: false, env: {}, cwd })).toBeNull();
    expect(demoProfileFor({ demo: true, configPath: 'my.json', env: {}, cwd })).toBeNull();
    expect(demoProfileFor({ demo: true, env: { QT_CONFIG: 'my.json' }, cwd })).toBeNull();
    writeFileSync(join(cwd, 'quantum.config.json'), '{}');
    expect(demoProfileFor({ demo: true, env: {}, cwd })).toBeNull();
  });

  it('the profile is a valid config patch and changes only the cooldown and the daily entries', () => {
    const profiled = loadConfig({ env: {}, cwd: emptyDir(), overrides: DEMO_PROFILE });
    const plain = defaultConfig();
    expect(profiled.risk.cooldown_minutes).toBe(DEMO_PROFILE['risk.cooldown_minutes']);
    expect(profiled.risk.max_daily_entries).toBe(DEMO_PROFILE['risk.max_daily_entries']);
    expect({ ...profiled, risk: { ...profiled.risk, cooldown_minutes: 60, max_daily_entries: 20 } }).toEqual(plain);
  });
});

/** {'risk.x': 1} → {risk: {x: 1}} */
function nested(flat: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [key, value] of Object.entries(flat)) {
    const [section, name] = key.split('.') as [string, string];
    (out[section] ??= {})[name] = value;
  }
  return out;
}
