/**
 * deploy/: the systemd units, install.sh / uninstall.sh, the Dockerfile and the compose
 * file. Nothing here needs systemd as PID 1 or a Docker engine:
 *  - the units are rendered by install.sh itself and checked by `systemd-analyze verify`
 *    (which must print nothing: it reports unknown keys and bad values as warnings only);
 *  - install.sh runs against a temporary root (QT_ROOT) with systemctl, useradd, chown,
 *    curl and npm replaced by small scripts that log their arguments;
 *  - the compose file is checked against the Compose Specification's JSON Schema (a reduced,
 *    hand-written copy in test/fixtures/compose-spec.reduced.json) with the `yaml` parser, so
 *    no docker-compose is needed, and also by `docker-compose config` where it is installed;
 *    the Dockerfile by reading it.
 * A system tool a test needs (shellcheck, systemd-analyze, docker-compose) skips its test
 * LOUDLY when missing outside CI and fails in CI (.ci/run installs it): never a silent pass.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const DEPLOY = join(REPO, 'deploy');
const UNITS = [
  { unit: 'quantum-risk-safety.service', command: 'risk', log: 'risk-safety', port: 8003 },
  { unit: 'quantum-execution.service', command: 'execution', log: 'execution', port: 8002 },
  { unit: 'quantum-position-monitor.service', command: 'monitor', log: 'position-monitor', port: 8004 },
] as const;

const scratch: string[] = [];
function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `qt-deploy-${name}-`));
  scratch.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

/**
 * True when a test needing `name` must be skipped: the tool is missing and this is not CI
 * (said loudly). In CI a missing tool never skips: the test runs and fails (requireTool).
 */
function skipWithoutTool(name: string, install: string): boolean {
  if (hasCommand(name) || process.env.CI) return false;
  console.warn(
    `\n${'!'.repeat(78)}\n!! deploy.test: ${name} is NOT installed: its check is SKIPPED, not passed.\n` +
      `!! Install it with: ${install}   (CI installs it and fails without it)\n${'!'.repeat(78)}\n`,
  );
  return true;
}

function requireTool(name: string, install: string): void {
  if (!hasCommand(name)) throw new Error(`${name} is not installed (${install}); CI must have it`);
}

function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const result: SpawnSyncReturns<string> = spawnSync(command, args, {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr };
}

