/**
 * deploy/quantum-journal.service: rendered by install.sh like the other units, accepted
 * by `systemd-analyze verify`, installed by install.sh but not enabled (the operator
 * chooses journal.url first), and removed by uninstall.sh.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/processes.js';

const UNIT = 'quantum-journal.service';
const scratch: string[] = [];
function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `qt-journal-deploy-${name}-`));
  scratch.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(command, args, { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, output: `${result.stdout}${result.stderr}`, stdout: result.stdout };
}

const hasSystemdAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;

describe('deploy/quantum-journal.service', () => {
  const rendered = tempDir('units');
  const render = run('bash', [join(REPO, 'deploy/install.sh'), '--render-units', rendered, '--dir', REPO], { NODE: process.execPath });

  it('is rendered by install.sh --render-units with the journal command, its log and its state folder', () => {
    expect(render.status, render.output).toBe(0);
    const text = readFileSync(join(rendered, UNIT), 'utf8');
    expect(text).not.toMatch(/@[A-Z_]+@/);
    expect(text).toContain(`ExecStart=${process.execPath} ${REPO}/bin/quantum.js journal\n`);
    expect(text).toContain('StandardOutput=append:/var/log/quantum/journal.log\n');
    expect(text).toContain('Environment=QT_JOURNAL_URL=sqlite:/var/lib/quantum/journal.sqlite\n');
    expect(text).toContain('StateDirectory=quantum\n');
    expect(text).toContain('RestartPreventExitStatus=2\n');
    // The environment file comes after the default, so an operator's QT_JOURNAL_URL wins.
    expect(text.indexOf('EnvironmentFile=')).toBeGreaterThan(text.indexOf('Environment=QT_JOURNAL_URL'));
  });

  it('passes systemd-analyze verify without a warning', () => {
    if (!hasSystemdAnalyze) {
      if (process.env.CI) throw new Error('systemd-analyze is not installed (apt-get install -y systemd)');
      console.warn('journal-deploy.test: systemd-analyze is NOT installed: quantum-journal.service was NOT verified');
      return;
    }
    const result = run('systemd-analyze', ['verify', join(rendered, UNIT)]);
    expect(result.output.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it('install.sh installs it without enabling or starting it; uninstall.sh removes it', () => {
    const root = tempDir('root');
    const src = join(tempDir('src'), 'repo');
    mkdirSync(src, { recursive: true });
    for (const entry of ['deploy', 'bin', 'docs', 'package.json', 'package-lock.json']) cpSync(join(REPO, entry), join(src, entry), { recursive: true });
    const stubs = tempDir('stubs');
    const log = join(stubs, 'calls.log');
    writeFileSync(log, '');
    const script = (name: string, body: string) => {
      writeFileSync(join(stubs, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(stubs, name), 0o755);
    };
    for (const name of ['systemctl', 'useradd', 'chown', 'userdel']) script(name, `echo "${name} $*" >> "$STUB_LOG"`);
    script('npm', ['if [ "$1" = "--version" ]; then echo 10.8.2; exit 0; fi', 'if [ "$1" = "ci" ]; then mkdir -p dist/cli && echo "// built" > dist/cli/main.js; fi'].join('\n'));
    script('curl', 'printf 200');
    const env = {
      STUB_LOG: log, QT_ROOT: root, SYSTEMCTL: join(stubs, 'systemctl'), USERADD: join(stubs, 'useradd'), CHOWN: join(stubs, 'chown'),
      CURL: join(stubs, 'curl'), NPM: join(stubs, 'npm'), USERDEL: join(stubs, 'userdel'), QT_HEALTH_TIMEOUT: '1', QT_HEALTH_INTERVAL: '0.1',
    };
    const installed = run('bash', [join(src, 'deploy/install.sh')], env);
    expect(installed.status, installed.output).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/system', UNIT))).toBe(true);
    expect(existsSync(join(root, 'var/log/quantum/journal.log'))).toBe(true);
    expect(readFileSync(join(root, 'etc/quantum/quantum.env'), 'utf8')).toMatch(/^QT_JOURNAL_URL=sqlite:\/var\/lib\/quantum\/journal\.sqlite$/m);
    expect(installed.stdout).toContain(`systemctl enable --now ${UNIT}`);
    const calls = readFileSync(log, 'utf8').split('\n');
    expect(calls.filter((line) => line.includes(UNIT))).toEqual([]);

    writeFileSync(log, '');
    const removed = run('bash', [join(src, 'deploy/uninstall.sh')], env);
    expect(removed.status, removed.output).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/system', UNIT))).toBe(false);
    expect(readFileSync(log, 'utf8')).toContain(`systemctl stop ${UNIT}`);
  });
});
