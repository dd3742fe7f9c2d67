import type pg from 'pg';
import type { Executor, TaskFault } from '../executor.js';
import { createQueueExecutor } from '../queue-executor.js';
import type { SchemaGate } from '../schema-gate.js';
import type { CredentialCipher } from '../secrets.js';
import type { Precheck } from '../task-queue.js';
import type { ConnectionRequester } from './connection-request.js';

export interface CwmpExecutorDeps {
  pool: pg.Pool;
  gate: SchemaGate;
  requester: ConnectionRequester;
}

/**
 * The CWMP `Executor`: tasks go to the shared queue; each device is woken by connection request
 * (→ UDP → next Inform) and its session in the ACS drains the queue. Writes are refused up front for
 * devices not in the inventory, for unknown (model, firmware) schemas, and for invalid values.
 */
export function createCwmpExecutor(deps: CwmpExecutorDeps): Executor {
  const precheck: Precheck = async (deviceIds, op) => {
    const out = new Map<string, TaskFault>();
    const r = await deps.pool.query<{
      id: string;
      oui: string;
      product_class: string | null;
      software_version: string | null;
      protocol: string;
    }>(`SELECT id, oui, product_class, software_version, protocol FROM devices WHERE id = ANY($1::text[])`, [
      deviceIds,
    ]);
    const byId = new Map(r.rows.map((x) => [x.id, x]));
    const undiscovered: string[] = [];
    for (const d of deviceIds) {
      const row = byId.get(d);
      if (row?.protocol !== 'cwmp') {
        out.set(d, {
          reason: 'unknown_device',
          message: `device ${d} is not a CWMP device in the inventory`,
        });
        continue;
      }
      const fault = deps.gate.checkWrite(
        { oui: row.oui, productClass: row.product_class ?? '', softwareVersion: row.software_version ?? '' },
        op,
      );
      if (fault) {
        out.set(d, fault);
        if (fault.reason === 'schema_unknown') undiscovered.push(d);
      }
    }
    // Its next session discovers the tree; wake it now so the write can be retried soon.
    if (undiscovered.length > 0) deps.requester.wake(undiscovered);
    return out;
  };
  return createQueueExecutor({
    pool: deps.pool,
    protocol: 'cwmp',
    precheck,
    wake: (ids) => deps.requester.wake(ids),
  });
}

/** Store per-device credentials, encrypted (CPE → ACS and ACS → CPE connection request). */
export async function provisionCredentials(
  pool: pg.Pool,
  cipher: CredentialCipher,
  rows: Array<{
    deviceId: string;
    username: string;
    password: string;
    crUsername?: string;
    crPassword?: string;
  }>,
): Promise<void> {
  for (let i = 0; i < rows.length; i += 2000) {
    const batch = rows.slice(i, i + 2000);
    await pool.query(
      `INSERT INTO executor_endpoints (device_id, protocol, username, password_enc, cr_username, cr_password_enc)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (device_id) DO UPDATE SET username = excluded.username, password_enc = excluded.password_enc,
         cr_username = excluded.cr_username, cr_password_enc = excluded.cr_password_enc, updated_at = now()`,
      [
        batch.map((r) => r.deviceId),
        batch.map(() => 'cwmp'),
        batch.map((r) => r.username),
        batch.map((r) => cipher.encrypt(r.password)),
        batch.map((r) => r.crUsername ?? null),
        batch.map((r) => (r.crPassword ? cipher.encrypt(r.crPassword) : null)),
      ],
    );
  }
}
