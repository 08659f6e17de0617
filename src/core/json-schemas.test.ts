import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderJsonSchemaFiles } from './json-schemas.js';

const dir = join(import.meta.dirname, '..', '..', 'docs', 'schemas');

describe('docs/schemas', () => {
  it('matches the zod schemas (run `npm run schemas` when this fails)', () => {
    const expected = renderJsonSchemaFiles();
    const present = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
    expect(present).toEqual(Object.keys(expected).sort());
    for (const [file, text] of Object.entries(expected)) {
      expect(readFileSync(join(dir, file), 'utf8'), `docs/schemas/${file} is stale`).toBe(text);
    }
  });
});