/** Like run(), without blocking the event loop (for tests that serve HTTP in this process). */
function runAsync(command: string, args: string[], env: Record<string, string>) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function writeScript(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

/**
 * A copy of just what install.sh needs (deploy/, bin/, package*.json, docs/), so the test
 * does not depend on, or race with, the rest of the working tree.
 */
function fakeRepo(at: string): string {
  mkdirSync(at, { recursive: true });
  for (const entry of ['deploy', 'bin', 'docs', 'package.json', 'package-lock.json']) {
    cpSync(join(REPO, entry), join(at, entry), { recursive: true });
  }
  mkdirSync(join(at, 'node_modules', 'left-behind'), { recursive: true });
  mkdirSync(join(at, '.git'), { recursive: true });
  return at;
}

/** Stubs that append "<name> <args>" to $STUB_LOG. */
function stubs(): { dir: string; log: string; env: Record<string, string> } {
  const dir = tempDir('stubs');
  const log = join(dir, 'calls.log');
  writeFileSync(log, '');
  for (const name of ['systemctl', 'useradd', 'chown', 'userdel']) {
    writeScript(join(dir, name), `echo "${name} $*" >> "$STUB_LOG"`);
  }
  // npm: `ci` stands in for the real install + TypeScript build by creating dist/cli/main.js.
  writeScript(
    join(dir, 'npm'),
    [
      'if [ "$1" = "--version" ]; then echo 10.8.2; exit 0; fi',
      'echo "npm $* (cwd=$PWD)" >> "$STUB_LOG"',
      'if [ "$1" = "ci" ]; then mkdir -p dist/cli && echo "// built" > dist/cli/main.js; fi',
    ].join('\n'),
  );
  // curl: answers 200, or fails like a closed port for $STUB_CURL_FAIL_PORT.
  writeScript(
    join(dir, 'curl'),
    [
      'for a; do url=$a; done',
      'echo "curl $url" >> "$STUB_LOG"',
      'case "$url" in *":${STUB_CURL_FAIL_PORT:-none}/"*) printf 000; exit 7 ;; esac',
      'printf 200',
    ].join('\n'),
  );
  return {
    dir,
    log,
    env: {
      STUB_LOG: log,
      SYSTEMCTL: join(dir, 'systemctl'),
      USERADD: join(dir, 'useradd'),
      CHOWN: join(dir, 'chown'),
      CURL: join(dir, 'curl'),
      NPM: join(dir, 'npm'),
      USERDEL: join(dir, 'userdel'),
      QT_HEALTH_TIMEOUT: '1',
      QT_HEALTH_INTERVAL: '0.1',
    },
  };
}

function calls(log: string): string[] {
  return readFileSync(log, 'utf8').split('\n').filter((line) => line !== '');
}

function indexOfCall(lines: string[], prefix: string): number {
  const index = lines.findIndex((line) => line.startsWith(prefix));
  expect(index, `expected a call starting with "${prefix}" in:\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
  return index;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1] ?? '';
}

describe('deploy scripts: syntax', () => {
  it('bash -n / sh -n accept install.sh, uninstall.sh and the CLI wrapper', () => {
    for (const script of ['install.sh', 'uninstall.sh']) {
      const result = run('bash', ['-n', join(DEPLOY, script)]);
      expect(result.output, script).toBe('');
      expect(result.status, script).toBe(0);
    }
    expect(run('sh', ['-n', join(DEPLOY, 'quantum-cli.sh')]).status).toBe(0);
  });

  it.skipIf(skipWithoutTool('shellcheck', 'apt-get install -y shellcheck'))('shellcheck finds nothing', () => {
    requireTool('shellcheck', 'apt-get install -y shellcheck');
    const result = run('shellcheck', ['install.sh', 'uninstall.sh', 'quantum-cli.sh'], { cwd: DEPLOY });
    expect(result.output).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('systemd units', () => {
  const node = process.execPath;
  const rendered = tempDir('units');
  const render = run('bash', [join(DEPLOY, 'install.sh'), '--render-units', rendered, '--dir', REPO], {
    env: { NODE: node },
  });

  it('install.sh --render-units fills in the install dir and node', () => {
    expect(render.output).toContain('rendered');
    expect(render.status).toBe(0);
    for (const { unit, command, log } of UNITS) {
      const text = readFileSync(join(rendered, unit), 'utf8');
      expect(text).not.toMatch(/@[A-Z_]+@/);
      expect(text).toContain(`ExecStart=${node} ${REPO}/bin/quantum.js ${command}\n`);
      expect(text).toContain(`WorkingDirectory=${REPO}\n`);
      expect(text).toContain(`StandardOutput=append:/var/log/quantum/${log}.log\n`);
      expect(text).toContain(`StandardError=append:/var/log/quantum/${log}.log\n`);
    }
  });

  it('have the ordering, user, restart, stop and hardening settings', () => {
    const unit = (name: string) => readFileSync(join(rendered, name), 'utf8');
    for (const { unit: name } of UNITS) {
      const text = unit(name);
      expect(text).toMatch(/^Wants=.*\bnetwork-online\.target\b.*\bredis-server\.service\b/m);
      expect(text).toMatch(/^After=.*\bnetwork-online\.target\b.*\bredis-server\.service\b/m);
      for (const line of [
        'User=quantum',
        'Group=quantum',
        'EnvironmentFile=-/etc/quantum/quantum.env',
        'Restart=on-failure',
        'RestartSec=5',
        'StartLimitIntervalSec=300',
        'StartLimitBurst=10',
        'KillSignal=SIGTERM',
        'TimeoutStopSec=30',
        'NoNewPrivileges=yes',
        'ProtectSystem=full',
        'ProtectHome=yes',
        'PrivateTmp=yes',
        'ReadWritePaths=/var/log/quantum',
        'WantedBy=multi-user.target',
      ]) {
        expect(text, `${name}: ${line}`).toMatch(new RegExp(`^${line.replace(/[.]/g, '\\.')}$`, 'm'));
      }
    }
    // Execution after risk, monitor after execution: ordering only, no Requires=.
    expect(unit('quantum-execution.service')).toMatch(/^After=.*\bquantum-risk-safety\.service\b/m);
    expect(unit('quantum-position-monitor.service')).toMatch(/^After=.*\bquantum-execution\.service\b/m);
    expect(unit('quantum-risk-safety.service')).not.toMatch(/^After=.*quantum-/m);
    for (const { unit: name } of UNITS) expect(unit(name)).not.toMatch(/^(Requires|BindsTo|Requisite)=/m);
  });

  const analyze = !skipWithoutTool('systemd-analyze', 'apt-get install -y systemd');

  it.skipIf(!analyze)('systemd-analyze verify accepts the rendered units without a single warning', () => {
    requireTool('systemd-analyze', 'apt-get install -y systemd');
    // ExecStart points at this node and this repository's bin/quantum.js, which exist, so
    // verify checks the real command. Accepted harmless warnings: none (it prints nothing).
    const result = run('systemd-analyze', ['verify', ...UNITS.map(({ unit }) => join(rendered, unit))]);
    expect(result.output.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it.skipIf(!analyze)('systemd-analyze verify would catch a broken unit (the check is not vacuous)', () => {
    const broken = tempDir('broken');
    const good = readFileSync(join(rendered, 'quantum-risk-safety.service'), 'utf8');
    writeFileSync(join(broken, 'quantum-risk-safety.service'), good.replace(`ExecStart=${node}`, 'ExecStart=/nonexistent/node'));
    const missing = run('systemd-analyze', ['verify', join(broken, 'quantum-risk-safety.service')]);
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('/nonexistent/node');
    writeFileSync(join(broken, 'quantum-risk-safety.service'), good.replace('KillSignal=', 'KilSignal='));
    const typo = run('systemd-analyze', ['verify', join(broken, 'quantum-risk-safety.service')]);
    expect(typo.output).toContain("Unknown key 'KilSignal'");
  });
});

describe('install.sh against a temporary root', () => {
  const install = (root: string, src: string, env: Record<string, string>, args: string[] = []) =>
    run('bash', [join(src, 'deploy', 'install.sh'), ...args], { env: { ...env, QT_ROOT: root } });

  it('--help explains the options and exits 0', () => {
    const result = run('bash', [join(DEPLOY, 'install.sh'), '--help']);
    expect(result.status).toBe(0);
    for (const word of ['--dir', '--no-start', 'QT_ROOT', 'SYSTEMCTL', 'CURL', 'NPM']) expect(result.stdout).toContain(word);
    expect(run('bash', [join(DEPLOY, 'install.sh'), '--bogus']).status).toBe(2);
  });

  it('installs, writes config, units and logs, starts risk -> execution -> monitor checking each, and is idempotent', () => {
    const root = tempDir('root');
    const src = fakeRepo(join(tempDir('src'), 'repo'));
    const stub = stubs();
    const first = install(root, src, stub.env);
    expect(first.status, first.output).toBe(0);
    expect(lastLine(first.stdout)).toContain('DEPLOYMENT SUCCESSFUL');
    for (const { unit, port } of UNITS) expect(first.stdout).toContain(`✅ ${unit}: active, http://127.0.0.1:${port}/health 200`);

    // The application: copied without node_modules/.git, built, pruned, marked.
    const app = join(root, 'opt/quantum-trader');
    expect(existsSync(join(app, 'bin/quantum.js'))).toBe(true);
    expect(existsSync(join(app, 'dist/cli/main.js'))).toBe(true);
    expect(existsSync(join(app, 'node_modules/left-behind'))).toBe(false);
    expect(existsSync(join(app, '.git'))).toBe(false);
    expect(existsSync(join(app, '.quantum-installed'))).toBe(true);
    expect(existsSync(join(root, 'opt/quantum-trader.new'))).toBe(false);

    // Log folder and files.
    expect(statSync(join(root, 'var/log/quantum')).isDirectory()).toBe(true);
    for (const { log } of UNITS) expect(existsSync(join(root, `var/log/quantum/${log}.log`))).toBe(true);

    // Environment file: written, private, with a generated token.
    const envPath = join(root, 'etc/quantum/quantum.env');
    const env = readFileSync(envPath, 'utf8');
    expect(env).toMatch(/^REDIS_URL=redis:\/\/127\.0\.0\.1:6379$/m);
    expect(env).toMatch(/^QT_HOST=127\.0\.0\.1$/m);
    expect(env).toMatch(/^QT_API_TOKEN=[0-9a-f]{48}$/m);
    expect(env).toMatch(/^QT_RISK_PORT=8003$/m);
    expect(statSync(envPath).mode & 0o777).toBe(0o640);

    // Units, rendered with the real (un-prefixed) paths.
    for (const { unit, command, log } of UNITS) {
      const text = readFileSync(join(root, 'etc/systemd/system', unit), 'utf8');
      expect(text).toContain('WorkingDirectory=/opt/quantum-trader\n');
      expect(text).toMatch(new RegExp(`^ExecStart=/\\S+ /opt/quantum-trader/bin/quantum\\.js ${command}$`, 'm'));
      expect(text).toContain(`StandardOutput=append:/var/log/quantum/${log}.log\n`);
      expect(text).not.toContain(root);
    }
    expect(readFileSync(join(root, 'usr/local/bin/quantum'), 'utf8')).toContain('/opt/quantum-trader/bin/quantum.js "$@"');
    expect(readFileSync(join(root, 'etc/logrotate.d/quantum-trader'), 'utf8')).toContain('copytruncate');

    // The commands, in order.
    const lines = calls(stub.log);
    const npmCi = indexOfCall(lines, 'npm ci');
    expect(lines[npmCi]).toContain(`(cwd=${root}/opt/quantum-trader.new)`);
    expect(indexOfCall(lines, 'npm prune --omit=dev')).toBeGreaterThan(npmCi);
    if (spawnSync('id', ['-u', 'quantum']).status === 0) {
      expect(lines.some((line) => line.startsWith('useradd'))).toBe(false); // this machine has the user already
    } else {
      expect(lines).toContainEqual(expect.stringMatching(/^useradd --system .*quantum$/));
    }
    expect(lines).toContain(`chown -R quantum:quantum ${root}/var/log/quantum`);
    const reload = indexOfCall(lines, 'systemctl daemon-reload');
    const enable = indexOfCall(lines, `systemctl enable ${UNITS.map((u) => u.unit).join(' ')}`);
    expect(enable).toBeGreaterThan(reload);
    let previous = enable;
    for (const { unit, port } of UNITS) {
      const start = indexOfCall(lines, `systemctl start ${unit}`);
      const health = indexOfCall(lines, `curl http://127.0.0.1:${port}/health`);
      const active = indexOfCall(lines, `systemctl is-active --quiet ${unit}`);
      expect(start).toBeGreaterThan(previous);
      expect(health).toBeGreaterThan(start);
      expect(active).toBeGreaterThan(health);
      previous = active;
    }
    expect(lines.some((line) => line.startsWith('systemctl stop'))).toBe(false);

    // Second run: an upgrade. The operator's env file is kept byte for byte.
    appendFileSync(envPath, '# edited by the operator\n');
    const edited = readFileSync(envPath, 'utf8');
    writeFileSync(stub.log, '');
    const second = install(root, src, stub.env);
    expect(second.status, second.output).toBe(0);
    expect(lastLine(second.stdout)).toContain('DEPLOYMENT SUCCESSFUL');
    expect(second.stdout).toContain('/etc/quantum/quantum.env exists: kept as it is');
    expect(readFileSync(envPath, 'utf8')).toBe(edited);
    const again = calls(stub.log);
    // Stopped monitor -> execution -> risk before the swap, started risk -> execution -> monitor after.
    const stops = UNITS.map(({ unit }) => indexOfCall(again, `systemctl stop ${unit}`));
    expect([...stops].sort((a, b) => b - a)).toEqual(stops);
    expect(indexOfCall(again, 'systemctl start quantum-risk-safety.service')).toBeGreaterThan(Math.max(...stops));
    expect(existsSync(join(app, 'dist/cli/main.js'))).toBe(true);
    expect(readFileSync(join(root, 'etc/systemd/system/quantum-execution.service'), 'utf8')).toContain(
      'ExecStart=',
    );
    expect(existsSync(join(root, 'opt/quantum-trader.new'))).toBe(false);
    expect(readdirSync(join(root, 'opt'))).toEqual(['quantum-trader']); // no .old copy left behind

    // uninstall: units and app gone, config and logs kept; --purge removes those too.
    writeFileSync(stub.log, '');
    const removed = run('bash', [join(src, 'deploy/uninstall.sh')], { env: { ...stub.env, QT_ROOT: root } });
    expect(removed.status, removed.output).toBe(0);
    for (const { unit } of UNITS) expect(existsSync(join(root, 'etc/systemd/system', unit))).toBe(false);
    expect(existsSync(app)).toBe(false);
    expect(existsSync(join(root, 'usr/local/bin/quantum'))).toBe(false);
    expect(readFileSync(envPath, 'utf8')).toBe(edited);
    expect(existsSync(join(root, 'var/log/quantum/execution.log'))).toBe(true);
    const off = calls(stub.log);
    expect(indexOfCall(off, 'systemctl stop quantum-position-monitor.service')).toBeLessThan(
      indexOfCall(off, 'systemctl stop quantum-risk-safety.service'),
    );
    indexOfCall(off, 'systemctl disable');
    const purged = run('bash', [join(src, 'deploy/uninstall.sh'), '--purge'], { env: { ...stub.env, QT_ROOT: root } });
    expect(purged.status, purged.output).toBe(0);
    expect(existsSync(join(root, 'etc/quantum'))).toBe(false);
    expect(existsSync(join(root, 'var/log/quantum'))).toBe(false);
    expect(calls(stub.log)).toContain('userdel quantum');
  });

  it('fails, naming the execution service and its log, when execution never answers /health', () => {
    const root = tempDir('root-fail');
    const src = fakeRepo(join(tempDir('src'), 'repo'));
    const stub = stubs();
    mkdirSync(join(root, 'var/log/quantum'), { recursive: true });
    writeFileSync(join(root, 'var/log/quantum/execution.log'), '{"level":50,"msg":"cannot listen on 8002"}\n');
    const result = install(root, src, { ...stub.env, STUB_CURL_FAIL_PORT: '8002' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).not.toContain('DEPLOYMENT SUCCESSFUL');
    expect(result.stdout).toContain('✅ quantum-risk-safety.service');
    expect(result.stdout).toContain('❌ quantum-execution.service: http://127.0.0.1:8002/health did not answer');
    expect(result.stdout).toContain('quantum-position-monitor.service: not started');
    expect(lastLine(result.stdout)).toContain('/var/log/quantum/execution.log');
    expect(result.stdout).toContain('DEPLOYMENT FAILED: quantum-execution.service');
    expect(result.stdout).toContain('cannot listen on 8002'); // the log's tail is shown
    const lines = calls(stub.log);
    expect(lines.filter((line) => line === 'curl http://127.0.0.1:8002/health').length).toBeGreaterThan(1); // retried
    expect(lines).not.toContain('systemctl start quantum-position-monitor.service');
  });

  it.skipIf(skipWithoutTool('curl', 'apt-get install -y curl'))('checks /health with the real curl, on the ports named in the env file; explains a 503', async () => {
    // Three stand-in services on free ports; "execution" answers like a service whose bus is down.
    let executionStatus = 200;
    const servers: Server[] = [];
    const ports: number[] = [];
    const requests: string[] = [];
    for (const name of ['risk', 'execution', 'monitor']) {
      const server = createServer((req, res) => {
        requests.push(`${name} ${req.method} ${req.url}`);
        res.statusCode = req.url !== '/health' ? 404 : name === 'execution' ? executionStatus : 200;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ status: res.statusCode === 200 ? 'ok' : 'degraded' }));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      ports.push((server.address() as AddressInfo).port);
    }
    try {
      const root = tempDir('root-curl');
      const src = fakeRepo(join(tempDir('src'), 'repo'));
      const stub = stubs();
      const { CURL: _stubCurl, ...withoutCurl } = stub.env;
      const env = { ...withoutCurl, QT_ROOT: root };
      // An operator's env file with non-default ports: the installer must check those.
      mkdirSync(join(root, 'etc/quantum'), { recursive: true });
      writeFileSync(
        join(root, 'etc/quantum/quantum.env'),
        `REDIS_URL=redis://10.0.0.5:6379\nQT_HOST=0.0.0.0\nQT_RISK_PORT=${ports[0]}\nQT_EXECUTION_PORT="${ports[1]}"\nQT_MONITOR_PORT=${ports[2]}\n`,
      );
      const ok = await runAsync('bash', [join(src, 'deploy/install.sh')], env);
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      expect(lastLine(ok.stdout)).toContain('DEPLOYMENT SUCCESSFUL');
      expect(ok.stdout).toContain(`✅ quantum-execution.service: active, http://127.0.0.1:${ports[1]}/health 200`);
      expect(requests).toEqual(['risk GET /health', 'execution GET /health', 'monitor GET /health']);

      executionStatus = 503;
      const bad = await runAsync('bash', [join(src, 'deploy/install.sh')], env);
      expect(bad.status).toBe(1);
      expect(bad.stdout).toContain(
        `❌ quantum-execution.service: http://127.0.0.1:${ports[1]}/health answered 503: the service runs but its bus is down (is Redis up at redis://10.0.0.5:6379?)`,
      );
      expect(lastLine(bad.stdout)).toContain('/var/log/quantum/execution.log');
    } finally {
      for (const server of servers) server.close();
    }
  });

  it('--dir and --no-start: units name the chosen dir, nothing is started; the CLI wrapper reads the env file', () => {
    const root = tempDir('root-dir');
    const src = fakeRepo(join(tempDir('src'), 'repo'));
    const stub = stubs();
    // A node stand-in: reports version 20 to the installer, prints its arguments and env otherwise.
    const node = join(stub.dir, 'node');
    writeScript(
      node,
      'if [ "$1" = "-p" ]; then echo 20.11.1; exit 0; fi\necho "args: $*"; echo "REDIS_URL=$REDIS_URL"; echo "QT_RISK_PORT=$QT_RISK_PORT"',
    );
    const result = install(root, src, { ...stub.env, NODE: node }, ['--dir', '/srv/quantum', '--no-start']);
    expect(result.status, result.output).toBe(0);
    expect(lastLine(result.stdout)).toBe('INSTALLED (not started)');
    for (const { unit, command } of UNITS) {
      const text = readFileSync(join(root, 'etc/systemd/system', unit), 'utf8');
      expect(text).toContain(`ExecStart=${node} /srv/quantum/bin/quantum.js ${command}\n`);
      expect(text).toContain('WorkingDirectory=/srv/quantum\n');
    }
    const lines = calls(stub.log);
    indexOfCall(lines, 'systemctl enable');
    expect(lines.filter((line) => / (start|restart|stop) /.test(`${line} `) || line.startsWith('curl'))).toEqual([]);

    const wrapper = join(root, 'usr/local/bin/quantum');
    const envFile = join(root, 'etc/quantum/quantum.env');
    const out = spawnSync(wrapper, ['validate', '--json'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', QT_ENV_FILE: envFile, QT_RISK_PORT: '9100' },
      encoding: 'utf8',
    });
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toContain('args: /srv/quantum/bin/quantum.js validate --json');
    expect(out.stdout).toContain('REDIS_URL=redis://127.0.0.1:6379'); // from the file
    expect(out.stdout).toContain('QT_RISK_PORT=9100'); // the caller's value wins
  });

  it('builds in place when --dir is the repository itself, and uninstall then leaves it alone', () => {
    const root = tempDir('root-inplace');
    const src = fakeRepo(join(root, 'srv/repo'));
    const stub = stubs();
    const result = install(root, src, stub.env, ['--dir', '/srv/repo', '--no-start']);
    expect(result.status, result.output).toBe(0);
    expect(result.stdout).toContain('building in place');
    expect(calls(stub.log)).toContain(`npm ci --no-audit --no-fund (cwd=${src})`);
    expect(existsSync(join(src, '.quantum-installed'))).toBe(false);
    const removed = run('bash', [join(src, 'deploy/uninstall.sh'), '--dir', '/srv/repo'], { env: { ...stub.env, QT_ROOT: root } });
    expect(removed.status, removed.output).toBe(0);
    expect(existsSync(join(src, 'package.json'))).toBe(true);
  });

  it('refuses node < 20, a --dir the units would hide, and a failed build, before touching the system', () => {
    const src = fakeRepo(join(tempDir('src'), 'repo'));
    const stub = stubs();
    const oldNode = join(stub.dir, 'old-node');
    writeScript(oldNode, 'echo 18.19.0');
    const root = tempDir('root-refuse');
    const old = install(root, src, { ...stub.env, NODE: oldNode });
    expect(old.status).toBe(1);
    expect(old.stderr).toContain('node 18.19.0');
    expect(old.stderr).toContain('>= 20');

    const home = install(root, src, stub.env, ['--dir', '/home/me/qt']);
    expect(home.status).toBe(1);
    expect(home.stderr).toContain('ProtectHome');

    writeScript(join(stub.dir, 'npm'), 'if [ "$1" = "--version" ]; then echo 10.8.2; exit 0; fi\nexit 1');
    const broken = install(root, src, stub.env);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toContain('npm ci failed');
    expect(existsSync(join(root, 'opt/quantum-trader.new'))).toBe(false);
    expect(existsSync(join(root, 'etc/systemd/system'))).toBe(false);
    expect(calls(stub.log)).toEqual([]);
  });
});

