import { describe, expect, it } from 'vitest';
import { progressReporter } from './progress.js';

function sink() {
  const out: string[] = [];
  return { out, stream: { write: (text: string) => out.push(text) > 0 } };
}

describe('progress', () => {
  const day = 86_400_000;
  const p = { startTs: 0, endTs: 10 * day, bars: 5000, ticks: 20_000, done: false };

  it('prints plain lines off a terminal: share done, simulated date, bars/s, ETA', () => {
    let wall = 0;
    const { out, stream } = sink();
    const report = progressReporter(stream, false, () => wall);
    wall = 2000;
    report({ ...p, simTs: 4 * day });
    expect(out).toEqual(['backtest: 40.0% 1970-01-05 00:00 UTC  2,500 bars/s  ETA 3 s\n']);
  });

  it('redraws one bar on a terminal and ends with a newline', () => {
    let wall = 0;
    const { out, stream } = sink();
    const report = progressReporter(stream, true, () => wall);
    wall = 1000;
    report({ ...p, simTs: 5 * day });
    wall = 3000;
    report({ ...p, simTs: 10 * day, done: true });
    expect(out[0]).toMatch(/^\r\[#{15}-{15}\] {2}50\.0% {2}1970-01-06 00:00 UTC {2}5,000 bars\/s {2}ETA 1 s/);
    expect(out[1]).toMatch(/^\r\[#{30}\] 100\.0%/);
    expect(out[2]).toBe('\n');
  });
});
