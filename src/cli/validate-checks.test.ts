import { describe, expect, it } from 'vitest';
import { CORE_TOPICS } from '../bus/topics.js';
import { evaluate, fillSample, formatReport, type Observations, type ServiceObservation } from './validate-checks.js';

const up = (port: number): ServiceObservation => ({
  port,
  systemd: null,
  listening: true,
  healthStatus: 200,
  healthBody: { status: 'ok' },
});

function healthy(): Observations {
  return {
    services: { risk: up(8003), execution: up(8002), monitor: up(8004) },
    topicLengths: Object.fromEntries(CORE_TOPICS.map((t) => [t, 10])),
    approvalRate: 0.3,
    approvalCounts: { approved: 3, rejected: 7 },
    signals: [
      { action: 'BUY', confidence: 0.8, source: 'xgb' },
      { action: 'SELL', confidence: 0.7, source: 'xgb' },
      { action: 'HOLD', confidence: 0.1, source: 'xgb' },
    ],
    fillLatenciesMs: [2, 4],
    fill: { approved: 3, filled: 3 },
  };
}

describe('validate checks', () => {
  it('passes all 13 on a healthy deployment and says CORE LOOP OK', () => {
    const results = evaluate(healthy(), CORE_TOPICS);
    expect(results).toHaveLength(13);
    expect(results.filter((r) => !r.passed)).toEqual([]);
    const report = formatReport(results);
    expect(report).toContain('Checks passed: 13/13');
    expect(report).toContain('CORE LOOP OK');
  });

  it('names the failing checks when a service is down', () => {
    const obs = healthy();
    obs.services.execution = { port: 8002, systemd: null, listening: false, healthStatus: null, healthBody: null };
    const results = evaluate(obs, CORE_TOPICS);
    const failed = results.filter((r) => !r.passed).map((r) => r.name);
    expect(failed).toEqual(['execution running', 'execution /health']);
    const report = formatReport(results);
    expect(report).toContain('Checks passed: 11/13');
    expect(report).not.toContain('CORE LOOP OK');
    expect(report).toContain('execution: /health did not answer');
  });

  it.each([
    ['approval rate below 20%', (o: Observations) => { o.approvalRate = 0.19; }, 'approval rate 20-50%'],
    ['approval rate above 50%', (o: Observations) => { o.approvalRate = 0.51; }, 'approval rate 20-50%'],
    ['low confidence', (o: Observations) => { o.signals = [{ action: 'BUY', confidence: 0.6, source: 'x' }, { action: 'SELL', confidence: 0.69, source: 'x' }]; }, 'average confidence >= 0.65'],
    ['one action only', (o: Observations) => { o.signals = [{ action: 'BUY', confidence: 0.8, source: 'x' }]; }, 'signal variety'],
    ['an empty topic', (o: Observations) => { o.topicLengths!['trade.position.update'] = 0; }, 'every topic has messages'],
    ['slow fills', (o: Observations) => { o.fillLatenciesMs = [5000, 5001]; }, 'average signal-to-fill < 5 s'],
    ['missing fills', (o: Observations) => { o.fill = { approved: 100, filled: 94 }; }, 'fill rate >= 95%'],
    ['systemd unit failed', (o: Observations) => { o.services.risk.systemd = 'failed'; }, 'risk-safety running'],
  ])('fails on %s', (_name, mutate, check) => {
    const obs = healthy();
    mutate(obs);
    expect(evaluate(obs, CORE_TOPICS).filter((r) => !r.passed).map((r) => r.name)).toEqual([check]);
  });

  it('keeps the edges inclusive: 20%, 50%, 0.65 and 95% pass', () => {
    const obs = healthy();
    obs.approvalRate = 0.2;
    obs.signals = [{ action: 'BUY', confidence: 0.65, source: 'x' }, { action: 'HOLD', confidence: 0, source: 'x' }];
    obs.fill = { approved: 100, filled: 95 };
    expect(evaluate(obs, CORE_TOPICS).every((r) => r.passed)).toBe(true);
    obs.approvalRate = 0.5;
    expect(evaluate(obs, CORE_TOPICS).every((r) => r.passed)).toBe(true);
  });
});

describe('fill-rate sample', () => {
  const now = 1_000_000;
  const grace = 5000;
  it('counts a filled approval at any age, and an unfilled one only once it is older than the grace', () => {
    const approvals = [
      { signal_id: 'young-filled', approved_ts: now - 10 },
      { signal_id: 'old-filled', approved_ts: now - 60_000 },
      { signal_id: 'young-unfilled', approved_ts: now - 10 },
      { signal_id: 'old-unfilled', approved_ts: now - grace - 1 },
    ];
    const filled = new Set(['young-filled', 'old-filled']);
    expect(fillSample(approvals, filled, now, grace)).toEqual({ approved: 3, filled: 2 });
  });

  it('right after a burst that filled at once: every approval counts, 100 % (not "no approved orders")', () => {
    const approvals = Array.from({ length: 5 }, (_, i) => ({ signal_id: `s${i}`, approved_ts: now - 100 }));
    const sample = fillSample(approvals, new Set(approvals.map((a) => a.signal_id)), now, grace);
    expect(sample).toEqual({ approved: 5, filled: 5 });
    const checks = evaluate({ ...healthy(), fill: sample }, CORE_TOPICS);
    expect(checks.find((c) => c.name === 'fill rate >= 95%')).toMatchObject({ passed: true });
  });
});
