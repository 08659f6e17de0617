/**
 * The `quantum` command. Parses arguments and config at the edge, then hands over to
 * the launchers; every command returns an exit code (0 ok, 1 failure, 2 bad config
 * or bad arguments).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, accountRun, accountRuns, loadConfig, type Config } from '../platform/config.js';

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

interface CommonOptions {
  config?: string;
  redis?: string;
  account?: string;
}

/** The config, or with --account the named account's own (its prefix, ports and overrides). */
function readConfig(options: CommonOptions, extra: Record<string, unknown> = {}): Config {
  const config = loadConfig({ configPath: options.config, overrides: { redis_url: options.redis, ...extra } });
  return options.account === undefined ? config : accountRun(config, options.account).config;
}

/**
 * The kill switch acts on one account with --account, else on every configured account
 * (an operator who halts expects everything to stop), else on the single deployment.
 * Every account is tried even when one fails; the exit code is the worst one.
 */
async function forEachAccount(options: { config?: string; account?: string }, act: (config: Config) => Promise<number>): Promise<number> {
  const config = loadConfig({ configPath: options.config });
  if (options.account !== undefined) return act(accountRun(config, options.account).config);
  if (config.accounts.length === 0) return act(config);
  let worst = 0;
  for (const run of accountRuns(config)) {
    console.log(`account ${run.name}:`);
    worst = Math.max(worst, await act(run.config));
  }
  return worst;
}

/** Commands that talk to a separate deployment need Redis: default to the local one. */
function withRedis(config: Config): Config & { redis_url: string } {
  return { ...config, redis_url: config.redis_url ?? DEFAULT_REDIS };
}

function parseNumber(name: string) {
  return (text: string): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value)) throw new InvalidArgumentError(`${name} must be a number, got "${text}"`);
    return value;
  };
}

/** Commander's error text ("error: unknown option '--x'\n(Did you mean …?)") as one line. */
function oneLine(text: string): string {
  return text
    .replace(/^error: /, '')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .join(' ');
}

function addCommon(command: Command, redisHelp: string): Command {
  return command
    .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG)')
    .option('--redis <url>', redisHelp)
    .option('--account <name>', 'act on this one account of the config\'s accounts (its stream_prefix, ports and overrides)');
}

