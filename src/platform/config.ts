/**
 * Configuration (SPEC §8): one JSON file, then environment variables over it, parsed
 * once at the edge into a frozen, typed object. Unknown keys and bad values are all
 * reported together, each naming its key; the CLI exits with code 2 on them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SYMBOL_PATTERN } from '../core/messages.js';

const pct = z.number().min(0).max(1);
const port = z.number().int().min(0).max(65535);
const positive = z.number().positive().finite();
/** A fraction that must leave something to work with: 0 would make the rule degenerate. */
const positivePct = z.number().gt(0, { error: 'must be above 0 (0 would refuse or halt everything)' }).max(1);

export const InstrumentConfig = z.strictObject({
  symbol: z.string().regex(SYMBOL_PATTERN, { error: 'must be 2-20 upper-case letters or digits' }),
  tick_size: positive,
  step_size: positive,
  min_notional_usd: z.number().nonnegative().finite(),
  start_price: positive,
}).refine((i) => i.tick_size <= i.start_price, { error: 'tick_size must not exceed start_price', path: ['tick_size'] });
export type InstrumentConfig = z.infer<typeof InstrumentConfig>;

export const DEFAULT_INSTRUMENTS: InstrumentConfig[] = [
  { symbol: 'BTCUSDT', tick_size: 0.01, step_size: 0.00001, min_notional_usd: 10, start_price: 65000 },
  { symbol: 'ETHUSDT', tick_size: 0.01, step_size: 0.0001, min_notional_usd: 10, start_price: 3500 },
  { symbol: 'BNBUSDT', tick_size: 0.01, step_size: 0.001, min_notional_usd: 10, start_price: 600 },
  { symbol: 'SOLUSDT', tick_size: 0.01, step_size: 0.01, min_notional_usd: 10, start_price: 150 },
  { symbol: 'XRPUSDT', tick_size: 0.0001, step_size: 0.1, min_notional_usd: 10, start_price: 0.6 },
];

const minutes = z.number().nonnegative().finite();
/** One entry of `protections` (core/protections.ts). */
export const ProtectionConfigSchema = z
  .strictObject({
    kind: z.enum(['stoploss_guard', 'max_drawdown', 'low_profit', 'cooldown']),
    lookback_minutes: minutes.default(60),
    trade_limit: z.number().int().min(1).default(1),
    stop_minutes: z.number().positive().finite(),
    only_per_symbol: z.boolean().default(false),
    max_allowed_drawdown_pct: positivePct.optional(),
    required_profit_pct: z.number().min(-1).max(10).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.kind === 'max_drawdown' && p.max_allowed_drawdown_pct === undefined) {
      ctx.addIssue({ code: 'custom', path: ['max_allowed_drawdown_pct'], message: 'is required for kind max_drawdown' });
    }
    if (p.kind !== 'max_drawdown' && p.max_allowed_drawdown_pct !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['max_allowed_drawdown_pct'], message: 'applies only to kind max_drawdown' });
    }
    if (p.kind !== 'low_profit' && p.required_profit_pct !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['required_profit_pct'], message: 'applies only to kind low_profit' });
    }
  });
/** A stream prefix: letters, digits and _ . : { } - (a hash tag `{…}` keeps one account in one cluster slot). */
const streamPrefix = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9_.:{}-]*$/, { error: 'may hold letters, digits and _ . : { } -' });
/** An account's overrides of one config section, checked against the whole schema once merged (checkScaleOut). */
const sectionOverride = z.record(z.string(), z.unknown()).optional();
/** The config sections an account may override. */
export const ACCOUNT_SECTIONS = ['ports', 'account', 'risk', 'execution', 'exits', 'monitor', 'journal', 'feedback'] as const;
const AccountEntry = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, { error: 'must be 1-32 lower-case letters, digits, _ or - (starting with a letter or digit)' }),
  stream_prefix: streamPrefix.min(1, { error: 'must not be empty (the unprefixed streams are the router\'s shared input)' }),
  /** A shadow account trades the signals routed to it like any other; it is marked so in comparisons. */
  shadow: z.boolean().default(false),
  ports: sectionOverride,
  account: sectionOverride,
  risk: sectionOverride,
  execution: sectionOverride,
  exits: sectionOverride,
  monitor: sectionOverride,
  journal: sectionOverride,
  feedback: sectionOverride,
  /** Replaces the base `protections` list for this account (a stricter profile in the shadow of the live one). */
  protections: z.array(z.unknown()).optional(),
});
const RouteEntry = z.strictObject({
  /** Glob on the signal's source (`*` any run of characters, `?` one); unset: any source. */
  source: z.string().min(1).optional(),
  /** Glob on the signal's symbol; unset: any symbol. */
  symbol: z.string().min(1).optional(),
  accounts: z.array(z.string().min(1)).min(1),
});

