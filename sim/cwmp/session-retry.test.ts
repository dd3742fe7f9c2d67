import { describe, expect, it } from 'vitest';
import { sessionRetryWaitMs } from './session-retry.js';

describe('CPE session retry (TR-069 §3.2.1.1, default policy m = 5 s, k = 2000)', () => {
  it('waits within the table’s range for each retry count, capped from the tenth on', () => {
    const table: Array<[number, number, number]> = [
      [1, 5, 10],
      [2, 10, 20],
      [3, 20, 40],
      [4, 40, 80],
      [5, 80, 160],
      [6, 160, 320],
      [7, 320, 640],
      [8, 640, 1280],
      [9, 1280, 2560],
      [10, 2560, 5120],
      [25, 2560, 5120],
    ];
    for (const [n, lo, hi] of table) {
      expect(sessionRetryWaitMs(n, 0)).toBe(lo * 1000);
      expect(sessionRetryWaitMs(n, 0.999_999)).toBeLessThan(hi * 1000);
      expect(sessionRetryWaitMs(n, 0.999_999)).toBeGreaterThan(hi * 1000 - 10);
    }
  });
});
