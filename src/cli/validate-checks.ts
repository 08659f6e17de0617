/**
 * The 13 checks of a healthy core loop (SPEC §9), as a pure function of what was
 * observed, so the verdicts can be tested without a deployment.
 */

export type ServiceKey = 'risk' | 'execution' | 'monitor';

export const SERVICE_LABELS: Record<ServiceKey, { name: string; unit: string }> = {
  risk: { name: 'risk-safety', unit: 'quantum-risk-safety.service' },
  execution: { name: 'execution', unit: 'quantum-execution.service' },
  monitor: { name: 'position-monitor', unit: 'quantum-position-monitor.service' },
};

export interface ServiceObservation {
  port: number;
  /** `systemctl is-active` output, or null where systemd is not in use. */
  systemd: string | null;
  /** True when the port accepted a connection. */
  listening: boolean;
  /** HTTP status of GET /health, or null when it did not answer. */
  healthStatus: number | null;
  healthBody: Record<string, unknown> | null;
}

export interface Observations {
  services: Record<ServiceKey, ServiceObservation>;
  /** Stream lengths of the four core topics, or null when the bus could not be read. */
  topicLengths: Record<string, number> | null;
  busError?: string;
  /** approved / (approved + rejected), from the risk service's /stats (null when unknown). */
  approvalRate: number | null;
  approvalCounts: { approved: number; rejected: number } | null;
  /** Confidences and actions of the most recent signals. */
  signals: Array<{ action: string; confidence: number; source: string }>;
  /** Signal-to-fill milliseconds of the most recent fills. */
  fillLatenciesMs: number[];
  /** Of the sampled approvals that are filled or old enough to have filled, how many did. */
  fill: { approved: number; filled: number } | null;
  /** Consumer groups far behind on a core topic (the stream grows meanwhile): warnings, not checks. */
  warnings?: string[];
}

/**
 * The fill-rate sample: an approval with a fill always counts (filled); one without a
 * fill counts (unfilled) only once it is older than the grace, since a younger one may
 * still be in flight. So a burst that filled at once measures 100 %, not "nothing yet".
 */
export function fillSample(
  approvals: ReadonlyArray<{ signal_id: string; approved_ts: number }>,
  filledIds: ReadonlySet<string>,
  now: number,
  graceMs: number,
): { approved: number; filled: number } {
  let approved = 0;
  let filled = 0;
  for (const a of approvals) {
    if (filledIds.has(a.signal_id)) {
      approved += 1;
      filled += 1;
    } else if (a.approved_ts <= now - graceMs) {
      approved += 1;
    }
  }
  return { approved, filled };
}

export interface CheckResult {
  id: number;
  section: string;
  name: string;
  passed: boolean;
  detail: string;
}

export const THRESHOLDS = {
  approvalRateMin: 0.2,
  approvalRateMax: 0.5,
  avgConfidenceMin: 0.65,
  distinctActionsMin: 2,
  avgSignalToFillMsMax: 5000,
  fillRateMin: 0.95,
} as const;

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

