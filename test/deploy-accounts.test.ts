/**
 * deploy/: the per-account template units (quantum-risk-safety@.service, …) and the router's
 * unit, rendered by install.sh and checked with `systemd-analyze verify` as instances
 * (`…@alpha.service`), the way test/deploy.test.ts checks the single-account units.
 * systemd-analyze missing: skipped loudly outside CI, failed in CI.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
const TEMPLATES = [
  { unit: 'quantum-risk-safety@.service', command: 'risk', log: 'risk-safety', after: null },
  { unit: 'quantum-execution@.service', command: 'execution', log: 'execution', after: 'quantum-risk-safety@%i.service' },
  { unit: 'quantum-position-monitor@.service', command: 'monitor', log: 'position-monitor', after: 'quantum-execution@%i.service' },
] as const;

const dir = mkdtempSync(join(tmpdir(), 'qt-deploy-accounts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hasAnalyze = spawnSync('sh', ['-c', 'command -v systemd-analyze']).status === 0;
if (!hasAnalyze && !process.env.CI) console.warn('\n!! deploy-accounts.test: systemd-analyze is NOT installed: its check is SKIPPED, not passed (apt-get install -y systemd)\n');

function verify(paths: string[]): { status: number | null; output: string } {
  const result = spawnSync('systemd-analyze', ['verify', ...paths], { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
}

describe('per-account systemd template units', () => {
  const render = spawnSync('bash', [join(REPO, 'deploy', 'install.sh'), '--render-units', dir, '--dir', REPO], {
    encoding: 'utf8',
    env: { ...process.env, NODE: process.execPath },
  });
  const instance = (template: string) => join(dir, template.replace('@.service', '@alpha.service'));

  it('render with the account as the instance name', () => {
    expect(render.status, render.stderr).toBe(0);
    for (const { unit, command, log, after } of TEMPLATES) {
      const text = readFileSync(join(dir, unit), 'utf8');
      expect(text).not.toMatch(/@[A-Z_]+@/);
      expect(text).toContain(`ExecStart=${process.execPath} ${REPO}/bin/quantum.js ${command} --account %i\n`);
      expect(text).toContain(`StandardOutput=append:/var/log/quantum/${log}-%i.log\n`);
      expect(text).toMatch(/^RestartPreventExitStatus=2$/m);
      if (after) expect(text).toMatch(new RegExp(`^After=.*${after.replace(/[.%@]/g, '\\$&')}`, 'm'));
      copyFileSync(join(dir, unit), instance(unit));
    }
    expect(readFileSync(join(dir, 'quantum-route.service'), 'utf8')).toContain(`ExecStart=${process.execPath} ${REPO}/bin/quantum.js route\n`);
  });

  it.skipIf(!hasAnalyze && !process.env.CI)('systemd-analyze verify accepts the instances and the router unit without a warning', () => {
    const result = verify([...TEMPLATES.map(({ unit }) => instance(unit)), join(dir, 'quantum-route.service')]);
    expect(result.output.trim()).toBe('');
    expect(result.status).toBe(0);
  });

  it.skipIf(!hasAnalyze && !process.env.CI)('systemd-analyze verify would catch a broken instance (the check is not vacuous)', () => {
    const broken = join(dir, 'quantum-broken@alpha.service');
    writeFileSync(broken, readFileSync(instance(TEMPLATES[0].unit), 'utf8').replace('KillSignal=', 'KilSignal='));
    expect(verify([broken]).output).toContain("Unknown key 'KilSignal'");
  });
});