export const ConfigSchema = z.strictObject({
  redis_url: z
    .string()
    .regex(/^rediss?:\/\/.+/, { error: 'must be a redis:// or rediss:// URL' })
    .optional(),
  stream_prefix: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9_.:{}-]*$/, { error: 'may hold letters, digits and _ . : { } -' })
    .default(''),
  host: z.string().min(1).default('127.0.0.1'),
  /** Host names (besides loopback and `host`) a request's Host header may carry, e.g. behind a proxy. */
  allowed_hosts: z.array(z.string().min(1).regex(/^[A-Za-z0-9.:[\]_-]+$/, { error: 'must be a host name or address' })).default([]),
  api_token: z.string().min(8, { error: 'must be at least 8 characters' }).optional(),
  seed: z.number().int().nonnegative().default(42),
  ports: z
    .strictObject({
      risk: port.default(8003),
      execution: port.default(8002),
      monitor: port.default(8004),
      dashboard: port.default(8000),
    })
    .prefault({})
    .superRefine((ports, ctx) => {
      // Port 0 asks the system for a free port, so only fixed ports must differ.
      const seen = new Map<number, string>();
      for (const [name, value] of Object.entries(ports)) {
        const other = seen.get(value);
        if (value !== 0 && other !== undefined) {
          ctx.addIssue({ code: 'custom', path: [name], message: `port ${value} is also ports.${other}; each service needs its own port` });
        }
        seen.set(value, name);
      }
    }),
  account: z.strictObject({ initial_balance_usd: positive.default(10_000) }).prefault({}),
  instruments: z
    .array(InstrumentConfig)
    .min(1)
    .refine((list) => new Set(list.map((i) => i.symbol)).size === list.length, { error: 'symbols must be unique' })
    .default(DEFAULT_INSTRUMENTS),
  risk: z
    .strictObject({
      min_confidence: pct.default(0.65),
      max_position_pct: positivePct.default(0.1),
      max_exposure_pct: pct.default(0.5),
      max_drawdown_pct: positivePct.default(0.15),
      kelly_fraction: positivePct.default(0.25),
      cooldown_minutes: z.number().nonnegative().finite().default(60),
      max_daily_entries: z.number().int().nonnegative().default(20),
      min_order_notional_usd: z.number().nonnegative().finite().default(10),
      default_stop_pct: z.number().positive().max(1).default(0.02),
      /**
       * The expiry horizon of an approval: risk stamps `expires_ts` = approval time + this,
       * execution never fills after it, and risk counts the order in flight until then
       * (plus market.max_clock_skew_ms), so an unfilled approval never stops counting while
       * it can still fill.
       */
      inflight_timeout_ms: z.number().int().positive().default(30_000),
      /** A signal older than this (by its `ts`) is rejected STALE_SIGNAL; 0 = off. */
      max_signal_age_ms: z.number().int().nonnegative().default(60_000),
      // Protections (docs/protections.md); 0 = off.
      /** Entries refused DAILY_LOSS_LIMIT once the UTC day's loss reaches this fraction of its starting equity. */
      max_daily_loss_pct: pct.default(0),
      /** At most this many entries approved in any 1000 ms (sliding window); closes exempt. */
      max_orders_per_second: z.number().int().nonnegative().default(0),
      /** At most this many entries approved in any 60 000 ms (sliding window); closes exempt. */
      max_orders_per_minute: z.number().int().nonnegative().default(0),
      /** An entry whose sized notional is above this is refused ORDER_NOTIONAL_LIMIT. */
      max_notional_per_order_usd: z.number().nonnegative().finite().default(0),
      /** A new position when this many are open is refused MAX_OPEN_POSITIONS. */
      max_open_positions: z.number().int().nonnegative().default(0),
      /** A source whose own round trips fall more than this from their peak is refused SOURCE_DRAWDOWN until resumed. */
      max_source_drawdown_pct: pct.default(0),
    })
    .prefault({}),
  execution: z
    .strictObject({
      fee_rate: z.number().min(0).max(0.1).default(0.0004),
      max_slippage_pct: z.number().min(0).max(0.1).default(0.001),
      price_interval_ms: z.number().int().nonnegative().default(5000),
      price_step_pct: z.number().min(0).max(0.5).default(0.001),
      /** An order whose fill price is further than this from its reference_price is REJECTED PRICE_DEVIATION. */
      max_price_deviation_pct: positivePct.default(0.05),
    })
    .prefault({}),
  market: z
    .strictObject({
      /** A tick whose ts is further than this ahead of the service's clock is refused (dead-lettered). */
      max_clock_skew_ms: z.number().int().nonnegative().default(5000),
      /** A non-manual tick moving more than this from the last accepted price needs the next tick to confirm it. */
      max_tick_jump_pct: positivePct.default(0.2),
      /** Where execution gets prices: the offline random walk, or Binance's public market data. */
      source: z.enum(['simulator', 'binance']).default('simulator'),
      /** Synthetic bid/ask around the simulated price, (ask − bid) / price; 0 = no quotes. */
      simulator_spread_pct: z.number().min(0).max(0.1).default(0.0002),
      /**
       * Entries are refused STALE_PRICE when the symbol's latest tick is older than this;
       * 0 = off. Unset: 15000 for a live feed, off for the simulator (see `staleAfterMs`).
       */
      stale_after_ms: z.number().int().nonnegative().optional(),
      /** At most one tick per symbol per this many ms from a live feed (the latest quote wins); 0 = every update. */
      min_tick_interval_ms: z.number().int().nonnegative().default(100),
      binance: z
        .strictObject({
          market: z.enum(['spot', 'usdm']).default('spot'),
          /** Base URL instead of Binance's (tests, proxies), e.g. ws://127.0.0.1:9000. */
          ws_url: z
            .string()
            .regex(/^wss?:\/\/[^/\s]+/, { error: 'must be a ws:// or wss:// URL' })
            .optional(),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Exit-level defaults for entries whose signal carries none (docs/exits.md); 0 = off. */
  exits: z
    .strictObject({
      stop_loss_pct: z.number().min(0).lt(1).default(0),
      take_profit_pct: z.number().min(0).finite().default(0),
      trailing_stop_pct: z.number().min(0).lt(1).default(0),
      max_hold_minutes: z.number().min(0).finite().default(0),
    })
    .prefault({}),
  monitor: z
    .strictObject({
      mark_interval_ms: z.number().int().nonnegative().default(30_000),
      publish_on_tick: z.boolean().default(false),
    })
    .prefault({}),
  streams: z
    .strictObject({
      maxlen: z.number().int().min(1000).default(100_000),
    })
    .prefault({}),
  lease: z
    .strictObject({
      /** The active instance's lease lapses this long after its last renewal (renewed every fifth of it). */
      ttl_ms: z.number().int().min(1000).max(600_000).default(10_000),
    })
    .prefault({}),
  /** The trade journal (docs/journal.md). */
  journal: z
    .strictObject({
      /** sqlite:PATH or postgres://…; unset: `quantum up` uses sqlite:./quantum-journal.sqlite. */
      url: z
        .string()
        .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, { error: 'must be sqlite:PATH or a postgres:// URL' })
        .optional(),
      /** PostgreSQL schema holding the tables: one per account (stream_prefix). */
      schema: z
        .string()
        .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'must be a lower-case SQL name (letters, digits, _; at most 63)' })
        .default('quantum'),
    })
    .prefault({}),
  demo: z
    .strictObject({
      signals_per_second: z.number().positive().max(100_000).default(2),
    })
    .prefault({}),
  /** Per-source feedback analytics of the monitor (docs/feedback.md). */
  feedback: z
    .strictObject({
      /** The drift tests' reference window: the round trips before the recent ones (the exact KS p-value walks O(reference × recent) once per distinct statistic). */
      reference_trades: z.number().int().min(2).max(5000).default(200),
      /** The drift tests' recent window: a source's last round trips. */
      recent_trades: z.number().int().min(2).max(1000).default(50),
      /** The KS test flags drift when its p-value is below this. */
      ks_alpha: z.number().gt(0).lt(1).default(0.01),
    })
    .prefault({}),

  /** Locks after losses, like Freqtrade's protections (docs/protections.md); none by default. */
  protections: z.array(ProtectionConfigSchema).default([]),
  /**
   * Seed nodes of a Redis Cluster (docs/scale-out.md); when set, the Redis bus runs on the
   * cluster (redis_url is not used) and every stream_prefix must hold a hash tag.
   */
  redis_cluster_nodes: z.array(z.string().regex(/^rediss?:\/\/.+/, { error: 'must be a redis:// or rediss:// URL' })).default([]),
  /** Several accounts side by side, each its own prefix, state, ports and APIs (docs/scale-out.md). */
  accounts: z.array(AccountEntry).default([]),
  /** Which accounts `quantum route` forwards each shared signal to (first match on source and/or symbol glob). */
  routes: z.array(RouteEntry).default([]),
}).superRefine((config, ctx) => {
  checkScaleOut(config, ctx);
  if (config.execution.price_step_pct >= config.market.max_tick_jump_pct) {
    ctx.addIssue({
      code: 'custom',
      path: ['execution', 'price_step_pct'],
      message: `must be below market.max_tick_jump_pct (${config.market.max_tick_jump_pct}): every service would refuse the simulator's own ticks`,
    });
  }
  if (config.market.simulator_spread_pct / 2 >= config.market.max_tick_jump_pct) {
    ctx.addIssue({
      code: 'custom',
      path: ['market', 'simulator_spread_pct'],
      message: `half of it must be below market.max_tick_jump_pct (${config.market.max_tick_jump_pct}): every service would refuse the simulator's own quotes (BAD_QUOTE)`,
    });
  }
});

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** A live feed's default staleness limit. */
export const LIVE_STALE_AFTER_MS = 15_000;

