import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricDocs, renderMetricsDoc } from './metrics-doc.js';

describe('docs/metrics.md', () => {
  it('is what `npm run metrics-doc` renders from the registries (run it after changing a metric)', async () => {
    const file = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');
    expect(file).toBe(await renderMetricsDoc());
  });

  it('exports each metric only where it means something (signal-to-fill where fills happen, bus metrics where a group consumes)', async () => {
    const where = new Map((await metricDocs()).map((m) => [m.name, m.services]));
    expect(where.get('qt_signal_to_fill_seconds')).toEqual(['execution']);
    expect(where.get('qt_feed_connected')).toEqual(['execution']);
    expect(where.get('qt_trading_halted')).toEqual(['risk']);
    for (const name of ['qt_messages_total', 'qt_outcomes_total', 'qt_consumer_lag_entries', 'qt_snapshot_commit_failures_total']) {
      expect(where.get(name), name).toEqual(['risk', 'execution', 'monitor']);
    }
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