export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command();
  program
    .name('quantum')
    .description(
      'quantum-trader: an event-driven paper-trading loop.\n' +
        'Signals flow trade.signal.v5 → Risk Safety → trade.signal.safe → Execution → trade.execution.res → Position Monitor.',
    )
    .version('0.1.0')
    // Set before any sub-command exists, so every command inherits them: a usage error
    // (unknown option, missing or bad argument) throws instead of exiting 1, and prints one line.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`quantum: ${oneLine(text)} (see --help)\n`) });

  addCommon(
    program
      .command('up')
      .description('run all three services (and the dashboard) in one process, with a demo signal source')
      .option('--no-demo', 'do not start the demo signal source')
      .option('--rate <per-second>', 'demo signals per second (default from config demo.signals_per_second)', parseNumber('rate'))
      .option('--plain', 'print plain summary lines even on a terminal')
      .option('--no-dashboard', 'do not serve the web dashboard')
      .option('--no-journal', 'do not write the trade journal (journal.url, default sqlite:./quantum-journal.sqlite)')
      .addOption(new Option('--feed <source>', 'price source (default from config market.source): simulator or binance').choices(['simulator', 'binance'])),
    'run on this Redis instead of the embedded bus (or REDIS_URL)',
  ).action(async (options: CommonOptions & { demo: boolean; rate?: number; plain?: boolean; dashboard: boolean; journal: boolean; feed?: string }) => {
    const { demoProfileFor } = await import('./demo-profile.js');
    const profile = demoProfileFor({ demo: options.demo, configPath: options.config, env: process.env, cwd: process.cwd() });
    const config = readConfig(options, {
      ...profile,
      ...(options.rate ? { 'demo.signals_per_second': options.rate } : {}),
      ...(options.feed ? { 'market.source': options.feed } : {}),
    });
    if (config.accounts.length > 0) {
      const { runUpAccounts } = await import('./up-accounts.js');
      exit(await runUpAccounts(config, { demo: options.demo, dashboard: options.dashboard }));
      return;
    }
    const { runUp } = await import('./up.js');
    exit(
      await runUp(config, {
        demo: options.demo,
        plain: options.plain === true,
        dashboard: options.dashboard,
        demoProfile: profile !== null,
        journal: options.journal,
      }),
    );
  });

  for (const [name, title] of [
    ['risk', 'the Risk Safety service (port 8003)'],
    ['execution', 'the paper Execution service (port 8002)'],
    ['monitor', 'the Position Monitor (port 8004)'],
  ] as const) {
    addCommon(
      program.command(name).description(`run ${title} on Redis`),
      `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
    ).action(async (options: CommonOptions) => {
      const config = withRedis(readConfig(options));
      const { runService } = await import('./serve.js');
      exit(await runService(name, config));
    });
  }

  addCommon(
    program
      .command('route')
      .description('route the shared trade.signal.v5 (unprefixed, group router) to the accounts its routes select (docs/scale-out.md)'),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS}; or redis_cluster_nodes)`,
  ).action(async (options: CommonOptions) => {
    const config = withRedis(readConfig(options));
    const { runRoute } = await import('./route.js');
    exit(await runRoute(config));
  });

  addCommon(
    program
      .command('accounts')
      .description("print the accounts side by side (equity, return, drawdown, win rate, trades, approval rate, rejections by reason) from their services' HTTP APIs")
      .option('--json', 'print JSON'),
    'unused (the figures come over HTTP)',
  ).action(async (options: CommonOptions & { json?: boolean }) => {
    const config = readConfig(options);
    const { runAccounts } = await import('./accounts.js');
    exit(await runAccounts(config, { json: options.json === true }));
  });

  program
    .command('feed')
    .description("print the live quotes of the configured instruments from the venue's public market data (market.binance) for a few seconds")
    .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG)')
    .addOption(new Option('--market <market>', 'spot or usdm (default from config market.binance.market)').choices(['spot', 'usdm']))
    .option('--seconds <n>', 'how long to listen', parseNumber('seconds'), 5)
    .option('--json', 'print each tick as JSON')
    .action(async (options: { config?: string; market?: string; seconds: number; json?: boolean }) => {
      const config = loadConfig({ configPath: options.config, overrides: options.market ? { 'market.binance.market': options.market } : {} });
      const { runFeed } = await import('./feed.js');
      exit(await runFeed(config, { seconds: Math.max(0.1, options.seconds), json: options.json === true }));
    });

  addCommon(
    program.command('dashboard').description('serve the web dashboard (port 8000) for a deployment on Redis'),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(async (options: CommonOptions) => {
    const config = withRedis(readConfig(options));
    const { runDashboard } = await import('./serve.js');
    exit(await runDashboard(config));
  });

  const journal = addCommon(
    program
      .command('journal')
      .description(
        'run the trade journal on Redis: every decision, fill, round trip, equity point and dead letter into ' +
          'journal.url (sqlite:PATH or postgres://…; default sqlite:./quantum-journal.sqlite). See docs/journal.md',
      ),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(async (options: CommonOptions) => {
    const config = withRedis(readConfig(options));
    const { runJournal } = await import('./journal.js');
    exit(await runJournal(config));
  });
  for (const [view, title] of [
    ['trades', 'print the closed round trips: PnL, fees, hold time, exit reason, source'],
    ['decisions', 'print every decided signal: approved, rejected (with reasons) or skipped'],
    ['equity', 'print the portfolio at each position update (at most one row per symbol per second)'],
  ] as const) {
    journal
      .command(view)
      .description(title)
      .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG)')
      .option('--since <iso>', 'only rows at or after this time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z')
      .option('--symbol <symbol>', 'only this symbol')
      .option('--source <source>', 'only signals from this source (trades: the signal that opened the trade)')
      .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
      .action(async (options: { config?: string; since?: string; symbol?: string; source?: string; format: string }) => {
        const config = readConfig(options);
        const { runJournalView } = await import('./journal.js');
        exit(await runJournalView(config, view, options));
      });
  }
  journal
    .command('export')
    .description('write one CSV file per journal table into DIR')
    .argument('<dir>', 'folder to write (created when missing)')
    .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG)')
    .action(async (dir: string, options: { config?: string }) => {
      const config = readConfig(options);
      const { runJournalExport } = await import('./journal.js');
      exit(await runJournalExport(config, dir));
    });

  addCommon(
    program
      .command('signal')
      .description('publish one TradeSignal to trade.signal.v5 and print its id')
      .argument('<symbol>', 'e.g. BTCUSDT (any case; sent in upper case)')
      .argument('<action>', 'BUY, SELL, HOLD or CLOSE (any case)')
      .argument('<confidence>', 'model confidence, 0..1', parseNumber('confidence'))
      .option('-s, --source <source>', 'who produced it', 'cli')
      .option('-p, --price <price>', 'informational price', parseNumber('price'))
      .option('--stop-loss <price>', 'stop-loss price', parseNumber('stop-loss'))
      .option('--take-profit <price>', 'take-profit price', parseNumber('take-profit'))
      .option('--signal-id <id>', 'your own signal_id (a retried publish with the same id is decided and filled once)')
      .option('--json', 'print the whole signal as JSON'),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(
    async (
      symbol: string,
      action: string,
      confidence: number,
      options: CommonOptions & {
        source: string;
        price?: number;
        stopLoss?: number;
        takeProfit?: number;
        signalId?: string;
        json?: boolean;
      },
    ) => {
      const config = withRedis(readConfig(options));
      const { runSignal } = await import('./tools.js');
      exit(
        await runSignal(config, {
          symbol,
          action,
          confidence,
          source: options.source,
          price: options.price,
          stop_loss: options.stopLoss,
          take_profit: options.takeProfit,
          signal_id: options.signalId,
          json: options.json === true,
        }),
      );
    },
  );

  program
    .command('halt')
    .description('the kill switch: refuse every entry on the risk service until `quantum resume` (closes still pass)')
    .option('--flatten', 'also close every open position (reduce-only, exit_reason kill_switch)')
    .option('--reason <text>', 'why, shown on every rejection', 'operator halt')
    .option('--json', 'print the answer as JSON')
    .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG): host, ports.risk, api_token')
    .option('--account <name>', "only this account of the config's accounts (default: every account)")
    .action(async (options: { config?: string; account?: string; flatten?: boolean; reason: string; json?: boolean }) => {
      const { runHalt } = await import('./halt.js');
      exit(await forEachAccount(options, (config) => runHalt(config, { flatten: options.flatten === true, reason: options.reason, json: options.json === true })));
    });
  program
    .command('resume')
    .description('leave HALTED (kill switch or circuit breaker) on the risk service; peak equity restarts at current equity')
    .option('--json', 'print the answer as JSON')
    .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG): host, ports.risk, api_token')
    .option('--account <name>', "only this account of the config's accounts (default: every account)")
    .action(async (options: { config?: string; account?: string; json?: boolean }) => {
      const { runResume } = await import('./halt.js');
      exit(await forEachAccount(options, (config) => runResume(config, { json: options.json === true })));
    });

  const streams = addCommon(
    program
      .command('streams')
      .description('stream lengths, consumer groups, pending entries and lag for every topic')
      .option('--json', 'print JSON'),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(async (options: CommonOptions & { json?: boolean }) => {
    const config = withRedis(readConfig(options));
    const { runStreams } = await import('./tools.js');
    exit(await runStreams(config, { json: options.json === true }));
  });
  addCommon(
    streams
      .command('trim')
      .description('trim streams to --maxlen entries, never past unread or pending entries (trade.execution.res only behind the monitor snapshot)')
      .addOption(new Option('--maxlen <n>', 'entries to keep').argParser(parseNumber('maxlen')).makeOptionMandatory())
      .option('--topic <topic>', 'only this topic'),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(async (options: CommonOptions & { maxlen: number; topic?: string }) => {
    const config = withRedis(readConfig(options));
    const { runTrim } = await import('./tools.js');
    exit(await runTrim(config, { maxlen: options.maxlen, topic: options.topic }));
  });
  addCommon(
    streams.command('create-groups').description("create every service's consumer groups (idempotent)"),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(async (options: CommonOptions) => {
    const config = withRedis(readConfig(options));
    const { runCreateGroups } = await import('./tools.js');
    exit(await runCreateGroups(config));
  });

  program
    .command('backtest')
    .description('replay price files and signals through the same risk, execution and monitor services on simulated time; writes report.json, trades.csv, report.html (docs/backtest.md)')
    .requiredOption('--prices <files...>', 'Binance kline CSV/.zip (a .CHECKSUM beside a zip is verified), aggTrades CSV (-aggTrades- in the name) or JSONL ticks {"ts","symbol","price"[,"bid","ask"]}')
    .option('--signals <file>', 'JSONL of TradeSignalInput, each with its ts (epoch ms)')
    .option('--strategy <demo|path>', 'the demo strategy, or a JS/TS module exporting createStrategy(options) → { onPrice, next }')
    .option('--strategy-interval-ms <ms>', 'how often the strategy is asked for a signal, in replay time (default 60000)', parseNumber('strategy-interval-ms'))
    .option('--symbol <symbol>', 'the symbol of every --prices file (default: from each file name, e.g. BTCUSDT-1m-2024-01.zip)')
    .option('--from <iso>', 'start of the replay (ISO date/time or epoch ms; default: the first price)')
    .option('--to <iso>', 'end of the replay (default: the last price)')
    .option('--out <dir>', 'where the report goes', 'backtest-report')
    .option('-c, --config <path>', 'config file (default ./quantum.config.json, or QT_CONFIG)')
    .option('--no-conflate', 'publish every tick, even those no rule can see (slower; the report is the same)')
    .option('--plain', 'plain progress lines even on a terminal')
    .option('--log-level <level>', 'service logs to stderr at this pino level', 'error')
    .action(async (options: { prices: string[]; signals?: string; strategy?: string; strategyIntervalMs?: number; symbol?: string; from?: string; to?: string; out: string; config?: string; conflate: boolean; plain?: boolean; logLevel: string }) => {
      const config = readConfig({ config: options.config });
      const { runBacktestCommand } = await import('./backtest.js');
      exit(await runBacktestCommand(config, { ...options, plain: options.plain === true }));
    });

  addCommon(
    program
      .command('validate')
      .description('run the 13 checks of a healthy core loop against a running deployment')
      .option('--json', 'print the result as JSON')
      .option('--no-systemd', 'skip systemd unit checks even where systemctl exists'),
    `Redis URL (default REDIS_URL, else ${DEFAULT_REDIS})`,
  ).action(async (options: CommonOptions & { json?: boolean; systemd: boolean }) => {
    const config = withRedis(readConfig(options));
    const { runValidate } = await import('./validate.js');
    exit(await runValidate(config, { json: options.json === true, systemd: options.systemd }));
  });

  return program;
}

/** Runs the CLI; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not failures; commander already printed the message.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ConfigError) {
      console.error(`quantum: ${err.message}`);
      return err.exitCode;
    }
    console.error(`quantum: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
