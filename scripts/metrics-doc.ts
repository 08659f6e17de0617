/** Writes docs/metrics.md from the services' metric registries (`npm run metrics-doc`). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { metricDocs, renderMetricsDoc } from '../src/platform/metrics-doc.js';

const file = join(import.meta.dirname, '..', 'docs', 'metrics.md');
writeFileSync(file, await renderMetricsDoc());
console.log(`wrote ${(await metricDocs()).length} metrics to ${file}`);
