/**
 * The Python client (clients/python, docs/python.md) against the real loop: the generated
 * module is fresh; with `quantum risk`, `quantum execution` and `quantum monitor` running
 * as processes on Redis under a prefix of this file's own, the package's pytest suite
 * passes, the package installs offline into a fresh venv and the runnable snippets of
 * docs/python.md run there as printed; `mypy --strict` passes.
 *
 * Needs a python3 with redis-py and pytest (Debian: python3-redis, python3-pytest,
 * python3-venv; mypy for the type check). Without them the tests skip with a warning
 * naming what is missing, and fail when CI is set (.ci/run installs them).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { messageJsonSchemas } from '../src/core/json-schemas.js';
import { inputsFromSchemaFiles, renderPythonClient, wireConstants } from '../scripts/gen-python-render.js';
import { REPO, ensureBuilt, newDeployment, startServices, tearDownDeployment, type Services } from './helpers/processes.js';
import { uniquePrefix } from './helpers/redis.js';

const CLIENT = join(REPO, 'clients', 'python');

describe('clients/python generated messages', () => {
  it('match docs/schemas (run `npm run schemas` when this fails)', () => {
    const expected = renderPythonClient(inputsFromSchemaFiles(messageJsonSchemas()));
    for (const [path, text] of Object.entries(expected)) {
      expect(readFileSync(join(CLIENT, path), 'utf8'), `clients/python/${path} is stale`).toBe(text);
    }
  });
});

/** The first python3 (QT_TEST_PYTHON, else Debian's, else PATH's) that imports redis, pytest and venv; else why not. */
function findPython(): { python: string | null; missing: string } {
  const tried: string[] = [];
  const candidates = process.env.QT_TEST_PYTHON ? [process.env.QT_TEST_PYTHON] : ['/usr/bin/python3', 'python3'];
  for (const candidate of candidates) {
    const probe = spawnSync(candidate, ['-c', 'import redis, pytest, venv'], { encoding: 'utf8' });
    if (probe.status === 0) return { python: candidate, missing: '' };
    tried.push(`${candidate}: ${probe.error ? 'not found' : (probe.stderr.trim().split('\n').pop() ?? 'failed')}`);
  }
  return { python: null, missing: `python3 with redis-py, pytest and venv (${tried.join('; ')})` };
}

function hasMypy(): boolean {
  return spawnSync('mypy', ['--version'], { encoding: 'utf8' }).status === 0;
}

