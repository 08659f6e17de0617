/**
 * `quantum up` as a user runs it (a child process on the embedded bus): a taken dashboard
 * port stops start-up like any other port, and the log records start, the state and
 * activity, and stop, without one line per rejected signal.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import {
  deploymentEnv,
  ensureBuilt,
  freePorts,
  killAll,
  removeScratch,
  spawnQuantum,
  writeConfig,
  type Deployment,
} from './helpers/processes.js';
import { waitFor } from './helpers/redis.js';

afterAll(async () => {
  await killAll();
  removeScratch();
});

async function embeddedDeployment(config: Record<string, unknown> = {}): Promise<{ deployment: Deployment; dashboardPort: number }> {
  const [risk = 0, execution = 0, monitor = 0, dashboardPort = 0] = await freePorts(4);
  return {
    deployment: { prefix: '', ports: { risk, execution, monitor }, configPath: writeConfig(config), redis: null },
    dashboardPort,
  };
}

function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('quantum up', () => {
  it('with the dashboard port taken: stops with exit 1 and the same message as for the other ports; --no-dashboard runs', async () => {
    await ensureBuilt();
    const { deployment, dashboardPort } = await embeddedDeployment();
    const blocker = await hold(dashboardPort);
    try {
      const env = deploymentEnv(deployment, { QT_DASHBOARD_PORT: String(dashboardPort) });
      const up = spawnQuantum(['up', '--plain', '--no-demo'], env, 'up');
      const exit = await up.exited;
      expect(exit, up.describe()).toEqual({ code: 1, signal: null });
      expect(up.stderr).toContain(
        `quantum up: dashboard: port ${dashboardPort} on 127.0.0.1 is already in use (set ports.dashboard or QT_DASHBOARD_PORT); or run with --no-dashboard`,
      );
      expect(up.stdout).not.toContain('loop running');

      const without = spawnQuantum(['up', '--plain', '--no-demo', '--no-dashboard'], env, 'up');
      await without.waitForOutput(/loop running on the embedded bus/);
      expect(await without.stop(), without.describe()).toEqual({ code: 0, signal: null });
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  }, 120_000);

  it('logs start, the trading state, the activity counts and stop; rejections are counted, not logged one by one', async () => {
    await ensureBuilt();
    const { deployment } = await embeddedDeployment({ execution: { price_interval_ms: 100 } });
    const up = spawnQuantum(['up', '--plain', '--no-dashboard', '--rate', '100'], deploymentEnv(deployment), 'up');
    await up.waitForOutput(/loop running on the embedded bus/);
    // Enough signals that the SPEC defaults (a config file is given) reject some.
    await waitFor(() => /approved \d+, rejected [1-9]/.test(up.stdout), { timeoutMs: 60_000, intervalMs: 200, what: 'rejections' });
    expect(await up.stop(), up.describe()).toEqual({ code: 0, signal: null });
    const logs = up.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { msg: string; rejected?: number });
    const messages = logs.map((l) => l.msg);
    expect(messages).toContain('quantum up started');
    expect(messages).toContain('trading state: ACTIVE');
    expect(messages.at(-1)).toBe('quantum up stopped');
    const activity = logs.filter((l) => l.msg.startsWith('activity over'));
    expect(activity.length).toBeGreaterThan(0);
    expect(activity.reduce((n, l) => n + (l.rejected ?? 0), 0)).toBeGreaterThan(0);
    expect(messages).not.toContain('signal rejected');
    expect(messages.filter((m) => /rejected in the last/.test(m))).toEqual([]); // risk's own counts: folded into the activity lines
  }, 120_000);
});
