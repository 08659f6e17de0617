/**
 * Every code block in README.md and docs/ marked runnable (```` ```sh runnable ````,
 * `bash runnable`, `python runnable`, `ts runnable`) runs as printed, twice (a snippet
 * must survive being run again), against a live loop this file starts: `quantum up
 * --redis` (no demo) on a private redis-server, so the snippets' plain topic names (the
 * default empty stream prefix) touch nobody else's data.
 *
 * How the printed addresses reach the private loop:
 *  - REDIS_URL is set to the private server; `quantum` commands and the Python and
 *    TypeScript snippets read it (the docs show `os.environ.get("REDIS_URL", …)`);
 *  - `redis-cli` and `curl` are wrappers on PATH: redis-cli gets `-p <private port>`
 *    first (an explicit -h/-p in a snippet still wins), curl has the default service
 *    addresses (127.0.0.1 or localhost :8000/:8002/:8003/:8004) mapped to the loop's ports.
 * Python snippets run with the first interpreter that has redis-py (Debian's
 * /usr/bin/python3 with python3-redis, else `python3`); without one they skip LOUDLY
 * outside CI and fail in CI (.ci/run installs python3-redis). TypeScript snippets run
 * with tsx from the repository root, so they import from './src/…'.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, freePorts, killAll, REPO, spawnQuantum, waitForHealth, type QuantumProcess } from './helpers/processes.js';
import { startPrivateRedis, type PrivateRedis } from './helpers/redis.js';

export interface Snippet {
  file: string;
  line: number;
  lang: 'sh' | 'bash' | 'python' | 'ts';
  code: string;
}

const RUNNABLE = /^(`{3,}|~{3,})\s*(sh|bash|python|ts)\s+runnable\b/;

/** The runnable blocks of one Markdown text, in order. */
export function extractSnippets(file: string, text: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = RUNNABLE.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !lines[j]!.startsWith(fence)) body.push(lines[j++]!);
    out.push({ file, line: i + 1, lang: open[2] as Snippet['lang'], code: body.join('\n') + '\n' });
    i = j;
  }
  return out;
}

function markdownFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...markdownFiles(path));
    else if (entry.name.endsWith('.md')) files.push(path);
  }
  return files.sort();
}

const SNIPPETS = [join(REPO, 'README.md'), ...markdownFiles(join(REPO, 'docs'))].flatMap((path) =>
  extractSnippets(relative(REPO, path), readFileSync(path, 'utf8')),
);

/** The first Python that can `import redis`, or null. */
function pythonWithRedis(): string | null {
  for (const python of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(python, ['-c', 'import redis'], { stdio: 'ignore' }).status === 0) return python;
  }
  return null;
}
const PYTHON = pythonWithRedis();
const SKIP_PYTHON = PYTHON === null && !process.env.CI;
if (SKIP_PYTHON && SNIPPETS.some((s) => s.lang === 'python')) {
  console.warn(
    `\n${'!'.repeat(78)}\n!! docs-snippets: no Python with redis-py (python3 -c 'import redis' fails): the Python\n` +
      `!! snippets are SKIPPED, not passed. Install: apt-get install -y python3-redis (CI installs it and fails without it)\n${'!'.repeat(78)}\n`,
  );
}

