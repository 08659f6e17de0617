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
  };
}

/** A live price feed's counters (registered on the execution service's registry). */
export interface FeedMetrics {
  /** Detected gaps in the venue's trade ids. */
  gaps: Counter<'source'>;
  /** Reconnects, `kind` unplanned (drop, error) or planned (before the venue's time limit). */
  reconnects: Counter<'source' | 'kind'>;
  /** Frames that could not be parsed (skipped). */
  malformed: Counter<'source'>;
  /** 1 while every connection of the feed is open. */
  connected: Gauge<'source'>;
}

export function createFeedMetrics(registry: Registry): FeedMetrics {
  return {
    gaps: new Counter({ name: 'qt_feed_gaps_total', help: 'Gaps detected in a live feed (aggTrade ids not consecutive)', labelNames: ['source'] as const, registers: [registry] }),
    reconnects: new Counter({
      name: 'qt_feed_reconnects_total',
      help: 'Live feed reconnects (kind: unplanned after a drop or error, planned before the venue connection limit)',
      labelNames: ['source', 'kind'] as const,
      registers: [registry],
    }),
    malformed: new Counter({ name: 'qt_feed_malformed_frames_total', help: 'Live feed frames that could not be parsed (logged, skipped)', labelNames: ['source'] as const, registers: [registry] }),
    connected: new Gauge({ name: 'qt_feed_connected', help: '1 while every connection of the live feed is open', labelNames: ['source'] as const, registers: [registry] }),
  };
}
