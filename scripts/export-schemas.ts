/** Writes docs/schemas/*.json from src/core/messages.ts (`npm run schemas`). */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderJsonSchemaFiles } from '../src/core/json-schemas.js';

const dir = join(import.meta.dirname, '..', 'docs', 'schemas');
mkdirSync(dir, { recursive: true });
const files = renderJsonSchemaFiles();
for (const old of readdirSync(dir)) if (old.endsWith('.json') && !(old in files)) rmSync(join(dir, old));
for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
console.log(`wrote ${Object.keys(files).length} schemas to ${dir}`);
