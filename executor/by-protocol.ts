import type pg from 'pg';
import type { Executor, SubmitOutcome } from './executor.js';

/**
 * One `Executor` over a mixed fleet: each device's task goes to the driver of the protocol the
 * inventory says it speaks now (a device moved from CWMP to USP follows its row). Status, cancel and
 * leases live in the shared PostgreSQL queue, so any driver answers them for every device.
 * Devices unknown to the inventory go to the first driver, which rejects them.
 */
export function protocolRouter(pool: pg.Pool, drivers: Partial<Record<'cwmp' | 'usp', Executor>>): Executor {
  const list = Object.values(drivers).filter((d): d is Executor => d !== undefined);
  const first = list[0];
  if (!first) throw new Error('protocolRouter needs at least one driver');
  return {
    protocol: list.map((d) => d.protocol).join('+'),
    async submit(request) {
      const r = await pool.query<{ id: string; protocol: string }>(
        `SELECT id, protocol FROM devices WHERE id = ANY($1::text[])`,
        [request.devices],
      );
      const protocolOf = new Map(r.rows.map((x) => [x.id, x.protocol]));
      const groups = new Map<Executor, string[]>();
      for (const d of request.devices) {
        const driver = drivers[protocolOf.get(d) as 'cwmp' | 'usp'] ?? first;
        groups.set(driver, [...(groups.get(driver) ?? []), d]);
      }
      const byDevice = new Map<string, SubmitOutcome>();
      for (const [driver, devices] of groups)
        for (const o of await driver.submit({ ...request, devices })) byDevice.set(o.deviceId, o);
      return request.devices.flatMap((d) => {
        const o = byDevice.get(d);
        return o ? [o] : [];
      });
    },
    status: (ref, devices) => first.status(ref, devices),
    cancel: (ref, devices) => first.cancel(ref, devices),
    releaseLeases: (owner, devices) => first.releaseLeases(owner, devices),
    leases: (devices) => first.leases(devices),
  };
}
