import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricDocs, renderMetricsDoc } from './metrics-doc.js';

describe('docs/metrics.md', () => {
  it('is what `npm run metrics-doc` renders from the registries (run it after changing a metric)', async () => {
    const file = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');
    expect(file).toBe(await renderMetricsDoc());
  });

  it('follows the naming conventions: qt_ prefix, _total only on counters, base units', async () => {
    for (const metric of await metricDocs()) {
      expect(metric.name, metric.name).toMatch(/^qt_[a-z_]+$/);
      expect(metric.name.endsWith('_total'), metric.name).toBe(metric.type === 'counter');
      if (metric.type === 'histogram') expect(metric.name, metric.name).toMatch(/_seconds$/);
      expect(metric.name, metric.name).not.toMatch(/_(ms|milliseconds|pct|percent)$/);
      expect(metric.labels, metric.name).not.toEqual(expect.arrayContaining(['signal_id', 'order_id']));
    }
  });
});
