import type pg from 'pg';
import type { DeviceEvent, ParameterValue } from '../../fleet/index.js';
import type { Logger } from '../../platform/logger.js';
import type { Operation, TaskFault, TaskResult } from '../executor.js';
import type { WriteBatcher } from '../persist.js';
import type { SchemaGate } from '../schema-gate.js';
import { completeTask, failTask, parkTask, type QueuedTask, retryTask } from '../task-queue.js';
import { type CwmpSession, SessionBroken } from './session.js';
import type { CpeMessage, ParamValueStruct } from './soap.js';
import { PrimitiveType } from '../../datamodel/types.js';

export interface ProgramContext {
  pool: pg.Pool;
  batcher: WriteBatcher;
  gate: SchemaGate;
  log: Logger;
  /** Backoff base for retries of broken sessions. */
  retryBaseMs: number;
}

const FLEET_TYPES = new Set<string>(PrimitiveType.options);

export function toParameterValues(
  deviceId: string,
  params: ParamValueStruct[],
  at = new Date(),
): ParameterValue[] {
  return params
    .filter((p) => /^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/.test(p.path))
    .map((p) => ({
      deviceId,
      path: p.path,
      type: (FLEET_TYPES.has(p.type) ? p.type : 'string') as ParameterValue['type'],
      value: p.value,
      at,
    }));
}

class ProtocolMismatch extends Error {}

function expect<T extends CpeMessage['type']>(m: CpeMessage, type: T): Extract<CpeMessage, { type: T }> {
  if (m.type === type) return m as Extract<CpeMessage, { type: T }>;
  if (m.type === 'Fault') throw new DeviceFaultError(m);
  throw new ProtocolMismatch(`expected ${type}, got ${m.type}`);
}

class DeviceFaultError extends Error {
  constructor(readonly fault: Extract<CpeMessage, { type: 'Fault' }>) {
    super(`device fault ${fault.code}: ${fault.message}`);
  }
}

function deviceFault(m: Extract<CpeMessage, { type: 'Fault' }>): TaskFault {
  return {
    reason: 'device_fault',
    code: m.code,
    message: m.message || `fault ${m.code}`,
    ...(m.parameters.length > 0 ? { parameters: m.parameters } : {}),
  };
}

async function finish(
  ctx: ProgramContext,
  s: CwmpSession,
  t: QueuedTask,
  outcome: { result: TaskResult } | { fault: TaskFault },
) {
  const ok = 'result' in outcome;
  const changed = ok
    ? await completeTask(ctx.pool, t.id, outcome.result)
    : await failTask(ctx.pool, t.id, outcome.fault);
  if (!changed) return;
  const ev: DeviceEvent = {
    deviceId: t.deviceId,
    at: new Date(),
    kind: 'operation_complete',
    payload: {
      operation: t.operation.kind,
      result: ok ? 'done' : 'failed',
      key: t.key,
      scope: t.ref.scope,
      step: t.ref.step,
      ...(ok ? { detail: outcome.result } : { fault: outcome.fault }),
    },
  };
  await ctx.batcher.write({ events: [ev] });
  ctx.log.debug({ device: t.deviceId, key: t.key, ok, session: s.id }, 'task finished');
}

/** The instance of the image holding `version`, from the device's FirmwareImage table. */
function bankFor(params: ParamValueStruct[], root: string, version: string): number | null {
  const re = new RegExp(`^${root.replace('.', '\\.')}DeviceInfo\\.FirmwareImage\\.(\\d+)\\.Version$`);
  for (const p of params) {
    const m = re.exec(p.path);
    if (m && p.value === version) return Number(m[1]);
  }
  return null;
}

/**
 * Run one queued task inside the session. Device faults and validation failures are final; a
 * broken session leaves the task for a retry (the ParameterKey / version check then prevents a
 * second application) and is re-thrown so the session ends.
 */
