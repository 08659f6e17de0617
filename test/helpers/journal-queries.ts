/**
 * The example SQL of docs/journal.md, read from the document itself so the test runs
 * what the reader copies. Each ```sql block starts with `-- name: NAME (DIALECTS)`,
 * DIALECTS being `sqlite`, `postgres` or `sqlite, postgres`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DOC = fileURLToPath(new URL('../../docs/journal.md', import.meta.url));

export type QueryDialect = 'sqlite' | 'postgres';

function load(): Record<QueryDialect, Record<string, string>> {
  const text = readFileSync(DOC, 'utf8');
  const out: Record<QueryDialect, Record<string, string>> = { sqlite: {}, postgres: {} };
  for (const match of text.matchAll(/```sql\n([\s\S]*?)```/g)) {
    const body = match[1]!;
    const head = /^-- name: (\w+) \(([a-z, ]+)\)\n/.exec(body);
    if (!head) continue;
    for (const dialect of head[2]!.split(',').map((d) => d.trim()) as QueryDialect[]) out[dialect][head[1]!] = body.trim();
  }
  return out;
}

export const JOURNAL_EXAMPLE_QUERIES = load();
