/** The `journal` config section: defaults, environment, and bad values naming their key. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { parseJournalUrl, redactJournalUrl } from '../src/services/journal/store.js';

const load = (env: Record<string, string>, file?: Record<string, unknown>) =>
  loadConfig({ env, cwd: '/nonexistent', overrides: file ? flatten(file) : {} });

function flatten(value: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, `${prefix}${key}.`));
    else out[`${prefix}${key}`] = v;
  }
  return out;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('journal config', () => {
  it('defaults: no url (quantum up then uses sqlite:./quantum-journal.sqlite), schema quantum', () => {
    expect(load({}).journal).toEqual({ schema: 'quantum' });
  });

  it('reads QT_JOURNAL_URL and QT_JOURNAL_SCHEMA', () => {
    const config = load({ QT_JOURNAL_URL: 'postgres://u:p@db:5432/trading', QT_JOURNAL_SCHEMA: 'acct7' });
    expect(config.journal).toEqual({ url: 'postgres://u:p@db:5432/trading', schema: 'acct7' });
  });

  it('a bad url or schema exits 2 naming journal.url / journal.schema', () => {
    expect(problems(() => load({ QT_JOURNAL_URL: 'mysql://x/y' }))).toEqual([
      'journal.url (from QT_JOURNAL_URL): must be sqlite:PATH or a postgres:// URL',
    ]);
    expect(problems(() => load({}, { journal: { url: 'sqlite:' } }))[0]).toMatch(/^journal\.url: /);
    expect(problems(() => load({}, { journal: { schema: 'Drop Table' } }))[0]).toMatch(/^journal\.schema: must be a lower-case SQL name/);
    expect(new ConfigError(['x']).exitCode).toBe(2);
  });

  it('parses the two URL forms and hides passwords', () => {
    expect(parseJournalUrl('sqlite:./quantum-journal.sqlite')).toEqual({ kind: 'sqlite', path: './quantum-journal.sqlite' });
    expect(parseJournalUrl('sqlite:/var/lib/quantum/journal.sqlite')).toEqual({ kind: 'sqlite', path: '/var/lib/quantum/journal.sqlite' });
    expect(parseJournalUrl('sqlite:///var/lib/quantum/journal.sqlite')).toEqual({ kind: 'sqlite', path: '/var/lib/quantum/journal.sqlite' });
    expect(parseJournalUrl('postgresql://db/x')).toEqual({ kind: 'postgres', url: 'postgresql://db/x' });
    expect(parseJournalUrl('redis://x')).toBeNull();
    expect(redactJournalUrl('postgres://trader:s3cret@db:5432/x')).toBe('postgres://trader:***@db:5432/x');
  });
});