/** curl is a tool the machine may lack: snippets using it skip loudly outside CI, fail in CI. */
const HAVE_CURL = spawnSync('sh', ['-c', 'command -v curl'], { stdio: 'ignore' }).status === 0;
const usesCurl = (s: Snippet) => /(^|[\s;|&(])curl\s/.test(s.code);
const SKIP_CURL = !HAVE_CURL && !process.env.CI;
if (SKIP_CURL && SNIPPETS.some(usesCurl)) {
  console.warn(`\n!!! docs-snippets: curl is NOT installed: the snippets using it are SKIPPED, not passed (apt-get install -y curl) !!!\n`);
}

const SNIPPET_TIMEOUT_MS = 60_000;

let redis: PrivateRedis;
let up: QuantumProcess;
let env: NodeJS.ProcessEnv;
let shims: string;

function writeScript(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

function which(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0) throw new Error(`${name} is not installed; the doc snippets need it`);
  return found.stdout.trim();
}

beforeAll(async () => {
  await ensureBuilt();
  redis = await startPrivateRedis({ appendonly: false });
  const [risk = 0, execution = 0, monitor = 0, dashboard = 0] = await freePorts(4);
  env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('QT_') || key === 'REDIS_URL') continue;
    env[key] = value;
  }
  shims = mkdtempSync(join(tmpdir(), 'qt-snippets-'));
  mkdirSync(join(shims, 'bin'));
  writeScript(join(shims, 'bin', 'redis-cli'), `exec ${which('redis-cli')} -p ${redis.port} "$@"`);
  const map = [
    [8003, risk],
    [8002, execution],
    [8004, monitor],
    [8000, dashboard],
  ]
    .map(([from, to]) => `s#(127\\.0\\.0\\.1|localhost):${from}([/?]|$)#127.0.0.1:${to}\\2#`)
    .join(';');
  if (HAVE_CURL) {
    writeScript(
      join(shims, 'bin', 'curl'),
      `for a in "$@"; do set -- "$@" "$(printf '%s' "$a" | sed -E '${map}')"; shift; done\nexec ${which('curl')} "$@"`,
    );
  }
  Object.assign(env, {
    PATH: `${join(shims, 'bin')}:${join(REPO, 'node_modules', '.bin')}:${process.env.PATH ?? ''}`,
    REDIS_URL: redis.url,
    // docs/python.md's snippets run after `pip install ./clients/python`: the same package from the tree.
    PYTHONPATH: [join(REPO, 'clients', 'python'), process.env.PYTHONPATH].filter(Boolean).join(':'),
    QT_RISK_PORT: String(risk),
    QT_EXECUTION_PORT: String(execution),
    QT_MONITOR_PORT: String(monitor),
    QT_DASHBOARD_PORT: String(dashboard),
    // Installing the checkout into npx's cache runs its `prepare` script (tsc) in this tree,
    // which rewrites dist/ file by file while other test files' services load from it (a
    // service then fails to start: "does not provide an export named ..."). dist/ is already
    // fresh (ensureBuilt above), so npm's scripts are skipped here.
    npm_config_ignore_scripts: 'true',
  });
  // The first `npx quantum` of a checkout installs the project into npm's npx cache (a
  // `file:` dependency with its whole tree), which can take over a minute on a loaded
  // machine: do it once here, so a snippet's time limit is not spent on it and two
  // snippets never race on a half-made cache entry.
  const builtAt = statSync(join(REPO, 'dist', 'cli', 'main.js')).mtimeMs;
  const warm = spawnSync('npx', ['quantum', '--version'], { cwd: REPO, env, encoding: 'utf8', timeout: 300_000 });
  if (warm.status !== 0) throw new Error(`npx quantum --version failed (${warm.status ?? warm.signal}): ${warm.stderr}`);
  if (statSync(join(REPO, 'dist', 'cli', 'main.js')).mtimeMs !== builtAt) {
    throw new Error('npx quantum rebuilt dist/ under the other test files\' running services');
  }
  up = spawnQuantum(['up', '--no-demo', '--plain', '--redis', redis.url], env, 'up');
  await Promise.all([risk, execution, monitor].map((port) => waitForHealth(`http://127.0.0.1:${port}`, up, 60_000)));
}, 420_000);

afterAll(async () => {
  await up?.stop().catch(() => undefined);
  await killAll();
  await redis?.destroy();
  if (shims) rmSync(shims, { recursive: true, force: true });
}, 60_000);

function runProcess(command: string, args: string[], input?: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[killed after ${SNIPPET_TIMEOUT_MS} ms]`;
      child.kill('SIGKILL');
    }, SNIPPET_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.end(input ?? '');
  });
}

async function runSnippet(snippet: Snippet): Promise<{ code: number | null; output: string }> {
  switch (snippet.lang) {
    case 'sh':
    case 'bash':
      return runProcess('bash', ['-e', '-o', 'pipefail', '-c', snippet.code]);
    case 'python':
      if (!PYTHON) throw new Error("no Python with redis-py: apt-get install -y python3-redis (python3 -c 'import redis' must work)");
      return runProcess(PYTHON, ['-'], snippet.code);
    case 'ts': {
      // In the repository root, so a snippet's './src/…' imports resolve as printed.
      const file = join(REPO, `.docs-snippet-${process.pid}-${snippet.line}.ts`);
      writeFileSync(file, snippet.code);
      try {
        return await runProcess(join(REPO, 'node_modules', '.bin', 'tsx'), [file]);
      } finally {
        rmSync(file, { force: true });
      }
    }
  }
}

describe('doc snippets marked runnable', () => {
  it('finds the runnable snippets (the README and docs/wire-format.md have some)', () => {
    const files = new Set(SNIPPETS.map((s) => s.file));
    expect(files).toContain('README.md');
    expect(files).toContain(join('docs', 'wire-format.md'));
    expect(SNIPPETS.map((s) => s.lang)).toEqual(expect.arrayContaining(['sh', 'python', 'ts']));
  });

  for (const snippet of SNIPPETS) {
    const skip = (snippet.lang === 'python' && SKIP_PYTHON) || (usesCurl(snippet) && SKIP_CURL);
    it.skipIf(skip)(`${snippet.file}:${snippet.line} (${snippet.lang}) runs as printed, and again`, async () => {
      for (const attempt of ['first run', 'second run']) {
        const result = await runSnippet(snippet);
        expect(result.code, `${attempt} of ${snippet.file}:${snippet.line}\n${snippet.code}\n--- output:\n${result.output}\n${up.describe(1500)}`).toBe(0);
      }
    }, 4 * SNIPPET_TIMEOUT_MS);
  }
});

describe('extractSnippets', () => {
  it('takes only blocks marked runnable, with their language and line', () => {
    const text = ['# t', '```sh', 'echo no', '```', '```sh runnable', 'echo yes', '```', '````python runnable', 'print(1)', '```', '````'].join('\n');
    expect(extractSnippets('x.md', text)).toEqual([
      { file: 'x.md', line: 5, lang: 'sh', code: 'echo yes\n' },
      { file: 'x.md', line: 8, lang: 'python', code: 'print(1)\n```\n' },
    ]);
  });
});