/**
 * The staleness limit in force (0 = off), the one place its default is decided: the
 * configured `market.stale_after_ms`, else 15 s for a live feed and off for the
 * simulator. The simulator publishes a tick only when a price moves (and not at all with
 * `execution.price_interval_ms` 0), so a quiet simulated price is the market, not stale
 * data; set the key to try the rule on simulated prices.
 */
export function staleAfterMs(config: Pick<Config, 'market'>): number {
  const configured = config.market.stale_after_ms;
  if (configured !== undefined) return configured;
  return config.market.source === 'simulator' ? 0 : LIVE_STALE_AFTER_MS;
}

/** Environment variable → config path, and how to read its text. */
const ENV_KEYS: ReadonlyArray<{ env: string; path: string[]; kind: 'string' | 'int' | 'list' }> = [
  { env: 'REDIS_URL', path: ['redis_url'], kind: 'string' },
  { env: 'QT_STREAM_PREFIX', path: ['stream_prefix'], kind: 'string' },
  { env: 'QT_HOST', path: ['host'], kind: 'string' },
  { env: 'QT_API_TOKEN', path: ['api_token'], kind: 'string' },
  { env: 'QT_ALLOWED_HOSTS', path: ['allowed_hosts'], kind: 'list' },
  { env: 'QT_SEED', path: ['seed'], kind: 'int' },
  { env: 'QT_RISK_PORT', path: ['ports', 'risk'], kind: 'int' },
  { env: 'QT_EXECUTION_PORT', path: ['ports', 'execution'], kind: 'int' },
  { env: 'QT_MONITOR_PORT', path: ['ports', 'monitor'], kind: 'int' },
  { env: 'QT_DASHBOARD_PORT', path: ['ports', 'dashboard'], kind: 'int' },
  { env: 'QT_JOURNAL_URL', path: ['journal', 'url'], kind: 'string' },
  { env: 'QT_JOURNAL_SCHEMA', path: ['journal', 'schema'], kind: 'string' },
  { env: 'REDIS_CLUSTER_NODES', path: ['redis_cluster_nodes'], kind: 'list' },
];

