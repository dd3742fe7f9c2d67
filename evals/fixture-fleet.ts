import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../fleet/db.js';
import { upsertDevices } from '../fleet/devices.js';
import { appendEvents, type DeviceEvent } from '../fleet/events.js';
import { type ParameterValue, updateLastValues } from '../fleet/parameters.js';
import type { Gazetteer } from '../planner/entities.js';

/**
 * The seeded fixture fleet the fleet-question suite runs against: 400 devices over five regions, with
 * topology, last values and 30 days of events, generated deterministically from a fixed seed and a
 * fixed "now" so that gold answers are reproducible.
 */

export const FIXTURE_NOW = new Date('2026-11-25T14:00:00Z'); // Wednesday, 15:00 in Paris
export const FIXTURE_TZ = 'Europe/Paris';
export const FIXTURE_DEVICES = 400;

export const REGIONS = ['lyon', 'paris', 'marseille', 'lille', 'bordeaux'] as const;
export const SITES: Record<(typeof REGIONS)[number], string[]> = {
  lyon: ['lyon-part-dieu', 'villeurbanne'],
  paris: ['paris-nord', 'paris-sud'],
  marseille: ['marseille-port'],
  lille: ['lille-centre'],
  bordeaux: ['bordeaux-lac'],
};
export const MODELS = [
  {
    productClass: 'HG8245',
    modelName: 'EchoLife HG8245H',
    manufacturer: 'Huawei',
    oui: '00E0FC',
    versions: ['3.0.2', '3.1.0', '3.1.4', '3.2.1'],
    hw: ['A1', 'B2'],
  },
  {
    productClass: 'F660',
    modelName: 'ZXHN F660',
    manufacturer: 'ZTE',
    oui: '38F8F6',
    versions: ['2.9.1', '3.1.2', '3.10.0'],
    hw: ['V1'],
  },
  {
    productClass: 'XGS-ONT',
    modelName: 'Nokia XS-2426G',
    manufacturer: 'Nokia',
    oui: '00D09E',
    versions: ['1.4.0', '1.5.0-rc1', '1.5.0'],
    hw: ['R1', 'R2'],
  },
] as const;

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const pick = <T>(xs: readonly T[], r: number): T => xs[Math.floor(r * xs.length) % xs.length] as T;

export interface FixtureDevice {
  id: string;
  oui: string;
  serialNumber: string;
  protocol: 'cwmp' | 'usp';
  manufacturer: string;
  productClass: string;
  modelName: string;
  hardwareVersion: string;
  softwareVersion: string;
  lastContactAt: Date;
  periodicInformIntervalS: number;
  region: string;
  site: string;
  olt: string;
  ponPort: string;
  serviceTier: string;
}

export function fixtureDevices(): FixtureDevice[] {
  const r = lcg(20261125);
  return Array.from({ length: FIXTURE_DEVICES }, (_, i) => {
    const m = pick(MODELS, r());
    const region = pick(REGIONS, r());
    const olt = `${region}-olt-${Math.floor(r() * 3) + 1}`;
    const interval = pick([3600, 86_400], r());
    // ~10 % offline: last contact older than three intervals.
    const offline = r() < 0.1;
    const age = offline ? interval * (3 + r() * 5) : r() * interval;
    return {
      id: `${m.oui}-${m.productClass}-FX${String(i).padStart(5, '0')}`,
      oui: m.oui,
      serialNumber: `FX${String(i).padStart(5, '0')}`,
      protocol: r() < 0.25 ? 'usp' : 'cwmp',
      manufacturer: m.manufacturer,
      productClass: m.productClass,
      modelName: m.modelName,
      hardwareVersion: pick(m.hw, r()),
      softwareVersion: pick(m.versions, r()),
      lastContactAt: new Date(FIXTURE_NOW.getTime() - Math.floor(age * 1000)),
      periodicInformIntervalS: interval,
      region,
      site: pick(SITES[region], r()),
      olt,
      ponPort: `${olt}/0/${Math.floor(r() * 4)}`,
      serviceTier: pick(['gold', 'silver', 'bronze'], r()),
    };
  });
}

