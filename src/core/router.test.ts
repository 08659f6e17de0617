import { describe, expect, it } from 'vitest';
import { SignalRoutes, countRouted, emptyRouterCounts, globToRegExp } from './router.js';

describe('signal routes', () => {
  it('matches globs on source and symbol, literally otherwise', () => {
    expect(globToRegExp('model-*').test('model-a')).toBe(true);
    expect(globToRegExp('model-*').test('xmodel-a')).toBe(false);
    expect(globToRegExp('BTC???T').test('BTCUSDT')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('(x)').test('(x)')).toBe(true);
  });

  it('selects the accounts of every matching rule, each once, in order', () => {
    const routes = new SignalRoutes([
      { source: 'champion', accounts: ['live', 'strict'] },
      { source: 'challenger*', accounts: ['shadow'] },
      { symbol: 'ETH*', accounts: ['strict', 'eth-only'] },
    ]);
    expect(routes.select({ source: 'champion', symbol: 'BTCUSDT' })).toEqual(['live', 'strict']);
    expect(routes.select({ source: 'champion', symbol: 'ETHUSDT' })).toEqual(['live', 'strict', 'eth-only']);
    expect(routes.select({ source: 'challenger-2', symbol: 'SOLUSDT' })).toEqual(['shadow']);
    expect(routes.select({ source: 'other', symbol: 'SOLUSDT' })).toEqual([]);
  });

  it('needs both parts of a rule to match; a rule with neither matches everything', () => {
    const routes = new SignalRoutes([{ source: 'a', symbol: 'BTCUSDT', accounts: ['x'] }]);
    expect(routes.select({ source: 'a', symbol: 'ETHUSDT' })).toEqual([]);
    expect(new SignalRoutes([{ accounts: ['all'] }]).select({ source: 'z', symbol: 'XRPUSDT' })).toEqual(['all']);
  });

  it('counts routed, unrouted and copies per account', () => {
    let counts = emptyRouterCounts(['a', 'b']);
    counts = countRouted(counts, ['a', 'b']);
    counts = countRouted(counts, []);
    counts = countRouted(counts, ['b']);
    expect(counts).toEqual({ received: 3, routed: 2, unrouted: 1, forwarded: { a: 1, b: 2 } });
  });
});