export function evaluate(obs: Observations, coreTopics: readonly string[]): CheckResult[] {
  const results: CheckResult[] = [];
  const add = (section: string, name: string, passed: boolean, detail: string) =>
    results.push({ id: results.length + 1, section, name, passed, detail });

  for (const key of ['risk', 'execution', 'monitor'] as const) {
    const s = obs.services[key];
    const label = SERVICE_LABELS[key].name;
    const unitOk = s.systemd === null || s.systemd === 'active';
    const state = s.systemd === null ? (s.listening ? 'LISTENING' : 'NOT LISTENING') : s.systemd.toUpperCase();
    add('services', `${label} running`, unitOk && s.listening, `${label}: ${state} (port ${s.port}${s.listening ? '' : ' not answering'})`);
  }

  if (obs.topicLengths) {
    const counts = coreTopics.map((t) => `${t}: ${obs.topicLengths![t] ?? 0}`).join(', ');
    add('topics', 'message counts readable', true, counts);
  } else {
    add('topics', 'message counts readable', false, `cannot read the streams: ${obs.busError ?? 'bus unreachable'}`);
  }

  const rate = obs.approvalRate;
  add(
    'signal flow',
    'approval rate 20-50%',
    rate !== null && rate >= THRESHOLDS.approvalRateMin && rate <= THRESHOLDS.approvalRateMax,
    rate === null
      ? 'approval rate unknown (risk service /stats unavailable or no decisions yet)'
      : `approval rate ${pct(rate)} (${obs.approvalCounts?.approved ?? '?'} approved, ${obs.approvalCounts?.rejected ?? '?'} rejected; expected 20-50%)`,
  );

  const actionable = obs.signals.filter((s) => s.action !== 'HOLD' && s.source !== 'manual_close');
  const avgConfidence = actionable.length ? actionable.reduce((sum, s) => sum + s.confidence, 0) / actionable.length : null;
  add(
    'signal flow',
    'average confidence >= 0.65',
    avgConfidence !== null && avgConfidence >= THRESHOLDS.avgConfidenceMin,
    avgConfidence === null
      ? 'no BUY/SELL/CLOSE signals to average'
      : `average confidence ${avgConfidence.toFixed(3)} over the last ${actionable.length} BUY/SELL/CLOSE signals`,
  );

  const actions = [...new Set(obs.signals.map((s) => s.action))].sort();
  add(
    'signal flow',
    'signal variety',
    actions.length >= THRESHOLDS.distinctActionsMin,
    `actions seen: {${actions.join(', ')}}${actions.length < 2 ? ' (need at least two)' : ''}`,
  );

  const empty = obs.topicLengths ? coreTopics.filter((t) => !(obs.topicLengths![t]! > 0)) : [...coreTopics];
  add(
    'end to end',
    'every topic has messages',
    empty.length === 0,
    empty.length === 0 ? 'signals reach positions: all four topics hold messages' : `empty: ${empty.join(', ')}`,
  );

  for (const key of ['risk', 'execution', 'monitor'] as const) {
    const s = obs.services[key];
    const label = SERVICE_LABELS[key].name;
    const status = typeof s.healthBody?.status === 'string' ? s.healthBody.status : undefined;
    add(
      'health',
      `${label} /health`,
      s.healthStatus === 200,
      s.healthStatus === null ? `${label}: /health did not answer` : `${label}: /health ${s.healthStatus}${status ? ` (${status})` : ''}`,
    );
  }

  const lat = obs.fillLatenciesMs;
  const avgLatency = lat.length ? lat.reduce((a, b) => a + b, 0) / lat.length : null;
  add(
    'performance',
    'average signal-to-fill < 5 s',
    avgLatency !== null && avgLatency < THRESHOLDS.avgSignalToFillMsMax,
    avgLatency === null ? 'no fills yet' : `average signal-to-fill ${formatMs(avgLatency)} over the last ${lat.length} fills`,
  );

  const fill = obs.fill;
  const fillRate = fill && fill.approved > 0 ? fill.filled / fill.approved : null;
  add(
    'performance',
    'fill rate >= 95%',
    fillRate !== null && fillRate >= THRESHOLDS.fillRateMin,
    fillRate === null ? 'no approved orders to measure' : `fill rate ${pct(fillRate)} (${fill!.filled}/${fill!.approved} approved orders filled)`,
  );

  return results;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

const SECTION_TITLES: Array<[string, string]> = [
  ['services', 'Checking services...'],
  ['topics', 'Checking Redis topics...'],
  ['signal flow', 'Analyzing signal flow...'],
  ['end to end', 'Checking end-to-end flow...'],
  ['health', 'Testing health endpoints...'],
  ['performance', 'Measuring performance...'],
];

/** The human report, laid out like the original validation script. */
export function formatReport(results: CheckResult[], warnings: readonly string[] = []): string {
  const line = '='.repeat(44);
  const out: string[] = [line, 'TIER 1 CORE LOOP VALIDATION', line, ''];
  SECTION_TITLES.forEach(([section, title], index) => {
    out.push(`[${index + 1}/${SECTION_TITLES.length}] ${title}`);
    for (const r of results.filter((x) => x.section === section)) out.push(`${r.passed ? '✅' : '❌'} ${r.detail}`);
    out.push('');
  });
  const passed = results.filter((r) => r.passed).length;
  if (warnings.length > 0) {
    out.push('Warnings (not checks):');
    for (const warning of warnings) out.push(`⚠️  ${warning}`);
    out.push('');
  }
  out.push(line, 'VALIDATION SUMMARY', line, '');
  out.push(`Checks passed: ${passed}/${results.length} (${((passed / results.length) * 100).toFixed(1)}%)`);
  const failed = results.filter((r) => !r.passed);
  if (failed.length === 0) {
    out.push('', '✅ CORE LOOP OK ✅');
  } else {
    out.push('', 'Failed checks:');
    for (const r of failed) out.push(`  ${r.id}. ${r.name}: ${r.detail}`);
    out.push('', '❌ CORE LOOP NOT OK');
  }
  return out.join('\n');
}