export function fixtureGazetteer(): Gazetteer {
  const ds = fixtureDevices();
  const uniq = (xs: string[]) => [...new Set(xs)].sort();
  return {
    regions: [...REGIONS],
    sites: uniq(Object.values(SITES).flat()),
    productClasses: MODELS.map((m) => m.productClass),
    modelNames: MODELS.map((m) => m.modelName),
    softwareVersions: uniq(ds.map((d) => d.softwareVersion)),
  };
}

/** Seeds the fixture fleet into an empty, migrated database. */
export async function seedFixtureFleet(db: DbOrTx): Promise<void> {
  const ds = fixtureDevices();
  await upsertDevices(
    db,
    ds.map((d) => ({
      id: d.id,
      oui: d.oui,
      serialNumber: d.serialNumber,
      protocol: d.protocol,
      manufacturer: d.manufacturer,
      productClass: d.productClass,
      modelName: d.modelName,
      hardwareVersion: d.hardwareVersion,
      softwareVersion: d.softwareVersion,
      lastContactAt: d.lastContactAt,
      periodicInformIntervalS: d.periodicInformIntervalS,
    })),
  );
  const topo = ds.map(
    (d) => sql`(${d.id}, ${d.region}, ${d.site}, ${d.olt}, ${d.ponPort}, ${d.serviceTier})`,
  );
  await db.execute(sql`update devices set region = t.region, site = t.site, olt = t.olt, pon_port = t.pon, service_tier = t.tier,
    time_zone = ${FIXTURE_TZ} from (values ${sql.join(topo, sql`, `)}) as t(id, region, site, olt, pon, tier) where devices.id = t.id`);
  const r = lcg(7);
  const values: ParameterValue[] = [];
  const events: DeviceEvent[] = [];
  const day = 86_400_000;
  for (const d of ds) {
    values.push({
      deviceId: d.id,
      path: 'Device.WiFi.Radio.1.Channel',
      type: 'unsignedInt',
      value: String(pick([1, 6, 11], r())),
    });
    values.push({
      deviceId: d.id,
      path: 'Device.DeviceInfo.UpTime',
      type: 'unsignedInt',
      value: String(Math.floor(r() * 2_000_000)),
    });
    values.push({
      deviceId: d.id,
      path: 'Device.DeviceInfo.MemoryStatus.Free',
      type: 'unsignedInt',
      value: String(20_000 + Math.floor(r() * 200_000)),
    });
    const last = d.lastContactAt.getTime();
    // Daily periodic informs for the last 30 days up to the last contact.
    for (let t = last; t > FIXTURE_NOW.getTime() - 30 * day; t -= day) {
      events.push({
        deviceId: d.id,
        at: new Date(t),
        kind: 'inform',
        payload: { eventCodes: ['2 PERIODIC'] },
      });
    }
    // Reboots: most devices 0–2 in 30 days, a flaky tenth up to 12.
    const boots = r() < 0.1 ? 4 + Math.floor(r() * 9) : Math.floor(r() * 3);
    for (let b = 0; b < boots; b++) {
      const at = new Date(
        Math.min(last, FIXTURE_NOW.getTime() - Math.floor(r() * (r() < 0.5 ? 7 : 30) * day)),
      );
      events.push({ deviceId: d.id, at, kind: 'boot', payload: {} });
      events.push({ deviceId: d.id, at, kind: 'inform', payload: { eventCodes: ['1 BOOT'] } });
    }
    if (r() < 0.05)
      events.push({
        deviceId: d.id,
        at: new Date(last - Math.floor(r() * day)),
        kind: 'bootstrap',
        payload: {},
      });
    if (r() < 0.3) {
      const failed = r() < 0.3;
      events.push({
        deviceId: d.id,
        at: new Date(FIXTURE_NOW.getTime() - Math.floor(r() * 30 * day)),
        kind: 'transfer_complete',
        payload: { faultCode: failed ? pick([9010, 9016, 9018], r()) : 0 },
      });
    }
    if (r() < 0.04)
      events.push({
        deviceId: d.id,
        at: new Date(FIXTURE_NOW.getTime() - Math.floor(r() * 3 * day)),
        kind: 'connection_request_failed',
        payload: {},
      });
  }
  await updateLastValues(db, values);
  await appendEvents(db, events);
}
