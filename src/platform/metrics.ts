/**
 * Prometheus metrics. Each service owns a Registry (three services may share one
 * process under `quantum up`, and each /metrics must show its own).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServiceMetrics {
  registry: Registry;
  /** Messages read or written, per topic and direction (in|out|dlq). */
  messages: Counter<'topic' | 'direction'>;
  /** Domain outcomes, e.g. approved / rejected / filled / skipped. */
  outcomes: Counter<'outcome'>;
  /** Signal creation to fill, seconds (observed where the fill is seen). */
  signalToFill: Histogram<string>;
  /** Entries not yet delivered to this service's group, per topic. */
  busLag: Gauge<'topic'>;
  /** Entries each group has not finished (undelivered + pending) on the streams this service uses. */
  streamBacklog: Gauge<'topic' | 'group'>;
}

export function createServiceMetrics(service: string, options: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'qt_' });
  return {
    registry,
    messages: new Counter({
      name: 'qt_messages_total',
      help: 'Bus messages by topic and direction (in, out, dlq)',
      labelNames: ['topic', 'direction'] as const,
      registers: [registry],
    }),
    outcomes: new Counter({
      name: 'qt_outcomes_total',
      help: 'Domain outcomes (approved, rejected:<reason>, skipped, filled, rejected_fill, applied, duplicate)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    signalToFill: new Histogram({
      name: 'qt_signal_to_fill_seconds',
      help: 'Time from signal creation (signal ts) to its fill (execution ts)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    busLag: new Gauge({
      name: 'qt_bus_lag_entries',
      help: 'Entries in a consumed stream not yet delivered to this service',
      labelNames: ['topic'] as const,
      registers: [registry],
    }),
    streamBacklog: new Gauge({
      name: 'qt_stream_backlog_entries',
      help: 'Entries a consumer group has not finished (not yet delivered plus pending) on a stream; the stream is not trimmed past them',
      labelNames: ['topic', 'group'] as const,
      registers: [registry],
    }),
  };
}
