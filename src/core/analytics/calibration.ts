/**
 * Calibration of a source's confidence as the probability of a winning round trip:
 * buckets of width 0.05 from the minimum confidence up, each with its count, mean
 * confidence and realized win rate with a 95% Wilson interval. Pure.
 */
import { wilsonInterval } from './statistics.js';

export const BUCKET_WIDTH = 0.05;

/** The running sums of one bucket. */
export interface BucketSums {
  count: number;
  confidence_sum: number;
  wins: number;
}

export interface CalibrationRow {
  /** The bucket's range [from, to); the last one holds confidence 1 too. */
  from: number;
  to: number;
  count: number;
  mean_confidence: number;
  win_rate: number;
  wilson_low: number;
  wilson_high: number;
}

/**
 * The bucket index of a confidence: floor((confidence − min) / 0.05), with a small
 * tolerance so 0.70 lands in [0.70, 0.75) despite binary floating point. A confidence of
 * exactly 1 joins the bucket below it when 1 is a bucket edge. Below `min` (a signal
 * decided under another configuration) gives a negative index: kept, shown in order.
 */
export function bucketIndex(confidence: number, minConfidence: number): number {
  const raw = (confidence - minConfidence) / BUCKET_WIDTH;
  let index = Math.floor(raw + 1e-9);
  if (confidence >= 1 && index > 0 && Math.abs(minConfidence + index * BUCKET_WIDTH - 1) < 1e-9) index -= 1;
  return index;
}

const round = (x: number): number => Math.round(x * 1e9) / 1e9;

/** The table of the non-empty buckets, lowest first. */
export function calibrationTable(buckets: ReadonlyMap<number, BucketSums>, minConfidence: number): CalibrationRow[] {
  return [...buckets.entries()]
    .filter(([, b]) => b.count > 0)
    .sort(([a], [b]) => a - b)
    .map(([index, b]) => {
      const winRate = b.wins / b.count;
      const interval = wilsonInterval(winRate, b.count);
      return {
        from: round(minConfidence + index * BUCKET_WIDTH),
        to: round(Math.min(1, minConfidence + (index + 1) * BUCKET_WIDTH)),
        count: b.count,
        mean_confidence: b.confidence_sum / b.count,
        win_rate: winRate,
        wilson_low: interval.low,
        wilson_high: interval.high,
      };
    });
}
