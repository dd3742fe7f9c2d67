import { describe, expect, it } from 'vitest';
import { parseTopology } from '../../fleet/topology.js';
import { SimFleet } from '../../sim/cwmp/fleet.js';

describe('simulator topology feed', () => {
  it('is accepted by the fleet topology importer without errors', async () => {
    const fleet = new SimFleet({ acsUrl: 'http://127.0.0.1:9/', count: 30, periodicIntervalS: 0 });
    await fleet.start();
    try {
      const parsed = parseTopology(JSON.stringify(fleet.topology()), 'json');
      expect(parsed.errors).toEqual([]);
      expect(parsed.rows).toHaveLength(30);
      expect(new Set(parsed.rows.map((r) => r.row.region)).size).toBe(4);
    } finally {
      await fleet.stop();
    }
  });
});
