import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { PrimitiveType } from '../../datamodel/types.js';
import type { ParameterValue } from '../../fleet/parameters.js';
import { versionKey } from '../../fleet/version-key.js';
import type { Logger } from '../../platform/logger.js';
import type { Executor, Operation, TaskFault, TaskResult } from '../executor.js';
import type { WriteBatcher } from '../persist.js';
import { createQueueExecutor } from '../queue-executor.js';
import type { SchemaGate } from '../schema-gate.js';
import {
  claimNext,
  completeTask,
  devicesNeedingSession,
  expireDue,
  failTask,
  findByCommandKey,
  markTriggered,
  parkTask,
  type QueuedTask,
  retryTask,
} from '../task-queue.js';
import type { AgentInfo, Notification, UspController } from './controller.js';
import { isValidEndpointId, osEndpointId } from './endpoint-id.js';
import { faultFrom, USP_ERR, UspRequestError } from './errors.js';
import { uspPrecheck } from './precheck.js';
import type { EventSink } from './event-sink.js';
import { fleetDeviceId } from '../../fleet/identity.js';

const FW = 'Device.DeviceInfo.FirmwareImage.';

export interface UspDriverDeps {
  pool: pg.Pool;
  controller: UspController;
  /** When given, writes need an exact schema for the device's firmware and must validate (invariant 3). */
  gate?: SchemaGate;
  log?: Logger;
  /** Period of the loop that expires tasks and wakes devices with due work (retries, restarts). */
  sweepMs?: number;
  /** Backoff base for a task whose request timed out (the agent was unreachable). */
  retryBaseMs?: number;
  /** When given, values set or read are stored as the device's last known values before the task completes. */
  batcher?: WriteBatcher;
}

/** Last known values as the fleet stores them (fleet/parameters.ts); paths it cannot index are skipped. */
function lastValues(deviceId: string, values: Array<{ path: string; value: string; type?: string }>) {
  const at = new Date();
  return values
    .filter((v) => /^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/.test(v.path))
    .map((v) => ({
      deviceId,
      path: v.path,
      type: (v.type && FLEET_TYPES.has(v.type) ? v.type : 'string') as ParameterValue['type'],
      value: v.value,
      at,
    }));
}
const FLEET_TYPES = new Set<string>(PrimitiveType.options);

/** Persists USP notifications through the executor's shared write batcher (group commit). */
export function batcherSink(batcher: WriteBatcher): EventSink {
  return { append: (events) => batcher.write({ events }) };
}

/**
 * Registers an onboarded agent in the inventory with protocol `usp` under its fleet identity
 * (OUI-ProductClass-SerialNumber, fleet/identity.ts), the id the CWMP ACS gives the same device. A
 * device already known (by that id or its endpoint ID; by OUI and serial number when the agent names
 * no product class) keeps its inventory id, so its history, leases and ownership stay attached to it.
 */
export function inventoryRegistrar(
  pool: pg.Pool,
  batcher: WriteBatcher,
): (info: AgentInfo) => Promise<string> {
  // Onboarding waves register many agents at once: their lookups share queries.
  const resolve = deviceResolver(pool);
  return async (info) => {
    const fleetId = info.oui && info.serialNumber ? fleetDeviceId(info) : info.endpointId;
    const id =
      (await resolve(info.endpointId, {
        oui: info.oui,
        serialNumber: info.serialNumber,
        productClass: info.productClass || undefined,
      })) ?? fleetId;
    await batcher.write({
      devices: [
        {
          id,
          oui: info.oui || 'unknown',
          serialNumber: info.serialNumber || info.endpointId,
          protocol: 'usp',
          manufacturer: info.manufacturer,
          productClass: info.productClass || undefined,
          modelName: info.modelName,
          hardwareVersion: info.hardwareVersion,
          softwareVersion: info.softwareVersion,
          dataModelRoot: 'Device.',
          lastContactAt: new Date(),
          periodicInformIntervalS: info.periodicNotifIntervalS,
        },
      ],
      endpoints: [{ deviceId: id, protocol: 'usp' }],
      // Same transaction as the row: rollouts read dual-bank support from the firmware image rows.
      values: lastValues(
        id,
        Object.entries(info.values ?? {}).map(([path, value]) => ({ path, value })),
      ),
    });
    return id;
  };
}