export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** --config path; else QT_CONFIG; else ./quantum.config.json when it exists. */
  configPath?: string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Values from command-line flags, applied last (e.g. {redis_url} from --redis). */
  overrides?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function setPath(target: Json, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Json;
  }
  node[path[path.length - 1]!] = value;
}

function readFile(path: string, problems: string[]): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    problems.push(`config file ${path}: cannot be read (${(err as Error).message})`);
    return {};
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push(`config file ${path}: must hold a JSON object`);
      return {};
    }
    return parsed as Json;
  } catch (err) {
    problems.push(`config file ${path}: not valid JSON (${(err as Error).message})`);
    return {};
  }
}

function describeIssue(issue: z.core.$ZodIssue, envNames: Map<string, string>): string {
  const key = issue.path.join('.') || '(root)';
  const env = envNames.get(key);
  const where = env ? `${key} (from ${env})` : key;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (key === '(root)' ? k : `${key}.${k}`));
    return `${keys.join(', ')}: unknown key${keys.length > 1 ? 's' : ''}`;
  }
  return `${where}: ${issue.message}`;
}

/** Reads, merges and validates the configuration; throws ConfigError naming every bad key. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];

  const explicit = options.configPath ?? env.QT_CONFIG;
  let raw: Json = {};
  if (explicit) {
    raw = readFile(resolve(cwd, explicit), problems);
  } else {
    const local = resolve(cwd, 'quantum.config.json');
    if (existsSync(local)) raw = readFile(local, problems);
  }

  const envNames = new Map<string, string>();
  for (const { env: name, path, kind } of ENV_KEYS) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    envNames.set(path.join('.'), name);
    if (kind === 'int') {
      const value = Number(text);
      if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
        problems.push(`${path.join('.')} (from ${name}): expected a whole number, got "${text}"`);
        continue;
      }
      setPath(raw, path, value);
    } else if (kind === 'list') {
      setPath(raw, path, text.split(',').map((item) => item.trim()).filter((item) => item !== ''));
    } else {
      setPath(raw, path, text);
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) setPath(raw, key.split('.'), value);
  }

  const result = ConfigSchema.safeParse(raw);
  if (!result.success) problems.push(...result.error.issues.map((issue) => describeIssue(issue, envNames)));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return deepFreeze(result.data);
}

/** The defaults alone, for tests and tools; `patch` is merged like a config file. */
export function defaultConfig(patch: Record<string, unknown> = {}): Config {
  const result = ConfigSchema.safeParse(patch);
  if (!result.success) throw new ConfigError(result.error.issues.map((i) => describeIssue(i, new Map())));
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

type ParsedConfig = z.infer<typeof ConfigSchema>;
type AccountEntry = z.infer<typeof AccountEntry>;

/** Whether a prefix holds a Redis Cluster hash tag (same rule as src/bus/slot.ts hashTag). */
function holdsHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  return open >= 0 && prefix.indexOf('}', open + 1) > open + 1;
}

