/**
 * The signal router's rules (`routes`, docs/scale-out.md), pure: which accounts one shared
 * signal goes to. A rule matches on the signal's `source` and/or `symbol` with a glob
 * (`*` any run of characters, `?` one; everything else literal, case-sensitive); a rule
 * with neither matches every signal. Every matching rule contributes its accounts (a live
 * account and its shadow can both take one signal); each account at most once, in the
 * order the rules and their lists name them. No match: the signal is unrouted.
 */
export interface RouteRule {
  source?: string;
  symbol?: string;
  accounts: readonly string[];
}

export interface Routable {
  source: string;
  symbol: string;
}

/** A glob as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let pattern = '';
  for (const char of glob) {
    if (char === '*') pattern += '.*';
    else if (char === '?') pattern += '.';
    else pattern += char.replace(/[\\^$.|+()[\]{}]/g, (c) => `\\${c}`);
  }
  return new RegExp(`^${pattern}$`, 's');
}

interface CompiledRule {
  source: RegExp | null;
  symbol: RegExp | null;
  accounts: readonly string[];
}

export class SignalRoutes {
  readonly #rules: CompiledRule[];

  constructor(rules: readonly RouteRule[]) {
    this.#rules = rules.map((rule) => ({
      source: rule.source === undefined ? null : globToRegExp(rule.source),
      symbol: rule.symbol === undefined ? null : globToRegExp(rule.symbol),
      accounts: rule.accounts,
    }));
  }

  /** The accounts `signal` goes to; empty when no rule matches. */
  select(signal: Routable): string[] {
    const chosen: string[] = [];
    for (const rule of this.#rules) {
      if (rule.source && !rule.source.test(signal.source)) continue;
      if (rule.symbol && !rule.symbol.test(signal.symbol)) continue;
      for (const account of rule.accounts) if (!chosen.includes(account)) chosen.push(account);
    }
    return chosen;
  }
}

/** What the router has done since it started (GET /stats of `quantum route`, the log lines). */
export interface RouterCounts {
  received: number;
  /** Signals forwarded to at least one account. */
  routed: number;
  unrouted: number;
  /** Copies written, per account. */
  forwarded: Record<string, number>;
}

export function emptyRouterCounts(accounts: readonly string[]): RouterCounts {
  return { received: 0, routed: 0, unrouted: 0, forwarded: Object.fromEntries(accounts.map((name) => [name, 0])) };
}

/** Counts one routing decision (returns a new object: the core keeps no hidden state). */
export function countRouted(counts: RouterCounts, targets: readonly string[]): RouterCounts {
  const forwarded = { ...counts.forwarded };
  for (const name of targets) forwarded[name] = (forwarded[name] ?? 0) + 1;
  return {
    received: counts.received + 1,
    routed: counts.routed + (targets.length > 0 ? 1 : 0),
    unrouted: counts.unrouted + (targets.length === 0 ? 1 : 0),
    forwarded,
  };
}
