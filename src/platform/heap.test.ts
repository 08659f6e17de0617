import { describe, expect, it } from 'vitest';
import { commandOf, heapChoice } from './heap.js';

describe('service heap settings', () => {
  it('apply by default, and not with QT_NODE_HEAP=default or heap flags of the user\'s own', () => {
    const on = {};
    expect(heapChoice({}, [])).toEqual({ tune: true });
    expect(heapChoice({ QT_NODE_HEAP: 'service' }, [])).toEqual({ tune: true });
    expect(heapChoice({ QT_NODE_HEAP: 'default' }, []).tune).toBe(false);
    expect(heapChoice(on, ['--max-old-space-size=256']).tune).toBe(false);
    expect(heapChoice({ ...on, NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=8' }, []).tune).toBe(false);
    expect(heapChoice({ ...on, NODE_OPTIONS: '--parallel-scavenge' }, []).tune).toBe(false);
    expect(heapChoice({ ...on, NODE_OPTIONS: '--enable-source-maps' }, ['--cpu-prof']).tune).toBe(true);
    expect(() => heapChoice({ QT_NODE_HEAP: 'small' }, [])).toThrow(/QT_NODE_HEAP/);
  });

  it('finds the command after node, the script and any leading options', () => {
    expect(commandOf(['node', 'quantum.js', 'risk', '--account', 'a'])).toBe('risk');
    expect(commandOf(['node', 'quantum.js', '--version'])).toBeUndefined();
    expect(commandOf(['node', 'quantum.js', 'up', '--plain'])).toBe('up');
  });
});
