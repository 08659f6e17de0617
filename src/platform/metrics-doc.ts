/**
 * docs/metrics.md, rendered from the registries the services build (`npm run
 * metrics-doc` writes it; a test fails when the file is stale, and the observability
 * test compares it with what running services serve).
 */
import type { Registry } from 'prom-client';
import { createDashboardMetrics, createExecutionMetrics, createFeedMetrics, createMonitorMetrics, createRiskMetrics } from './metrics.js';

export interface MetricDoc {
  name: string;
  type: string;
  labels: string[];
  help: string;
  services: string[];
}

interface RegisteredMetric {
  name: string;
  help: string;
  labelNames?: readonly string[];
  get(): Promise<{ type: string }>;
}

/** The execution service's registry with the price feed's counters, as the service registers them. */
function executionRegistry(): Registry {
  const metrics = createExecutionMetrics();
  createFeedMetrics(metrics.registry, metrics.feedConnected);
  return metrics.registry;
}

/** Every service's registry, built exactly as the service builds it. */
export function serviceRegistries(): Array<{ service: string; registry: Registry }> {
  return [
    { service: 'risk', registry: createRiskMetrics().registry },
    { service: 'execution', registry: executionRegistry() },
    { service: 'monitor', registry: createMonitorMetrics().registry },
    { service: 'dashboard', registry: createDashboardMetrics().registry },
  ];
}

/** One entry per metric name, with the services that export it, in registration order. */
export async function metricDocs(): Promise<MetricDoc[]> {
  const byName = new Map<string, MetricDoc>();
  for (const { service, registry } of serviceRegistries()) {
    for (const metric of registry.getMetricsAsArray() as unknown as RegisteredMetric[]) {
      const { type } = await metric.get();
      const known = byName.get(metric.name);
      if (known) {
        if (known.type !== type || known.help !== metric.help) throw new Error(`${metric.name} is defined twice, differently`);
        known.services.push(service);
        continue;
      }
      byName.set(metric.name, { name: metric.name, type, labels: [...(metric.labelNames ?? [])], help: metric.help, services: [service] });
    }
  }
  return [...byName.values()];
}

const escapeCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export async function renderMetricsDoc(): Promise<string> {
  const rows = (await metricDocs()).map(
    (m) =>
      `| \`${m.name}\` | ${m.type} | ${m.labels.map((l) => `\`${l}\``).join(', ') || '—'} | ${m.services.join(', ')} | ${escapeCell(m.help)} |`,
  );
  return [
    '# Metrics',
    '',
    '<!-- Generated from src/platform/metrics.ts by `npm run metrics-doc`; do not edit by hand. -->',
    '',
    'Every service serves Prometheus metrics at `GET /metrics` on its own port (risk 8003,',
    'execution 8002, monitor 8004, dashboard 8000). Every series carries the label',
    '`service` (risk, execution, monitor, dashboard), also when `quantum up` runs them all in',
    'one process. A histogram `NAME` is served as `NAME_bucket{le}`, `NAME_sum` and',
    '`NAME_count`. Gauges describing state are read when /metrics is scraped; lag, pending',
    'and dead-letter gauges come from XINFO / XLEN at each scrape (never per message).',
    '',
    'Alerts on these metrics: deploy/prometheus/alerts.yml; what each means and what to do:',
    '[operations.md, Monitoring](operations.md#monitoring).',
    '',
    '| Metric | Type | Labels | Services | Meaning |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    'Label values: `topic` is a stream name without the prefix (e.g. `trade.signal.v5`);',
    '`direction` is `in`, `out` or `dlq`; `group` is the consumer group (`risk-safety`,',
    '`execution`, `position-monitor`); `outcome` is one of a fixed set (`approved`,',
    '`rejected:<REASON_CODE>` per reason of a risk rejection, `skipped`, `duplicate`,',
    '`protective_exit:<exit_reason>` per protective close risk fires (`stop_loss`,',
    '`take_profit`, `trailing_stop`, `time_limit`), `kill_switch_close` per close the kill switch publishes, `filled`,',
    '`rejected:<REJECT_CODE>` per execution rejection (`EXPIRED`, `PRICE_DEVIATION`,',
    '`NOT_REDUCING`, `MIN_NOTIONAL`, ..., `OTHER`), `applied`, `rejected_fill`); `symbol` is a',
    'configured instrument; `reason` (on `qt_trading_halted`) is the halt\'s code, e.g.',
    '`CIRCUIT_BREAKER` or `KILL_SWITCH`; `source` (on `qt_feed_connected`) is the price feed, `simulator` or',
    '`binance`.',
    '',
  ].join('\n');
}
