import type pg from 'pg';
import type { TaskFault } from '../executor.js';
import type { SchemaGate } from '../schema-gate.js';
import type { Precheck } from '../task-queue.js';

/**
 * Admission checks for USP tasks, before anything is queued: the device is a USP device in the
 * inventory and, with a gate, the write validates against the exact schema of its firmware.
 * Shared by the controller's own executor and by processes that only queue work for it (the worker).
 */
export function uspPrecheck(pool: pg.Pool, gate?: SchemaGate): Precheck {
  return async (deviceIds, op) => {
    const out = new Map<string, TaskFault>();
    const r = await pool.query<{
      id: string;
      oui: string;
      product_class: string | null;
      software_version: string | null;
      protocol: string;
    }>(`SELECT id, oui, product_class, software_version, protocol FROM devices WHERE id = ANY($1::text[])`, [
      deviceIds,
    ]);
    const byId = new Map(r.rows.map((x) => [x.id, x]));
    for (const d of deviceIds) {
      const row = byId.get(d);
      if (row?.protocol !== 'usp') {
        out.set(d, { reason: 'unknown_device', message: `device ${d} is not a USP device in the inventory` });
        continue;
      }
      const fault = gate?.checkWrite(
        { oui: row.oui, productClass: row.product_class ?? '', softwareVersion: row.software_version ?? '' },
        op,
      );
      if (fault) out.set(d, fault);
    }
    return out;
  };
}