/**
 * Keeps the inventory's software version and last contact in step with what agents announce
 * (Boot! with its ParameterMap, TransferComplete!): a projection of the events, which were
 * persisted before the NotifyResp. Updates arriving together are one statement; unknown devices
 * are skipped (onboarding registers them).
 */
export function inventoryProjection(
  pool: pg.Pool,
  opts: { maxDelayMs?: number; log?: Logger } = {},
): (n: Notification) => void {
  let pending = new Map<string, string | null>();
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    const batch = pending;
    pending = new Map();
    const ids = [...batch.keys()];
    const versions = ids.map((id) => batch.get(id) ?? null);
    pool
      .query(
        // Rows locked in key order first, as every writer of devices locks them (db/schema/fleet.ts).
        `WITH locked AS (SELECT id FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE)
         UPDATE devices d SET
           software_version = COALESCE(u.v, d.software_version),
           software_version_key = CASE WHEN u.v IS NULL THEN d.software_version_key ELSE u.k END,
           last_contact_at = now(), updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, v, k)
         WHERE d.id = u.id AND d.id IN (SELECT id FROM locked)`,
        [ids, versions, versions.map((v) => (v === null ? null : versionKey(v)))],
      )
      .catch((err: Error) => opts.log?.warn({ err: err.message }, 'usp inventory projection failed'));
  };
  return (n) => {
    // A broken ParameterMap only refreshes the contact time.
    const version = bootVersion(n.notify) ?? null;
    pending.set(n.deviceId, version ?? pending.get(n.deviceId) ?? null);
    if (!timer) timer = setTimeout(flush, opts.maxDelayMs ?? 50);
  };
}

