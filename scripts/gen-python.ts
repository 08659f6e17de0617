/**
 * Writes the Python client's typed messages (clients/python/quantum_trader/messages.py,
 * topics.py) from docs/schemas/*.json. Run by `npm run schemas` after export-schemas.ts;
 * test/python-client.test.ts fails when the committed files are stale.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inputsFromSchemaFiles, renderPythonClient, type JsonSchema } from './gen-python-render.js';

const root = join(import.meta.dirname, '..');
const schemaDir = join(root, 'docs', 'schemas');
const files: Record<string, JsonSchema> = {};
for (const file of readdirSync(schemaDir).filter((f) => f.endsWith('.json')).sort()) {
  files[file] = JSON.parse(readFileSync(join(schemaDir, file), 'utf8')) as JsonSchema;
}
const outputs = renderPythonClient(inputsFromSchemaFiles(files));
for (const [path, text] of Object.entries(outputs)) writeFileSync(join(root, 'clients', 'python', path), text);
console.log(`wrote ${Object.keys(outputs).map((p) => `clients/python/${p}`).join(', ')} from ${Object.keys(files).length} schemas`);
