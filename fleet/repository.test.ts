import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { appendEvents, type DeviceEvent } from './events.js';
import { upsertDevices } from './devices.js';
import {
  maintainEventPartitions,
  partitionName,
  setRetention,
  startPartitionMaintenance,
} from './partitions.js';
import { updateLastValues } from './parameters.js';

let h: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  h = await createTestDatabase();
});
afterAll(async () => {
  await h?.drop();
});

describe('fleet repository', () => {
  it('upserts devices, keeping stored fields a later inform leaves out and never moving contact back', async () => {
    const t1 = new Date('2026-01-01T10:00:00Z');
    const t0 = new Date('2026-01-01T09:00:00Z');
    await upsertDevices(h.db, [
      {
        id: '00D09E-HG8245-A1',
        oui: '00D09E',
        serialNumber: 'A1',
        protocol: 'cwmp',
        productClass: 'HG8245',
        softwareVersion: '3.0.1',
        lastContactAt: t1,
        periodicInformIntervalS: 300,
        tags: ['pilot'],
      },
    ]);
    await upsertDevices(h.db, [
      { id: '00D09E-HG8245-A1', oui: '00D09E', serialNumber: 'A1', protocol: 'cwmp', lastContactAt: t0 },
      {
        id: '00D09E-HG8245-A2',
        oui: '00D09E',
        serialNumber: 'A2',
        protocol: 'cwmp',
        softwareVersion: 'weird',
      },
    ]);
    const rows = await h.db.execute<{
      id: string;
      product_class: string | null;
      software_version_key: string | null;
      last_contact_at: Date | null;
      tags: string[];
    }>(sql`select id, product_class, software_version_key, last_contact_at, tags from devices order by id`);
    expect(rows.rows).toHaveLength(2);
    const [a1, a2] = rows.rows;
    expect(a1?.product_class).toBe('HG8245');
    expect(a1?.software_version_key).not.toBeNull();
    expect(new Date(a1?.last_contact_at ?? 0).toISOString()).toBe(t1.toISOString());
    expect(a1?.tags).toEqual(['pilot']);
    expect(a2?.software_version_key).toBeNull();
    expect(a2?.tags).toEqual([]);
  });

  it('stores typed last values and ignores an older report', async () => {
    await updateLastValues(h.db, [
      { deviceId: '00D09E-HG8245-A1', path: 'Device.WiFi.Radio.1.Channel', type: 'unsignedInt', value: '6' },
      { deviceId: '00D09E-HG8245-A1', path: 'Device.WiFi.Radio.1.Enable', type: 'boolean', value: '1' },
    ]);
    await updateLastValues(h.db, [
      {
        deviceId: '00D09E-HG8245-A1',
        path: 'Device.WiFi.Radio.1.Channel',
        type: 'unsignedInt',
        value: '11',
        at: new Date('2000-01-01T00:00:00Z'),
      },
    ]);
    const rows = await h.db.execute<{
      path: string;
      value: string;
      value_num: string | null;
      value_bool: boolean | null;
    }>(sql`select path, value, value_num, value_bool from device_parameters order by path`);
    expect(rows.rows).toEqual([
      { path: 'Device.WiFi.Radio.1.Channel', value: '6', value_num: '6', value_bool: null },
      { path: 'Device.WiFi.Radio.1.Enable', value: '1', value_num: null, value_bool: true },
    ]);
  });

  it('appends events in order, rejects a bad batch whole, and partitions by day', async () => {
    await expect(
      appendEvents(h.db, [
        { deviceId: 'd1', at: new Date(), kind: 'boot', payload: {} },
        {
          deviceId: 'd1',
          at: new Date(),
          kind: 'transfer_complete',
          payload: { faultCode: 'x' },
        } as unknown as DeviceEvent,
      ]),
    ).rejects.toThrow(/device event 1: payload.faultCode/);
    const now = new Date('2026-03-10T12:00:00Z');
    // Lands in the default partition first; the maintenance run moves it into its day.
    const ids = await appendEvents(h.db, [
      { deviceId: 'd1', at: now, kind: 'inform', payload: { eventCodes: ['1 BOOT'] } },
      { deviceId: 'd1', at: now, kind: 'transfer_complete', payload: { faultCode: 0 } },
    ]);
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBeGreaterThan(ids[0] ?? 0);
    await setRetention(h.db, { eventRetentionDays: 2, eventPartitionsAhead: 1 });
    const r = await maintainEventPartitions(h.db, { now });
    expect(r.created).toEqual(['device_events_p20260310', 'device_events_p20260311']);
    expect(r.moved).toBe(2);
    const inDay = await h.db.execute<{ n: number }>(
      sql`select count(*)::int as n from device_events_p20260310`,
    );
    expect(inDay.rows[0]?.n).toBe(2);
    // Three days later the 10th is past retention and its partition is dropped.
    const later = await maintainEventPartitions(h.db, { now: new Date('2026-03-13T12:00:00Z') });
    expect(later.dropped).toContain('device_events_p20260310');
    const left = await h.db.execute<{ n: number }>(sql`select count(*)::int as n from device_events`);
    expect(left.rows[0]?.n).toBe(0);
  });

  it('maintains partitions on start and on every tick until stopped', async () => {
    const runs: string[][] = [];
    const errors: unknown[] = [];
    const stop = startPartitionMaintenance(h.db, {
      everyMs: 50,
      onError: (e) => errors.push(e),
      onDone: (r) => runs.push(r.created),
    });
    await expect.poll(() => runs.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    stop();
    const after = runs.length;
    expect(errors).toEqual([]);
    // The first run creates today's partition (retention and look-ahead as set above); later runs find it.
    expect(runs[0]).toContain(partitionName(new Date()));
    expect(runs[1]).toEqual([]);
    await new Promise((r) => setTimeout(r, 200));
    expect(runs.length).toBeLessThanOrEqual(after + 1);
  });
});