export async function runTask(ctx: ProgramContext, s: CwmpSession, t: QueuedTask): Promise<void> {
  const op: Operation = t.operation;
  const f = s.facts;
  const key = { oui: f.oui, productClass: f.productClass, softwareVersion: f.softwareVersion };
  s.current = t;
  try {
    const refusal = ctx.gate.checkWrite(key, op);
    if (refusal) return await finish(ctx, s, t, { fault: refusal });
    switch (op.kind) {
      case 'setValues': {
        if (f.parameterKey === t.commandKey)
          return await finish(ctx, s, t, { result: { status: 0, alreadyApplied: true } });
        const values = op.values.map((v) => ({ ...v, type: v.type ?? ctx.gate.xsdType(key, v.path) }));
        const r = expect(
          await s.call({ rpc: 'SetParameterValues', values, parameterKey: t.commandKey }),
          'SetParameterValuesResponse',
        );
        f.parameterKey = t.commandKey;
        await ctx.batcher.write({
          values: toParameterValues(
            f.deviceId,
            values.map((v) => ({ ...v, type: v.type ?? 'string' })),
          ),
        });
        return await finish(ctx, s, t, { result: { status: r.status } });
      }
      case 'getValues': {
        const r = expect(
          await s.call({ rpc: 'GetParameterValues', names: op.paths }),
          'GetParameterValuesResponse',
        );
        await ctx.batcher.write({ values: toParameterValues(f.deviceId, r.params) });
        return await finish(ctx, s, t, { result: { values: r.params } });
      }
      case 'addObject': {
        if (f.parameterKey === t.commandKey)
          return await finish(ctx, s, t, { result: { status: 0, alreadyApplied: true } });
        const r = expect(
          await s.call({ rpc: 'AddObject', objectName: op.path, parameterKey: t.commandKey }),
          'AddObjectResponse',
        );
        f.parameterKey = t.commandKey;
        return await finish(ctx, s, t, { result: { status: r.status, instance: r.instance } });
      }
      case 'deleteObject': {
        if (f.parameterKey === t.commandKey)
          return await finish(ctx, s, t, { result: { status: 0, alreadyApplied: true } });
        const r = expect(
          await s.call({ rpc: 'DeleteObject', objectName: op.path, parameterKey: t.commandKey }),
          'DeleteObjectResponse',
        );
        f.parameterKey = t.commandKey;
        return await finish(ctx, s, t, { result: { status: r.status } });
      }
      case 'download': {
        // Already running the target image: an earlier attempt got through (or nothing to do).
        if (f.softwareVersion === op.version)
          return await finish(ctx, s, t, {
            result: { alreadyApplied: true, transfer: { version: f.softwareVersion } },
          });
        const r = expect(
          await s.call({
            rpc: 'Download',
            commandKey: t.commandKey,
            fileType: '1 Firmware Upgrade Image',
            url: op.url,
            username: op.username ?? '',
            password: op.password ?? '',
            fileSize: op.fileSize,
            targetFileName: op.targetFileName ?? '',
            delaySeconds: op.delaySeconds,
          }),
          'DownloadResponse',
        );
        if (r.status === 0)
          return await finish(ctx, s, t, {
            result: { transfer: { startTime: r.startTime, completeTime: r.completeTime } },
          });
        // Status 1: the outcome arrives later as TransferComplete with our CommandKey.
        await parkTask(ctx.pool, t.id, { transfer: {} });
        return;
      }
      case 'activateImage': {
        if (f.softwareVersion === op.version)
          return await finish(ctx, s, t, {
            result: { alreadyApplied: true, transfer: { version: f.softwareVersion } },
          });
        let instance = op.instance ?? null;
        if (instance === null) {
          const r = expect(
            await s.call({ rpc: 'GetParameterValues', names: [`${f.root}DeviceInfo.FirmwareImage.`] }),
            'GetParameterValuesResponse',
          );
          instance = bankFor(r.params, f.root, op.version);
          if (instance === null)
            return await finish(ctx, s, t, {
              fault: { reason: 'validation', message: `no valid firmware image holds version ${op.version}` },
            });
        }
        expect(
          await s.call({
            rpc: 'SetParameterValues',
            values: [
              {
                path: `${f.root}DeviceInfo.BootFirmwareImage`,
                value: `${f.root}DeviceInfo.FirmwareImage.${instance}`,
                type: 'xsd:string',
              },
            ],
            parameterKey: t.commandKey,
          }),
          'SetParameterValuesResponse',
        );
        expect(await s.call({ rpc: 'Reboot', commandKey: t.commandKey }), 'RebootResponse');
        await parkTask(ctx.pool, t.id, {});
        return;
      }
      case 'reboot': {
        expect(await s.call({ rpc: 'Reboot', commandKey: t.commandKey }), 'RebootResponse');
        // Done when the device comes back with "M Reboot" and our CommandKey.
        await parkTask(ctx.pool, t.id, {});
        return;
      }
      case 'factoryReset': {
        expect(await s.call({ rpc: 'FactoryReset' }), 'FactoryResetResponse');
        return await finish(ctx, s, t, { result: {} });
      }
      case 'discover': {
        const n = await discover(ctx, s, op.root);
        return await finish(ctx, s, t, { result: { discovered: n } });
      }
    }
  } catch (err) {
    if (err instanceof DeviceFaultError) return await finish(ctx, s, t, { fault: deviceFault(err.fault) });
    if (err instanceof ProtocolMismatch)
      return await finish(ctx, s, t, { fault: { reason: 'device_fault', code: 9002, message: err.message } });
    if (err instanceof SessionBroken) {
      await retryTask(ctx.pool, t.id, err.message, err.immediate ? 0 : ctx.retryBaseMs);
      throw err;
    }
    throw err;
  } finally {
    s.current = null;
  }
}

/**
 * Ask the device for its whole tree (GetParameterNames, NextLevel=false), register a schema for its
 * (OUI, product class, software version), then read its values. Returns counts.
 */
export async function discover(
  ctx: ProgramContext,
  s: CwmpSession,
  root?: string,
): Promise<{ parameters: number; registered: boolean }> {
  const f = s.facts;
  const r = expect(
    await s.call({ rpc: 'GetParameterNames', path: root ?? f.root, nextLevel: false }),
    'GetParameterNamesResponse',
  );
  const registered = await ctx.gate.registerDiscovered(
    { oui: f.oui, productClass: f.productClass, softwareVersion: f.softwareVersion },
    r.names,
  );
  const v = expect(
    await s.call({ rpc: 'GetParameterValues', names: [root ?? f.root] }),
    'GetParameterValuesResponse',
  );
  await ctx.batcher.write({ values: toParameterValues(f.deviceId, v.params) });
  return { parameters: r.names.length, registered };
}
