/**
 * A service started while Redis is down (issue #12 item 5): it stays up, answers /health
 * with 503, retries with backoff logging one short line per attempt (no stack trace), and
 * starts as soon as Redis answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, http, killAll, removeScratch, spawnQuantum, deploymentEnv, writeConfig, waitForHealth } from './helpers/processes.js';
import { freePorts } from './helpers/ports.js';
import { cleanupPrefix, startPrivateRedis, uniquePrefix, waitFor, type PrivateRedis } from './helpers/redis.js';

let redis: PrivateRedis | null = null;
beforeAll(async () => {
  await ensureBuilt();
}, 240_000);
afterAll(async () => {
  await killAll();
  await redis?.destroy();
  removeScratch();
});

describe('quantum risk started while Redis is down', () => {
  it('stays up with /health 503 and one warning line per attempt, then starts once Redis answers', async () => {
    const [redisPort = 0, risk = 0, execution = 0, monitor = 0] = await freePorts(4);
    const prefix = uniquePrefix('redis-down-start');
    const deployment = {
      prefix,
      ports: { risk, execution, monitor },
      configPath: writeConfig({ execution: { price_interval_ms: 0 }, monitor: { mark_interval_ms: 0 } }),
      redis: `redis://127.0.0.1:${redisPort}`,
    };
    const proc = spawnQuantum(['risk'], deploymentEnv(deployment), 'risk-without-redis');
    const healthUrl = `http://127.0.0.1:${risk}/health`;
    const reply = await waitFor(() => http('GET', healthUrl, undefined, 2000), { timeoutMs: 30_000, what: 'a /health answer' });
    expect(reply.status).toBe(503);
    expect(reply.body).toMatchObject({ bus: { kind: 'redis', connected: false } });

    // Two attempts, each reported on one line of its own.
    await waitFor(() => (proc.stdout.match(/is not reachable/g) ?? []).length >= 2, { timeoutMs: 30_000, what: 'two retry warnings' });
    expect(proc.exit).toBeNull();
    const warnings = proc.stdout.split('\n').filter((line) => line.includes('is not reachable'));
    for (const line of warnings) {
      const entry = JSON.parse(line) as { level: number; msg: string; retry_in_ms: number };
      expect(entry.level).toBe(40);
      expect(entry.msg).toMatch(/ECONNREFUSED.*retrying in \d+ s/);
    }
    // Backoff: the second wait is longer than the first.
    const delays = warnings.map((line) => (JSON.parse(line) as { retry_in_ms: number }).retry_in_ms);
    expect(delays[1]).toBeGreaterThan(delays[0] ?? 0);
    const output = proc.stdout + proc.stderr;
    expect(output).not.toMatch(/"stack"|\n\s+at /);
    expect(proc.stderr).not.toContain('ECONNREFUSED');

    redis = await startPrivateRedis({ port: redisPort, appendonly: false });
    await waitForHealth(`http://127.0.0.1:${risk}`, proc, 45_000);
    expect(proc.stdout).toContain('Redis is reachable; starting');
    expect((await proc.stop()).code).toBe(0);
    await cleanupPrefix(redis.url, prefix);
  }, 120_000);
});
