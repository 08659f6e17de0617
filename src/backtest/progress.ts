/**
 * Progress on the terminal: a bar with the simulated date, bars (or ticks) per second of
 * wall time and an ETA on a TTY; one plain line per report otherwise (logs, CI).
 */
import type { Progress } from './driver.js';

export function progressReporter(
  stream: Pick<NodeJS.WriteStream, 'write'>,
  tty: boolean,
  now: () => number = () => performance.now(),
): (p: Progress) => void {
  const started = now();
  return (p) => {
    const elapsedS = Math.max(1e-3, (now() - started) / 1000);
    const unit = p.bars > 0 ? 'bars' : 'ticks';
    const rate = (p.bars > 0 ? p.bars : p.ticks) / elapsedS;
    const date = new Date(p.simTs).toISOString().slice(0, 16).replace('T', ' ');
    const span = p.endTs !== undefined ? p.endTs - p.startTs : undefined;
    const fraction = p.done ? 1 : span && span > 0 ? Math.min(1, Math.max(0, (p.simTs - p.startTs) / span)) : undefined;
    const eta = fraction !== undefined && fraction > 0 && !p.done ? `ETA ${Math.round((elapsedS / fraction) * (1 - fraction))} s` : p.done ? `${elapsedS.toFixed(1)} s` : 'ETA ?';
    const figures = `${date} UTC  ${Math.round(rate).toLocaleString('en-US')} ${unit}/s  ${eta}`;
    if (!tty) {
      stream.write(`backtest: ${fraction !== undefined ? `${(fraction * 100).toFixed(1)}% ` : ''}${figures}\n`);
      return;
    }
    const width = 30;
    const filled = fraction === undefined ? 0 : Math.round(fraction * width);
    stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${fraction !== undefined ? `${(fraction * 100).toFixed(1).padStart(5)}%` : '   ?%'}  ${figures}   `);
    if (p.done) stream.write('\n');
  };
}