interface Run {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, cwd = REPO): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The ```python runnable blocks of a Markdown file, in order. */
function runnableBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```python runnable\n([\s\S]*?)^```$/gm)].map((match) => match[1] ?? '');
}

const { python, missing } = findPython();
const inCi = Boolean(process.env.CI);

if (!python && !inCi) console.warn(`SKIPPING test/python-client.test.ts: no ${missing}. Install python3-redis python3-pytest python3-venv.`);

describe.skipIf(!python && !inCi)('the Python client against the loop on Redis', () => {
  const prefix = uniquePrefix('python');
  let services: Services | undefined;
  let env: NodeJS.ProcessEnv = {};
  const venvDir = mkdtempSync(join(tmpdir(), 'qt-python-venv-'));

  beforeAll(async () => {
    if (!python) return; // in CI: the first test fails, naming what is missing
    await ensureBuilt();
    const deployment = await newDeployment(prefix, {
      execution: { price_interval_ms: 0 },
      monitor: { mark_interval_ms: 0 },
      risk: { cooldown_minutes: 0, max_daily_entries: 1000 },
    });
    services = await startServices(deployment);
    // The client reads REDIS_URL and QT_STREAM_PREFIX, as the services do.
    env = { ...services.env, PYTHONDONTWRITEBYTECODE: '1' };
  }, 240_000);

  afterAll(async () => {
    await tearDownDeployment(services, prefix);
    rmSync(venvDir, { recursive: true, force: true });
  }, 60_000);

  const describeServices = (): string => services?.describe() ?? '';

  it('passes its pytest suite (typed fill and position update, bad signal refused, redelivery, asyncio)', async () => {
    if (!python) throw new Error(`CI needs ${missing}: .ci/run installs python3-redis python3-pytest python3-venv`);
    const result = await run(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rs', 'tests'], env, 180_000, CLIENT);
    expect(result.code, `${result.output}\n${describeServices()}`).toBe(0);
    expect(result.output).not.toMatch(/skipped/);
  }, 200_000);

  it('installs offline into a fresh venv, and the runnable snippets of docs/python.md run there as printed', async () => {
    if (!python) throw new Error(`CI needs ${missing}`);
    const made = await run(python, ['-m', 'venv', '--system-site-packages', venvDir], env, 120_000);
    expect(made.code, made.output).toBe(0);
    const pip = join(venvDir, 'bin', 'pip');
    // pip builds in the source folder: build a copy, so the checkout stays clean.
    const source = join(venvDir, 'src', 'python');
    cpSync(CLIENT, source, { recursive: true, filter: (path) => !/(build|\.egg-info|_cache|__pycache__)$/.test(path) });
    const installed = await run(pip, ['install', '--no-build-isolation', '--no-deps', '--no-index', source], env, 120_000);
    expect(installed.code, installed.output).toBe(0);

    const blocks = runnableBlocks(readFileSync(join(REPO, 'docs', 'python.md'), 'utf8'));
    expect(blocks.length).toBeGreaterThanOrEqual(1);
    const [quickStart = '', ...rest] = blocks;
    // Run from a scratch folder, so the import finds the installed package, not the checkout.
    const started = await run(join(venvDir, 'bin', 'python'), ['-c', quickStart], env, 60_000, venvDir);
    expect(started.code, `${started.output}\n${describeServices()}`).toBe(0);
    expect(started.output).toMatch(/^ExecutionResult\(.*symbol='BTCUSDT', side=OrderSide\.BUY.*status=ExecutionStatus\.FILLED/m);
    for (const block of rest) {
      const ran = await run(join(venvDir, 'bin', 'python'), ['-c', block], env, 60_000, venvDir);
      expect(ran.code, `${block}\n${ran.output}`).toBe(0);
    }
  }, 300_000);

  it('generates what other branches add: optional fields, new enums, nested objects, arrays, records, nullables, new messages', async () => {
    if (!python) throw new Error(`CI needs ${missing}`);
    const schemas = structuredClone(messageJsonSchemas());
    const approved = schemas['RiskApprovedSignal.json'] as { properties: Record<string, unknown>; required: string[] };
    approved.required = approved.required.filter((key) => key !== 'checks' && key !== 'sizing');
    approved.properties.exit_reason = { type: 'string', enum: ['signal', 'stop_loss', 'take_profit'] };
    approved.properties.expires_ts = { type: 'integer', minimum: 0 };
    schemas['FeedbackEvent.json'] = {
      type: 'object',
      properties: {
        signal_id: { type: 'string', minLength: 1 },
        level: { type: 'string', enum: ['low', 'high'] },
        scores: { type: 'array', items: { type: 'number', minimum: 0, maximum: 1 }, minItems: 1 },
        window: { type: 'object', properties: { start: { type: 'integer' }, end: { type: 'integer' } }, required: ['start', 'end'] },
        labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 8 }, maxProperties: 2 },
        note: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        portfolio: { $ref: 'PortfolioSummary.json' },
        span: { $ref: '#/$defs/Span' },
      },
      required: ['signal_id', 'level', 'scores', 'window'],
      $defs: { Span: { type: 'object', properties: { bars: { type: 'integer', minimum: 1 } }, required: ['bars'] } },
    };
    schemas['topic.trade.feedback.json'] = { $ref: 'FeedbackEvent.json' };
    const files = renderPythonClient(
      inputsFromSchemaFiles(schemas, { ...wireConstants(), topics: { ...wireConstants().topics, feedback: 'trade.feedback' } }),
    );
    const dir = mkdtempSync(join(tmpdir(), 'qt-python-gen-'));
    try {
      mkdirSync(join(dir, 'quantum_trader'));
      writeFileSync(join(dir, 'quantum_trader', '__init__.py'), '');
      copyFileSync(join(CLIENT, 'quantum_trader', '_runtime.py'), join(dir, 'quantum_trader', '_runtime.py'));
      for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
      const script = [
        'import pytest',
        'from quantum_trader.messages import FeedbackEvent, FeedbackEventWindow, Level, ExitReason, PortfolioSummary, RiskApprovedSignal, Span',
        'from quantum_trader.topics import TOPIC_MESSAGES, Topic',
        'assert TOPIC_MESSAGES["trade.feedback"] is FeedbackEvent and Topic.FEEDBACK.value == "trade.feedback"',
        'good = {"signal_id": "s", "level": "high", "scores": [0.1, 1], "window": {"start": 1, "end": 2}, "labels": {"a": "b"}, "note": None}',
        'event = FeedbackEvent.from_dict(good)',
        'assert event.level is Level.HIGH and event.window == FeedbackEventWindow(start=1, end=2) and event.note is None',
        'assert FeedbackEvent.from_json(event.to_json()) == event',
        'with pytest.raises(ValueError, match=r"scores\\[1\\]: must be <= 1"): FeedbackEvent.from_dict({**good, "scores": [0.1, 2]})',
        'with pytest.raises(ValueError, match=r"window\\.end: is required"): FeedbackEvent.from_dict({**good, "window": {"start": 1}})',
        'with pytest.raises(ValueError, match=r"labels\\.a: must be a string"): FeedbackEvent.from_dict({**good, "labels": {"a": 1}})',
        'with pytest.raises(ValueError, match=r"level: must be one of low, high"): FeedbackEvent(**{**good, "level": "mid"})',
        'assert RiskApprovedSignal.__dataclass_fields__["checks"].default is None',
        'assert ExitReason.STOP_LOSS.value == "stop_loss"',
        'with pytest.raises(ValueError, match=r"labels: must have at most 2 key"): FeedbackEvent.from_dict({**good, "labels": {"a": "", "b": "", "c": ""}})',
        'with pytest.raises(ValueError, match=r"labels\\.a: must have at most 8 char"): FeedbackEvent.from_dict({**good, "labels": {"a": "123456789"}})',
        'assert FeedbackEvent.from_dict({**good, "span": {"bars": 3}}).span == Span(bars=3)',
        'with pytest.raises(ValueError, match=r"span\\.bars: must be >= 1"): FeedbackEvent.from_dict({**good, "span": {"bars": 0}})',
        'assert FeedbackEvent.__dataclass_fields__["portfolio"].type == "Optional[PortfolioSummary]"',
        'print("generated ok")',
      ].join('\n');
      const result = await run(python, ['-c', script], { ...env, PYTHONPATH: dir }, 60_000, dir);
      expect(result.code, `${result.output}\n${files['quantum_trader/messages.py']}`).toBe(0);
      expect(result.output).toContain('generated ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes mypy --strict', async () => {
    if (!python) throw new Error(`CI needs ${missing}`);
    if (!hasMypy()) {
      if (inCi) throw new Error('CI needs mypy: .ci/run installs it (apt mypy)');
      console.warn('SKIPPING the mypy --strict check: mypy is not installed (apt-get install mypy)');
      return;
    }
    const result = await run('mypy', ['--strict', '--cache-dir', join(venvDir, 'mypy-cache')], env, 180_000, CLIENT);
    expect(result.code, result.output).toBe(0);
  }, 200_000);
});