/** `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$`, as Compose interpolates them. */
function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}/g, (match, name?: string, colon?: string, fallback?: string) => {
    if (match === '$$') return '$';
    const value = env[name!];
    if (fallback === undefined) return value ?? '';
    return value === undefined || (colon === ':' && value === '') ? fallback : value;
  });
}

/** Interpolates every string value of a parsed document (Compose interpolates values, after parsing). */
function interpolateValues(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateValues(v, env));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateValues(v, env)]));
  }
  return value;
}

/** The compose file as Compose reads it: YAML with merge keys, values interpolated, validated against the spec's schema. */
function loadCompose(text: string, env: Record<string, string | undefined> = {}) {
  const doc = interpolateValues(parseYaml(text, { merge: true }), env);
  const schema = JSON.parse(readFileSync(join(REPO, 'test', 'fixtures', 'compose-spec.reduced.json'), 'utf8')) as object;
  const validate = new Ajv({ allErrors: true, allowUnionTypes: true }).compile(schema);
  const valid = validate(doc);
  const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  return { doc: doc as { services: Record<string, Record<string, unknown>>; volumes?: Record<string, unknown> }, valid, errors };
}

describe('Docker', () => {
  const composeText = () => readFileSync(join(DEPLOY, 'docker-compose.core.yml'), 'utf8');

  it('deploy/docker-compose.core.yml is valid against the Compose Specification schema (no docker-compose needed)', () => {
    const { doc, valid, errors } = loadCompose(composeText());
    expect(errors).toEqual([]);
    expect(valid).toBe(true);
    // Without a profile, the core services; prometheus and grafana only in the observability profile.
    const inProfile = (name: string) => (doc.services[name]!.profiles as string[] | undefined) ?? [];
    expect(Object.keys(doc.services).filter((name) => inProfile(name).length === 0).sort()).toEqual(['execution', 'monitor', 'redis', 'risk']);
    expect(Object.keys(doc.services).filter((name) => inProfile(name).includes('observability')).sort()).toEqual(['grafana', 'prometheus']);
    expect(doc.volumes).toHaveProperty('redis-data');
    const redis = doc.services.redis!;
    expect(redis.image).toBe('redis:7-alpine');
    expect(redis.healthcheck).toMatchObject({ test: ['CMD', 'redis-cli', 'ping'] });
    expect(redis.ports).toEqual(['127.0.0.1:6379:6379']);
    expect(loadCompose(composeText(), { REDIS_HOST_PORT: '6380' }).doc.services.redis!.ports).toEqual(['127.0.0.1:6380:6379']);
    const order: Record<string, string | undefined> = { risk: undefined, execution: 'risk', monitor: 'execution' };
    for (const { command, port } of UNITS) {
      const service = doc.services[command]!;
      expect(service.command).toEqual([command]);
      expect(service.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      expect(service.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', QT_HOST: '0.0.0.0', QT_API_TOKEN: '' });
      expect(service.ports).toEqual([`127.0.0.1:${port}:${port}`]);
      const dependsOn = service.depends_on as Record<string, { condition: string }>;
      expect(dependsOn.redis).toEqual({ condition: 'service_healthy' });
      const before = order[command];
      if (before) expect(dependsOn[before]).toEqual({ condition: 'service_started' });
      expect((service.healthcheck as { test: string[] }).test).toEqual([
        'CMD',
        'node',
        '-e',
        `fetch('http://127.0.0.1:${port}/health').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))`,
      ]);
      expect(service.restart).toBe('unless-stopped');
    }
  });

  it('the schema check is not vacuous: it refuses an unknown key, a bad depends_on condition and a bad healthcheck', () => {
    const text = composeText();
    const typo = loadCompose(text.replace('    restart: unless-stopped\n    healthcheck:', '    restrat: unless-stopped\n    healthcheck:'));
    expect(typo.valid).toBe(false);
    expect(typo.errors.join('\n')).toContain('restrat');
    const condition = loadCompose(text.replace('condition: service_healthy', 'condition: healthy'));
    expect(condition.valid).toBe(false);
    expect(condition.errors.join('\n')).toMatch(/depends_on/);
    const healthcheck = loadCompose(text.replace('      retries: 10\n', '      retries: 10\n      every: 5s\n'));
    expect(healthcheck.valid).toBe(false);
    expect(healthcheck.errors.join('\n')).toContain('every');
  });

  it.skipIf(skipWithoutTool('docker-compose', 'apt-get install -y docker-compose'))('docker-compose config accepts deploy/docker-compose.core.yml', () => {
    requireTool('docker-compose', 'apt-get install -y docker-compose');
    const result = run('docker-compose', ['-f', 'deploy/docker-compose.core.yml', 'config'], {
      env: { REDIS_HOST_PORT: '', QT_API_TOKEN: '' },
    });
    expect(result.status, result.output).toBe(0);
    const services = run('docker-compose', ['-f', 'deploy/docker-compose.core.yml', 'config', '--services']);
    // prometheus and grafana are in the observability profile (test/observability.test.ts checks them).
    expect(services.stdout.trim().split('\n').sort()).toEqual(['execution', 'grafana', 'monitor', 'prometheus', 'redis', 'risk']);

    // The resolved file, read with the same YAML parser as the schema check.
    interface ComposeService {
      image?: string;
      command?: string[];
      build?: { context: string; dockerfile: string };
      environment?: Record<string, string>;
      ports?: string[];
      depends_on?: Record<string, { condition: string }>;
      healthcheck?: { test: string[] };
      restart?: string;
    }
    const compose = parseYaml(result.stdout) as { services: Record<string, ComposeService> };
    const redis = compose.services.redis!;
    expect(redis.image).toBe('redis:7-alpine');
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(redis.ports).toEqual(['127.0.0.1:6379:6379/tcp']);
    const order: Record<string, string | undefined> = { risk: undefined, execution: 'risk', monitor: 'execution' };
    for (const { command, port } of UNITS) {
      const service = compose.services[command]!;
      expect(service.command).toEqual([command]);
      expect(service.build).toEqual({ context: REPO, dockerfile: 'deploy/Dockerfile' });
      expect(service.environment).toMatchObject({ REDIS_URL: 'redis://redis:6379', QT_HOST: '0.0.0.0' });
      expect(service.ports).toEqual([`127.0.0.1:${port}:${port}/tcp`]);
      expect(service.depends_on?.redis).toEqual({ condition: 'service_healthy' });
      const before = order[command];
      if (before) expect(service.depends_on?.[before]).toEqual({ condition: 'service_started' });
      expect(service.healthcheck?.test).toEqual([
        'CMD',
        'node',
        '-e',
        `fetch('http://127.0.0.1:${port}/health').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))`,
      ]);
      expect(service.restart).toBe('unless-stopped');
    }
  });

  it('the Dockerfile is well formed: two node:20-bookworm-slim stages, non-root, ports, entrypoint', () => {
    const text = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
    // Join continuation lines, drop comments and blanks, then every line is an instruction.
    const instructions = text
      .split('\n')
      .filter((line) => !/^\s*#/.test(line))
      .join('\n')
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '');
    const known = /^(FROM|RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|ONBUILD|STOPSIGNAL|HEALTHCHECK|SHELL)\s/;
    for (const line of instructions) expect(line, 'not a Dockerfile instruction').toMatch(known);
    const from = instructions.filter((line) => line.startsWith('FROM '));
    expect(from).toEqual(['FROM node:20-bookworm-slim AS build', 'FROM node:20-bookworm-slim AS runtime']);
    const runtime = instructions.slice(instructions.indexOf('FROM node:20-bookworm-slim AS runtime'));
    expect(runtime.some((line) => line.startsWith('COPY --from=build'))).toBe(true);
    const user = runtime.filter((line) => line.startsWith('USER '));
    expect(user.length).toBe(1);
    expect(user[0]).not.toMatch(/^USER (root|0)\b/);
    expect(runtime).toContain('EXPOSE 8002 8003 8004 8000');
    expect(runtime).toContain('ENTRYPOINT ["node", "bin/quantum.js"]');
    expect(JSON.parse(runtime.find((line) => line.startsWith('ENTRYPOINT '))!.slice('ENTRYPOINT '.length))).toEqual([
      'node',
      'bin/quantum.js',
    ]);
    expect(runtime.some((line) => line.startsWith('CMD ['))).toBe(true);
    // What the build stage relies on exists in package.json.
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string>; files: string[] };
    expect(pkg.scripts.build).toBeTruthy();
    expect(pkg.files).toEqual(expect.arrayContaining(['bin', 'dist']));
  });

  it('the build context ignores node_modules and dist: /.dockerignore is deploy/dockerignore', () => {
    const wanted = readFileSync(join(DEPLOY, 'dockerignore'), 'utf8');
    for (const entry of ['node_modules', 'dist', '.git']) expect(wanted.split('\n')).toContain(entry);
    expect(existsSync(join(REPO, '.dockerignore')), 'copy deploy/dockerignore to /.dockerignore').toBe(true);
    expect(readFileSync(join(REPO, '.dockerignore'), 'utf8')).toBe(wanted);
  });
});