/** The SoftwareVersion a Boot! announces in its ParameterMap (device-reported text: checked). */
export function bootVersion(n: Notification['notify']): string | undefined {
  const map = n.event?.event_name === 'Boot!' ? n.event.params?.ParameterMap : undefined;
  if (!map) return undefined;
  try {
    const v = (JSON.parse(map) as Record<string, unknown>)['Device.DeviceInfo.SoftwareVersion'];
    return typeof v === 'string' && v.length > 0 && v.length <= 64 ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface ResolveHint {
  oui: string;
  serialNumber: string;
  productClass?: string;
}

/**
 * The inventory id of an endpoint the controller has not mapped yet: the device itself, the device
 * with its fleet identity (OUI-ProductClass-SerialNumber, when the OnBoardRequest names the product
 * class), or the device with the same OUI and serial number (from an `os::<OUI>-<SerialNumber>`
 * endpoint ID). Unknown devices that named their product class get their fleet identity, which
 * onboarding registers. Lookups arriving together (a reconnect storm after a controller restart)
 * share one query.
 */
export function deviceResolver(
  pool: pg.Pool,
  opts: { maxDelayMs?: number; maxBatch?: number } = {},
): (eid: string, hint?: ResolveHint) => Promise<string | undefined> {
  type Ask = { eid: string; fid: string | null; oui: string | null; serial: string | null };
  let queue: Array<{ ask: Ask; resolve: (id: string | undefined) => void; reject: (e: unknown) => void }> =
    [];
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    const col = (f: (a: Ask) => string | null) => batch.map((b) => f(b.ask));
    // COALESCE stops at the first hit: the OUI + serial scan only runs when neither id is known.
    pool
      .query<{ k: string; id: string | null }>(
        `SELECT q.k, COALESCE(
           (SELECT id FROM devices WHERE id = q.eid),
           (SELECT id FROM devices WHERE id = q.fid),
           (SELECT id FROM devices WHERE q.fid IS NULL AND oui = q.oui AND serial_number = q.serial LIMIT 1)
         ) AS id
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS q(eid, fid, oui, serial, k)`,
        [col((a) => a.eid), col((a) => a.fid), col((a) => a.oui), col((a) => a.serial)],
      )
      .then(
        (r) => {
          const found = new Map(r.rows.map((x) => [Number(x.k), x.id]));
          batch.forEach((b, i) => {
            b.resolve(found.get(i + 1) ?? b.ask.fid ?? undefined);
          });
        },
        (err: unknown) => {
          for (const b of batch) b.reject(err);
        },
      );
  };
  return (eid, hint) => {
    const os = /^os::([0-9A-Fa-f]{6})-(.+)$/.exec(eid);
    const oui = hint?.oui ?? os?.[1] ?? null;
    let serial = hint?.serialNumber ?? null;
    if (serial === null && os?.[2]) {
      try {
        serial = decodeURIComponent(os[2]);
      } catch {
        serial = os[2];
      }
    }
    const fid =
      hint?.productClass && oui && serial
        ? fleetDeviceId({ oui, productClass: hint.productClass, serialNumber: serial })
        : null;
    return new Promise((resolve, reject) => {
      queue.push({ ask: { eid, fid, oui, serial }, resolve, reject });
      if (queue.length >= (opts.maxBatch ?? 1_000)) flush();
      else if (!timer) timer = setTimeout(flush, opts.maxDelayMs ?? 5);
    });
  };
}

/**
 * Endpoint ID → inventory id of every USP device, loaded once when the controller starts, so a
 * reconnect storm after a restart neither re-onboards nor looks devices up one by one. Agents of
 * this fleet use `os::<OUI>-<SerialNumber>` endpoint IDs (as the driver addresses them).
 */
export async function knownUspDevices(pool: pg.Pool): Promise<Array<[string, string]>> {
  const r = await pool.query<{ id: string; oui: string; serial_number: string }>(
    `SELECT id, oui, serial_number FROM devices WHERE protocol = 'usp'`,
  );
  return r.rows.map((d) => [isValidEndpointId(d.id) ? d.id : osEndpointId(d.oui, d.serial_number), d.id]);
}

/**
 * The USP `Executor`: the shared PostgreSQL task queue, leases and idempotency (queue-executor.ts),
 * with USP requests as the session. A device is woken by sending it its next task; asynchronous
 * operations (Download(), Activate(), Reboot()) are parked until their OperationComplete / Boot!.
 */
export function createUspExecutor(
  deps: UspDriverDeps,
): Executor & { start(): void; stop(): void; drain(deviceId: string): Promise<void> } {
  const { pool, controller } = deps;
  const draining = new Set<string>();
  const again = new Set<string>();
  let timer: NodeJS.Timeout | undefined;

  const endpointOf = async (deviceId: string): Promise<string> => {
    if (isValidEndpointId(deviceId)) return deviceId;
    const r = await pool.query<{ oui: string; serial_number: string }>(
      `SELECT oui, serial_number FROM devices WHERE id = $1`,
      [deviceId],
    );
    const row = r.rows[0];
    if (!row) throw new UspRequestError(USP_ERR.MESSAGE_FAILED, `device ${deviceId} is not in the inventory`);
    return osEndpointId(row.oui, row.serial_number);
  };

  const precheck = uspPrecheck(pool, deps.gate);

  const firmwareBanks = async (eid: string) => {
    const v = await controller.get(eid, [`${FW}*.Version`, `${FW}*.Status`]);
    const banks: Array<{ instance: number; version: string; status: string; active: boolean }> = [];
    for (const [k, value] of Object.entries(v)) {
      const m = /^Device\.DeviceInfo\.FirmwareImage\.(\d+)\.Version$/.exec(k);
      const status = m ? (v[`${FW}${m[1]}.Status`] ?? '') : '';
      if (m) banks.push({ instance: Number(m[1]), version: value, status, active: status === 'Active' });
    }
    return banks.sort((a, b) => a.instance - b.instance);
  };

  /** Runs one task; returns whether the device's next task may follow right away. */
  const run = async (t: QueuedTask, eid: string): Promise<'next' | 'stop'> => {
    const op: Operation = t.operation;
    // What changes the device is not sent once the task has expired (a late write is a surprise).
    const within = { deadline: t.deadline };
    /** Activate() of a bank at once, within the task's deadline (TR-181 TimeWindow.{i}). */
    const activate = (instance: number) =>
      controller.operate(
        eid,
        `${FW}${instance}.Activate()`,
        t.commandKey,
        {
          'TimeWindow.1.Start': '0',
          'TimeWindow.1.End': String(Math.max(60, Math.floor((t.deadline.getTime() - Date.now()) / 1000))),
          'TimeWindow.1.Mode': 'AnyTime',
          'TimeWindow.1.MaxRetries': '1',
        },
        within,
      );
    const done = async (result: TaskResult) => {
      await completeTask(pool, t.id, result);
      return 'next' as const;
    };
    const fail = async (fault: TaskFault) => {
      await failTask(pool, t.id, fault);
      return 'next' as const;
    };
    try {
      switch (op.kind) {
        case 'setValues': {
          const byObj = new Map<string, Array<{ param: string; value: string; required: boolean }>>();
          for (const v of op.values) {
            const i = v.path.lastIndexOf('.');
            const obj = v.path.slice(0, i + 1);
            byObj.set(obj, [
              ...(byObj.get(obj) ?? []),
              { param: v.path.slice(i + 1), value: v.value, required: true },
            ]);
          }
          await controller.set(
            eid,
            {
              allow_partial: false,
              update_objs: [...byObj].map(([obj_path, param_settings]) => ({ obj_path, param_settings })),
            },
            within,
          );
          // Group-committed with other devices' writes; the task completes after the commit.
          await deps.batcher?.write({ values: lastValues(t.deviceId, op.values) });
          return done({ status: 0 });
        }
        case 'getValues': {
          const v = await controller.get(eid, op.paths);
          const values = Object.entries(v).map(([path, value]) => ({ path, value }));
          await deps.batcher?.write({ values: lastValues(t.deviceId, values) });
          return done({ values });
        }
        case 'addObject': {
          const r = await controller.add(eid, [{ obj_path: op.path, param_settings: [] }]);
          const res = r.created_obj_results[0]?.oper_status;
          if (res?.oper_failure)
            throw new UspRequestError(res.oper_failure.err_code, res.oper_failure.err_msg);
          const inst = Number(/(\d+)\.$/.exec(res?.oper_success?.instantiated_path ?? '')?.[1]);
          return done({ status: 0, ...(Number.isFinite(inst) ? { instance: inst } : {}) });
        }
        case 'deleteObject': {
          const r = await controller.delete(eid, [op.path]);
          const res = r.deleted_obj_results[0]?.oper_status;
          if (res?.oper_failure)
            throw new UspRequestError(res.oper_failure.err_code, res.oper_failure.err_msg);
          return done({ status: 0 });
        }
        case 'download': {
          // The Executor's download means what CWMP's Download of a firmware image means: the device
          // ends up running the image (the rollout reads success from the Boot! that reports it).
          const banks = await firmwareBanks(eid);
          if (banks.some((b) => b.active && b.version === op.version)) {
            return done({ alreadyApplied: true, transfer: { version: op.version } });
          }
          const staged = banks.find((b) => !b.active && b.version === op.version && b.status === 'Available');
          if (staged) {
            // Already in the other bank (an earlier attempt's transfer): activate it, no second transfer.
            await parkTask(pool, t.id, { transfer: { startTime: new Date().toISOString() } });
            await activate(staged.instance);
            return 'stop';
          }
          const target = banks.find((b) => !b.active) ?? banks[0];
          if (!target)
            return fail({
              reason: 'device_fault',
              code: USP_ERR.INVALID_PATH,
              message: 'device has no FirmwareImage table',
            });
          await parkTask(pool, t.id, { transfer: { startTime: new Date().toISOString() } });
          const r = await controller.operate(
            eid,
            `${FW}${target.instance}.Download()`,
            t.commandKey,
            {
              URL: op.url,
              // Activated (and rebooted into) once verified; the task completes on the Boot! after it.
              AutoActivate: 'true',
              FileSize: String(op.fileSize),
              ...(op.checksum ? { CheckSumAlgorithm: 'SHA-256', CheckSum: op.checksum } : {}),
              ...(op.username ? { Username: op.username } : {}),
              ...(op.password ? { Password: op.password } : {}),
            },
            within,
          );
          const failure = r.operation_results[0]?.cmd_failure;
          if (failure) return fail({ reason: 'transfer', code: failure.err_code, message: failure.err_msg });
          return 'stop';
        }
        case 'activateImage': {
          const banks = await firmwareBanks(eid);
          const bank = op.instance
            ? banks.find((b) => b.instance === op.instance)
            : banks.find((b) => b.version === op.version);
          if (!bank || bank.version !== op.version) {
            return fail({
              reason: 'device_fault',
              code: USP_ERR.INVALID_VALUE,
              message: `no firmware image holds version ${op.version}`,
            });
          }
          if (bank.active) return done({ alreadyApplied: true, transfer: { version: op.version } });
          await parkTask(pool, t.id, {});
          await activate(bank.instance);
          return 'stop';
        }
        case 'reboot':
        case 'factoryReset': {
          await parkTask(pool, t.id, {});
          await controller.operate(
            eid,
            op.kind === 'reboot' ? 'Device.Reboot()' : 'Device.FactoryReset()',
            t.commandKey,
            {},
            within,
          );
          return 'stop';
        }
        case 'discover': {
          const r = await controller.getSupportedDM(eid, [op.root ?? 'Device.'], {
            commands: false,
            events: false,
          });
          const params = r.req_obj_results
            .flatMap((o) => o.supported_objs)
            .reduce((n, o) => n + (o.supported_params?.length ?? 0), 0);
          let registered = false;
          if (deps.gate) {
            const values = await controller.get(eid, ['Device.']);
            const writable = new Set(
              r.req_obj_results
                .flatMap((o) => o.supported_objs)
                .flatMap((o) =>
                  (o.supported_params ?? [])
                    .filter((p) => p.access === 'PARAM_READ_WRITE' || p.access === 'PARAM_WRITE_ONLY')
                    .map((p) => `${o.supported_obj_path}${p.param_name}`),
                ),
            );
            const dev = await pool.query<{
              oui: string;
              product_class: string | null;
              software_version: string | null;
            }>(`SELECT oui, product_class, software_version FROM devices WHERE id = $1`, [t.deviceId]);
            const row = dev.rows[0];
            if (row) {
              registered = await deps.gate.registerDiscovered(
                {
                  oui: row.oui,
                  productClass: row.product_class ?? '',
                  softwareVersion: row.software_version ?? '',
                },
                Object.keys(values).map((path) => ({
                  path,
                  writable: writable.has(path.replace(/\.\d+(?=\.)/g, '.{i}')),
                })),
              );
            }
          }
          return done({ discovered: { parameters: params, registered } });
        }
      }
    } catch (err) {
      if (err instanceof UspRequestError) {
        const reason = op.kind === 'download' ? 'transfer' : 'device_fault';
        await failTask(pool, t.id, faultFrom(err, reason));
        return 'next';
      }
      // Timeouts and MTP failures are infrastructure, never device faults (invariant 5): retry later.
      await retryTask(pool, t.id, (err as Error).message, deps.retryBaseMs);
      return 'stop';
    }
    return 'next';
  };

  const drain = async (deviceId: string): Promise<void> => {
    if (draining.has(deviceId)) {
      again.add(deviceId);
      return;
    }
    draining.add(deviceId);
    try {
      const eid = controller.endpointFor(deviceId) ?? (await endpointOf(deviceId));
      await markTriggered(
        pool,
        deviceId,
        'usp_message',
        controller.knownRoute(eid) ? 'sent' : 'sent (route unknown yet)',
      );
      const session = `usp:${randomUUID()}`;
      for (;;) {
        const task = await claimNext(pool, deviceId, session);
        if (!task) break;
        if ((await run(task, eid)) === 'stop') break;
      }
    } catch (err) {
      deps.log?.warn({ deviceId, err: (err as Error).message }, 'usp drain failed');
    } finally {
      draining.delete(deviceId);
      if (again.delete(deviceId)) void drain(deviceId);
    }
  };

  // CommandKey of a factory reset in session, per device; one query for an onboarding wave.
  let resetAsks: Array<{
    id: string;
    resolve: (k: string | undefined) => void;
    reject: (e: unknown) => void;
  }> = [];
  let resetTimer: NodeJS.Timeout | undefined;
  const resetKeyOf = (deviceId: string): Promise<string | undefined> =>
    new Promise((resolve, reject) => {
      resetAsks.push({ id: deviceId, resolve, reject });
      if (resetTimer) return;
      resetTimer = setTimeout(() => {
        resetTimer = undefined;
        const batch = resetAsks;
        resetAsks = [];
        pool
          .query<{ device_id: string; command_key: string }>(
            `SELECT DISTINCT ON (device_id) device_id, command_key FROM executor_tasks
              WHERE device_id = ANY($1::text[]) AND kind = 'factoryReset' AND state = 'in_session'
              ORDER BY device_id, id DESC`,
            [[...new Set(batch.map((b) => b.id))]],
          )
          .then(
            (r) => {
              const keys = new Map(r.rows.map((x) => [x.device_id, x.command_key]));
              for (const b of batch) b.resolve(keys.get(b.id));
            },
            (err: unknown) => {
              for (const b of batch) b.reject(err);
            },
          );
      }, 10);
    });

  // Completions of parked (asynchronous) tasks, matched by CommandKey.
  const onNotification = async (n: Notification) => {
    const nt = n.notify;
    let commandKey: string | undefined;
    let outcome: { ok: true } | { ok: false; code: number; message: string } | undefined;
    if (nt.oper_complete) {
      commandKey = nt.oper_complete.command_key;
      const f = nt.oper_complete.cmd_failure;
      outcome = f ? { ok: false, code: f.err_code, message: f.err_msg } : { ok: true };
    } else if (nt.event?.event_name === 'Boot!') {
      commandKey = nt.event.params?.CommandKey;
      outcome = { ok: true };
    } else if (nt.on_board_req) {
      // A factory reset comes back as a new onboarding (looked up with the other agents onboarding now).
      commandKey = await resetKeyOf(n.deviceId);
      outcome = { ok: true };
    }
    if (commandKey && outcome) {
      const t = await findByCommandKey(pool, n.deviceId, commandKey);
      if (t && (t.state === 'in_session' || t.state === 'triggered')) {
        const isBoot = nt.event?.event_name === 'Boot!' || !!nt.on_board_req;
        const kind = t.operation.kind;
        // Reboots finish on Boot!; activation on Boot! or its OperationComplete; a download (activated
        // automatically) on the Boot! into the new image, or on the failed OperationComplete of its
        // Download() (a transfer that succeeded is not done yet: the device is about to reboot).
        const matches =
          (kind === 'download' && (isBoot || (!!nt.oper_complete && !outcome.ok))) ||
          ((kind === 'reboot' || kind === 'factoryReset') && isBoot) ||
          (kind === 'activateImage' && (isBoot || !!nt.oper_complete));
        if (matches) {
          if (outcome.ok) {
            const result: TaskResult = {};
            if (kind === 'download' || kind === 'activateImage') {
              // The version the device booted: from the Boot! itself, else asked.
              const version =
                bootVersion(nt) ??
                (await controller
                  .get(n.endpointId, ['Device.DeviceInfo.SoftwareVersion'])
                  .then((v) => v['Device.DeviceInfo.SoftwareVersion'])
                  .catch(() => undefined));
              result.transfer = { completeTime: n.at.toISOString(), ...(version ? { version } : {}) };
            }
            await completeTask(pool, t.id, result);
          } else {
            await failTask(pool, t.id, {
              reason: kind === 'download' ? 'transfer' : 'device_fault',
              code: outcome.code,
              message: outcome.message,
            });
          }
        }
      }
    }
    wake(n.deviceId);
  };

  // Devices that showed presence are drained only when they have open tasks: one probe for all the
  // devices heard within a few milliseconds (a reconnect storm is not 100 000 queue queries).
  let probeIds = new Set<string>();
  let probeTimer: NodeJS.Timeout | undefined;
  const probe = () => {
    probeTimer = undefined;
    const ids = [...probeIds];
    probeIds = new Set();
    pool
      .query<{ device_id: string }>(
        `SELECT DISTINCT device_id FROM executor_tasks
          WHERE device_id = ANY($1::text[]) AND state IN ('queued', 'triggered', 'in_session') AND deadline > now()`,
        [ids],
      )
      .then((r) => {
        for (const row of r.rows) void drain(row.device_id);
      })
      .catch((err: Error) => deps.log?.warn({ err: err.message }, 'usp queue probe failed'));
  };
  const wake = (deviceId: string) => {
    probeIds.add(deviceId);
    if (!probeTimer) probeTimer = setTimeout(probe, 10);
  };

  // The Notify is already stored and acknowledged: a completion that hits a busy database is retried
  // (the event stays the record; the task must not sit parked until its deadline for a lost query).
  const complete = (n: Notification, attempt = 1): void => {
    onNotification(n).catch((err: Error) => {
      if (attempt >= 6) {
        deps.log?.warn({ err: err.message, deviceId: n.deviceId }, 'usp completion failed');
        return;
      }
      setTimeout(() => complete(n, attempt + 1), 500 * 2 ** attempt).unref();
    });
  };
  controller.onNotification((n) => complete(n));
  controller.onAgentConnected((eid) => wake(controller.deviceIdFor(eid)));

  const sweep = async () => {
    await expireDue(pool);
    const due = await devicesNeedingSession(pool, 1000, 'usp');
    await Promise.all(due.map((d) => drain(d.deviceId)));
  };

  const exec = createQueueExecutor({
    pool,
    protocol: 'usp',
    precheck,
    wake: (ids) => {
      for (const id of ids) void drain(id);
    },
  });
  return {
    ...exec,
    drain,
    start() {
      timer = setInterval(() => {
        sweep().catch((err: Error) => deps.log?.warn({ err: err.message }, 'usp sweep failed'));
      }, deps.sweepMs ?? 5_000);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
