import { describe, expect, it } from 'vitest';
import { formatStreamReport, REPORT_TOPICS, streamReport } from './admin.js';
import { EmbeddedBus } from './embedded.js';
import { TOPICS } from './topics.js';

describe('streamReport', () => {
  it('covers every topic and its dead letter topic by default', async () => {
    const bus = new EmbeddedBus();
    await bus.publish(TOPICS.signal, { n: 1 });
    await bus.ensureGroup(TOPICS.signal, 'risk-safety');
    const infos = await streamReport(bus);
    expect(infos.map((info) => info.topic)).toEqual(REPORT_TOPICS);
    expect(REPORT_TOPICS).toContain('trade.signal.v5.dlq');
    expect(infos[0]).toMatchObject({ topic: TOPICS.signal, length: 1, groups: [{ name: 'risk-safety', lag: 1 }] });
  });
});

describe('formatStreamReport', () => {
  it('prints one aligned row per topic and group', () => {
    const table = formatStreamReport([
      {
        topic: 'trade.signal.v5',
        stream: 'trade.signal.v5',
        length: 1200,
        first_id: '1-0',
        last_id: '9-0',
        groups: [
          { name: 'risk-safety', consumers: 1, pending: 3, lag: 0, last_delivered_id: '9-0' },
          { name: 'dashboard', consumers: 2, pending: 0, lag: null, last_delivered_id: '8-0' },
        ],
      },
      { topic: 'trade.signal.v5.dlq', stream: 'trade.signal.v5.dlq', length: 0, first_id: null, last_id: null, groups: [] },
    ]);
    expect(table.split('\n')).toEqual([
      'TOPIC                LENGTH  GROUP        CONSUMERS  PENDING  LAG',
      'trade.signal.v5        1200  risk-safety          1        3    0',
      '                             dashboard            2        0    ?',
      'trade.signal.v5.dlq       0  -                    -        -    -',
    ]);
  });
});
