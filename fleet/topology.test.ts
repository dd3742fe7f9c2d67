import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { upsertDevices } from './devices.js';
import { importTopology, parseTopology } from './topology.js';

let h: Awaited<ReturnType<typeof createTestDatabase>>;
const IDS = ['DEV-1', 'DEV-2', 'DEV-3'];

beforeAll(async () => {
  h = await createTestDatabase();
  await upsertDevices(
    h.db,
    IDS.map((id) => ({ id, oui: 'AAAAAA', serialNumber: id, protocol: 'cwmp' as const })),
  );
});
afterAll(async () => {
  await h?.drop();
});
beforeEach(async () => {
  await h.db.execute(sql`update devices set region = null, site = null, olt = null, pon_port = null, bng = null,
    service_tier = null, time_zone = null, topology_updated_at = null`);
});

async function topology() {
  const r = await h.db.execute<{
    id: string;
    region: string | null;
    olt: string | null;
    pon_port: string | null;
    time_zone: string | null;
  }>(sql`select id, region, olt, pon_port, time_zone from devices order by id`);
  return r.rows;
}

const GOOD_CSV = `device_id,region,site,olt,pon_port,bng,service_tier,time_zone
DEV-1,north,site-a,olt-1,0/1/1,bng-a,gold,Europe/Berlin
DEV-2,south,site-b,olt-2,0/1/2,bng-b,silver,Europe/Paris
`;

describe('topology import', () => {
  it('applies a valid CSV file', async () => {
    const r = await importTopology(h.db, GOOD_CSV);
    expect(r).toMatchObject({ rows: 2, applied: 2, changed: 2, errors: [] });
    expect(await topology()).toEqual([
      { id: 'DEV-1', region: 'north', olt: 'olt-1', pon_port: '0/1/1', time_zone: 'Europe/Berlin' },
      { id: 'DEV-2', region: 'south', olt: 'olt-2', pon_port: '0/1/2', time_zone: 'Europe/Paris' },
      { id: 'DEV-3', region: null, olt: null, pon_port: null, time_zone: null },
    ]);
  });

  it('applies a valid JSON file (camelCase keys, null clears)', async () => {
    const json = `[
  {"deviceId": "DEV-3", "region": "east", "olt": "olt-9", "ponPort": "0/2/1", "timeZone": null}
]`;
    const r = await importTopology(h.db, json);
    expect(r).toMatchObject({ rows: 1, applied: 1, changed: 1, errors: [] });
    expect((await topology())[2]).toEqual({
      id: 'DEV-3',
      region: 'east',
      olt: 'olt-9',
      pon_port: '0/2/1',
      time_zone: null,
    });
  });

  it('re-importing the same file changes nothing; a changed row is counted', async () => {
    await importTopology(h.db, GOOD_CSV);
    const again = await importTopology(h.db, GOOD_CSV);
    expect(again).toMatchObject({ applied: 2, changed: 0, errors: [] });
    const moved = await importTopology(h.db, GOOD_CSV.replace('DEV-2,south', 'DEV-2,east'));
    expect(moved).toMatchObject({ applied: 2, changed: 1 });
    expect((await topology())[1]?.region).toBe('east');
  });

  it('reports bad rows with line and field and applies nothing', async () => {
    const bad = `device_id,region,olt,time_zone
DEV-1,north,olt-1,Europe/Berlin
DEV-2,,olt-2,Europe/Paris
DEV-3,west,olt-3,Mars/Olympus
`;
    const r = await importTopology(h.db, bad);
    expect(r.applied).toBe(0);
    expect(r.errors).toEqual([
      { line: 3, field: 'region', message: expect.stringMatching(/expected string|Invalid input/) },
      { line: 4, field: 'timeZone', message: expect.stringMatching(/IANA time zone/) },
    ]);
    expect((await topology()).every((d) => d.region === null)).toBe(true);
  });

  it('rejects duplicate devices (neither row wins) and names both lines', async () => {
    const dup = `device_id,region
DEV-1,north
DEV-2,south
DEV-1,east
`;
    const r = await importTopology(h.db, dup);
    expect(r.errors).toEqual([
      { line: 4, field: 'deviceId', message: 'duplicate device DEV-1 (first on line 2)' },
    ]);
    expect(r.applied).toBe(0);
    const partial = await importTopology(h.db, dup, { partial: true });
    expect(partial).toMatchObject({ applied: 1, changed: 1 });
    expect((await topology()).map((d) => d.region)).toEqual([null, 'south', null]);
  });

  it('rejects unknown devices; --partial applies the rest', async () => {
    const csv = `device_id,region
DEV-1,north
NOPE-9,south
`;
    const r = await importTopology(h.db, csv);
    expect(r).toMatchObject({
      applied: 0,
      errors: [{ line: 3, field: 'deviceId', message: 'unknown device NOPE-9' }],
    });
    expect((await topology())[0]?.region).toBeNull();
    const p = await importTopology(h.db, csv, { partial: true });
    expect(p).toMatchObject({ applied: 1, changed: 1, errors: [{ line: 3, field: 'deviceId' }] });
    expect((await topology())[0]?.region).toBe('north');
  });

  it('is atomic: a failure while writing leaves no row applied', async () => {
    // A region longer than the column allows cannot happen through validation, so break the write
    // itself: a check constraint added for this test fails on the second row.
    await h.db.execute(
      sql`alter table devices add constraint t_no_bad_region check (region is distinct from 'boom')`,
    );
    try {
      await expect(importTopology(h.db, 'device_id,region\nDEV-1,north\nDEV-2,boom\n')).rejects.toThrow();
      expect((await topology()).map((d) => d.region)).toEqual([null, null, null]);
    } finally {
      await h.db.execute(sql`alter table devices drop constraint t_no_bad_region`);
    }
  });

  it('dry run reports what would change and writes nothing', async () => {
    const r = await importTopology(h.db, GOOD_CSV, { dryRun: true });
    expect(r).toMatchObject({ applied: 2, changed: 2, dryRun: true, errors: [] });
    expect((await topology()).every((d) => d.region === null)).toBe(true);
  });

  it('rejects unknown columns and malformed files before reading rows', () => {
    expect(parseTopology('device_id,region,colour\nDEV-1,north,red\n').errors).toEqual([
      { line: 1, field: 'colour', message: 'unknown column' },
    ]);
    expect(parseTopology('region\nnorth\n').errors).toEqual([
      { line: 1, field: 'deviceId', message: 'missing column' },
    ]);
    expect(parseTopology('device_id,region\n"DEV-1,north\n').errors[0]?.message).toMatch(/malformed CSV/);
    expect(parseTopology('[{"deviceId": "DEV-1", "region": "n"},').errors[0]?.message).toMatch(
      /malformed JSON/,
    );
  });

  it('names the line of each JSON element, including multi-line ones', () => {
    const json = `[
  {"deviceId": "DEV-1", "region": "north"},
  {
    "deviceId": "DEV-2",
    "region": 5
  },
  {"deviceId": "DEV-3", "region": "x", "colour": "red"}
]`;
    expect(parseTopology(json).errors).toEqual([
      { line: 3, field: 'region', message: expect.any(String) },
      { line: 7, field: 'colour', message: 'unknown column' },
    ]);
  });
});
