/** Stream management views behind `quantum streams`: lengths, groups, pending and lag per topic. */
import type { EventBus, StreamInfo } from './bus.js';
import { ALL_TOPICS, dlqTopic } from './topics.js';

/** Every topic of the loop followed by its dead letter topic. */
export const REPORT_TOPICS: readonly string[] = ALL_TOPICS.flatMap((topic) => [topic, dlqTopic(topic)]);

export async function streamReport(bus: EventBus, topics: readonly string[] = REPORT_TOPICS): Promise<StreamInfo[]> {
  return Promise.all(topics.map((topic) => bus.info(topic)));
}

const HEADER = ['TOPIC', 'LENGTH', 'GROUP', 'CONSUMERS', 'PENDING', 'LAG'] as const;
/** Numbers read best right-aligned. */
const RIGHT_ALIGNED = new Set<number>([1, 3, 4, 5]);

/**
 * A fixed-width table, one row per topic and group (a topic without groups gets one row
 * with "-"); further groups of a topic leave the topic and length cells empty.
 */
export function formatStreamReport(infos: readonly StreamInfo[]): string {
  const rows: string[][] = [];
  for (const info of infos) {
    if (info.groups.length === 0) {
      rows.push([info.topic, String(info.length), '-', '-', '-', '-']);
      continue;
    }
    info.groups.forEach((group, index) => {
      rows.push([
        index === 0 ? info.topic : '',
        index === 0 ? String(info.length) : '',
        group.name,
        String(group.consumers),
        String(group.pending),
        group.lag === null ? '?' : String(group.lag),
      ]);
    });
  }
  const table = [[...HEADER], ...rows];
  const widths = HEADER.map((_, column) => Math.max(...table.map((row) => (row[column] ?? '').length)));
  return table
    .map((row) =>
      row
        .map((cell, column) => {
          const width = widths[column] ?? 0;
          return RIGHT_ALIGNED.has(column) ? cell.padStart(width) : cell.padEnd(width);
        })
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
