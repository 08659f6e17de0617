#!/usr/bin/env node
// The `quantum` command. The TypeScript is compiled to dist/ by `npm install` (prepare).
import { SERVICE_COMMANDS, commandOf, tuneServiceHeap } from '../dist/platform/heap.js';

// A service process gets its V8 heap settings before the rest is loaded (src/platform/heap.ts).
if (SERVICE_COMMANDS.has(commandOf(process.argv) ?? '')) {
  try {
    tuneServiceHeap();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  }
}
const { main } = await import('../dist/cli/main.js');

main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