/** The base config with one account's overrides merged over it (still to be validated). */
function mergeAccount(config: ParsedConfig, account: AccountEntry): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...config, accounts: [], routes: [], stream_prefix: account.stream_prefix };
  for (const section of ACCOUNT_SECTIONS) {
    const override = account[section];
    if (override) merged[section] = { ...(config[section] as Record<string, unknown>), ...override };
  }
  if (account.protections) merged.protections = account.protections;
  return merged;
}

/** The cluster, accounts and routes rules; every issue names its key path. */
function checkScaleOut(config: ParsedConfig, ctx: z.core.$RefinementCtx<ParsedConfig>): void {
  const onCluster = config.redis_cluster_nodes.length > 0;
  const hashTagRule = 'on a Redis Cluster (redis_cluster_nodes) it must hold a hash tag, e.g. "{acct7}:", so the account\'s streams, snapshots, leases and groups share one slot';
  if (onCluster && config.accounts.length === 0 && !holdsHashTag(config.stream_prefix)) {
    ctx.addIssue({ code: 'custom', path: ['stream_prefix'], message: `"${config.stream_prefix}": ${hashTagRule}` });
  }
  const names = new Map<string, number>();
  const prefixes = new Map<string, number>();
  const ports = new Map<number, string>();
  config.accounts.forEach((account, index) => {
    const at = (...path: (string | number)[]) => ['accounts', index, ...path];
    if (names.has(account.name)) ctx.addIssue({ code: 'custom', path: at('name'), message: `"${account.name}" is also accounts.${names.get(account.name)}.name` });
    names.set(account.name, index);
    if (prefixes.has(account.stream_prefix)) {
      ctx.addIssue({ code: 'custom', path: at('stream_prefix'), message: `"${account.stream_prefix}" is also accounts.${prefixes.get(account.stream_prefix)}.stream_prefix; each account needs its own` });
    }
    prefixes.set(account.stream_prefix, index);
    // The merged config is checked whole: on a cluster that includes the hash tag in its prefix.
    const result = ConfigSchema.safeParse(mergeAccount(config, account));
    if (!result.success) {
      for (const issue of result.error.issues) {
        if (issue.code === 'unrecognized_keys') {
          for (const key of issue.keys) ctx.addIssue({ code: 'custom', path: at(...issue.path.map(String), key), message: 'unknown key' });
        } else {
          ctx.addIssue({ code: 'custom', path: at(...issue.path.map(String)), message: issue.message });
        }
      }
      return;
    }
    for (const [service, port] of Object.entries(result.data.ports)) {
      if (service === 'dashboard') continue; // one dashboard serves every account
      const other = ports.get(port);
      if (port !== 0 && other !== undefined) {
        ctx.addIssue({ code: 'custom', path: at('ports', service), message: `port ${port} is also ${other}; every account's services need ports of their own` });
      }
      ports.set(port, `accounts.${index}.ports.${service}`);
    }
  });
  config.routes.forEach((route, index) => {
    route.accounts.forEach((name, at) => {
      if (!names.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['routes', index, 'accounts', at], message: `no account named "${name}" (accounts: ${[...names.keys()].join(', ') || 'none'})` });
      }
    });
  });
  if (config.routes.length > 0 && config.accounts.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['routes'], message: 'routes need accounts to route to' });
  }
}

/** One account's own, complete configuration: the base config with its overrides. */
export interface AccountRun {
  name: string;
  shadow: boolean;
  config: Config;
}

/** Every configured account as a full config of its own (validated with the rest at load time). */
export function accountRuns(config: Config): AccountRun[] {
  return config.accounts.map((account) => ({
    name: account.name,
    shadow: account.shadow,
    config: deepFreeze(ConfigSchema.parse(mergeAccount(config as ParsedConfig, account))),
  }));
}

/** The config of the account `name`, or an error naming the accounts there are. */
export function accountRun(config: Config, name: string): AccountRun {
  const run = accountRuns(config).find((account) => account.name === name);
  if (!run) {
    const known = config.accounts.map((account) => account.name);
    throw new ConfigError([`--account ${name}: no such account in accounts (${known.join(', ') || 'none configured'})`]);
  }
  return run;
}
