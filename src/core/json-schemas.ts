/**
 * JSON Schemas (draft 2020-12) of every message, generated from the zod schemas in
 * messages.ts. `npm run schemas` writes them to docs/schemas/; a test fails when the
 * files there are stale.
 */
import { z } from 'zod';
import { NAMED_SCHEMAS, TOPIC_SCHEMAS } from './messages.js';

const BASE_ID = 'https://quantum-trader.dev/schemas/';

/** File name → schema object, for the named message types and for each topic's payload. */
export function messageJsonSchemas(): Record<string, Record<string, unknown>> {
  const files: Record<string, Record<string, unknown>> = {};
  for (const [name, schema] of Object.entries(NAMED_SCHEMAS)) {
    // Producers write inputs; the loop's own messages are read as outputs.
    const io = name === 'TradeSignalInput' ? 'input' : 'output';
    files[`${name}.json`] = {
      ...(z.toJSONSchema(schema, { io }) as Record<string, unknown>),
      $id: `${BASE_ID}${name}.json`,
      title: name,
    };
  }
  for (const [topic, schema] of Object.entries(TOPIC_SCHEMAS)) {
    const name = Object.entries(NAMED_SCHEMAS).find(([, s]) => s === schema)?.[0];
    files[`topic.${topic}.json`] = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `${BASE_ID}topic.${topic}.json`,
      title: `${topic} payload`,
      description: `The JSON held in the "payload" field of each ${topic} stream entry.`,
      $ref: `${name}.json`,
    };
  }
  return files;
}

export function renderJsonSchemaFiles(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(messageJsonSchemas()).map(([file, schema]) => [file, `${JSON.stringify(schema, null, 2)}\n`]),
  );
}
