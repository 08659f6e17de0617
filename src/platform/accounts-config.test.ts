import { describe, expect, it } from 'vitest';
import { ConfigError, accountRun, accountRuns, loadConfig } from './config.js';

function problems(raw: Record<string, unknown>, env: Record<string, string> = {}): string[] {
  try {
    loadConfig({ env, overrides: raw, cwd: '/nonexistent' });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

const two = [
  { name: 'live', stream_prefix: '{live}:', ports: { risk: 9103, execution: 9102, monitor: 9104 } },
  { name: 'shadow', stream_prefix: '{shadow}:', shadow: true, risk: { min_confidence: 0.8 }, account: { initial_balance_usd: 5000 } },
];

describe('accounts, routes and redis_cluster_nodes config', () => {
  it('gives each account its own full config: base values, its overrides, its prefix', () => {
    const config = loadConfig({ env: {}, cwd: '/nonexistent', overrides: { accounts: two, routes: [{ source: 'm*', accounts: ['live', 'shadow'] }] } });
    const [live, shadow] = accountRuns(config);
    expect(live!.config).toMatchObject({ stream_prefix: '{live}:', ports: { risk: 9103 }, risk: { min_confidence: 0.65 }, accounts: [] });
    expect(shadow!.shadow).toBe(true);
    expect(shadow!.config).toMatchObject({ stream_prefix: '{shadow}:', ports: { risk: 8003 }, risk: { min_confidence: 0.8, max_position_pct: 0.1 } });
    expect(shadow!.config.account.initial_balance_usd).toBe(5000);
    expect(() => accountRun(config, 'nope')).toThrow(/--account nope: no such account in accounts \(live, shadow\)/);
  });

  it('lets an account override feedback and replace the protections list (a stricter profile in the shadow)', () => {
    const strict = [{ kind: 'stoploss_guard', stop_minutes: 30, trade_limit: 1 }];
    const config = loadConfig({
      env: {},
      cwd: '/nonexistent',
      overrides: { protections: [{ kind: 'cooldown', stop_minutes: 5 }], accounts: [two[0], { ...two[1], protections: strict, feedback: { recent_trades: 20 } }] },
    });
    const [live, shadow] = accountRuns(config);
    expect(live!.config.protections.map((p) => p.kind)).toEqual(['cooldown']);
    expect(shadow!.config.protections).toEqual([expect.objectContaining({ kind: 'stoploss_guard', stop_minutes: 30, trade_limit: 1, lookback_minutes: 60 })]);
    expect(shadow!.config.feedback).toMatchObject({ recent_trades: 20, reference_trades: 200 });
    expect(problems({ accounts: [{ ...two[1], protections: [{ kind: 'nope', stop_minutes: 1 }] }] })).toEqual(
      expect.arrayContaining([expect.stringMatching(/^accounts\.0\.protections\.0\.kind: /)]),
    );
  });

  it('names the key path of every bad account value, unknown key, clash and route', () => {
    expect(
      problems({
        accounts: [
          { name: 'a', stream_prefix: 'a:', risk: { min_confidence: 2, typo: 1 }, ports: { risk: 9003 } },
          { name: 'a', stream_prefix: 'a:', ports: { risk: 9003 } },
          { name: 'Bad Name', stream_prefix: '' },
        ],
        routes: [{ source: 'x', accounts: ['zz'] }],
      }),
    ).toEqual(
      expect.arrayContaining([
        'accounts.0.risk.min_confidence: Too big: expected number to be <=1',
        'accounts.0.risk.typo: unknown key',
        'accounts.1.name: "a" is also accounts.0.name',
        'accounts.1.stream_prefix: "a:" is also accounts.0.stream_prefix; each account needs its own',
        expect.stringMatching(/^accounts\.2\.name: must be 1-32 lower-case/),
        expect.stringMatching(/^accounts\.2\.stream_prefix: must not be empty/),
        'routes.0.accounts.0: no account named "zz" (accounts: a, Bad Name)',
      ]),
    );
    expect(problems({ accounts: [{ name: 'a', stream_prefix: 'a:' }, { name: 'b', stream_prefix: 'b:' }] })).toEqual([
      'accounts.1.ports.risk: port 8003 is also accounts.0.ports.risk; every account\'s services need ports of their own',
      'accounts.1.ports.execution: port 8002 is also accounts.0.ports.execution; every account\'s services need ports of their own',
      'accounts.1.ports.monitor: port 8004 is also accounts.0.ports.monitor; every account\'s services need ports of their own',
    ]);
  });

  it('on a cluster, requires a hash tag in stream_prefix (or in every account prefix)', () => {
    const cluster = { REDIS_CLUSTER_NODES: 'redis://127.0.0.1:7000, redis://127.0.0.1:7001' };
    expect(problems({}, { ...cluster, QT_STREAM_PREFIX: 'acct7:' })).toEqual([
      expect.stringMatching(/^stream_prefix \(from QT_STREAM_PREFIX\): "acct7:": on a Redis Cluster \(redis_cluster_nodes\) it must hold a hash tag/),
    ]);
    expect(problems({}, { ...cluster, QT_STREAM_PREFIX: '{}:' })).toHaveLength(1); // an empty tag is no tag
    expect(problems({}, { ...cluster, QT_STREAM_PREFIX: '{acct7}:' })).toEqual([]);
    expect(loadConfig({ env: { ...cluster, QT_STREAM_PREFIX: '{a}:' }, cwd: '/nonexistent' }).redis_cluster_nodes).toEqual([
      'redis://127.0.0.1:7000',
      'redis://127.0.0.1:7001',
    ]);
    expect(problems({ accounts: [{ name: 'a', stream_prefix: 'a:' }] }, cluster)).toEqual([
      expect.stringMatching(/^accounts\.0\.stream_prefix: "a:": on a Redis Cluster/),
    ]);
    expect(problems({ redis_cluster_nodes: ['http://x'], stream_prefix: '{a}:' })).toEqual(['redis_cluster_nodes.0: must be a redis:// or rediss:// URL']);
  });
});
