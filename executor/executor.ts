import { createHash } from 'node:crypto';
import { z } from 'zod';

/**
 * The protocol-neutral executor seam (see ARCHITECTURE.md "Seams"). Activities call an `Executor`;
 * the CWMP driver (executor/cwmp/) and the USP driver (executor/usp/) implement it on top of the
 * same PostgreSQL task queue (executor/task-queue.ts) and device leases (executor/leases.ts).
 *
 * Keep this file stable: other drivers and workflows compile against it. Extend, never rename.
 */

// ---------------------------------------------------------------------------------------------
// Identifiers

/** Inventory device id (for CWMP `OUI-ProductClass-SerialNumber`, for USP the endpoint id). */
export const DeviceId = z.string().min(1).max(256);
export type DeviceId = z.infer<typeof DeviceId>;

/** A TR-181/TR-098 parameter path (`Device.WiFi.SSID.1.SSID`); objects end with a dot. */
export const ParamPath = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.?$/, 'a dotted parameter path');
export const ObjectPath = ParamPath.refine((p) => p.endsWith('.'), 'an object path ending with "."');

/** Where a step sits in the caller's plan: the rollout or change-request id and the step within it. */
export const StepRef = z.object({
  /** Rollout id or change-request id. Never a Temporal activity id (they change across retries). */
  scope: z.string().min(1).max(128),
  /** Step within the scope, e.g. `wave-2/download` or `apply`. */
  step: z.string().min(1).max(128),
});
export type StepRef = z.infer<typeof StepRef>;

// ---------------------------------------------------------------------------------------------
// Operations (one per batch)

export const ParamValue = z.object({
  path: ParamPath,
  value: z.string().max(65_535),
  /** xsd type as sent on the wire (`xsd:string`, `xsd:unsignedInt`, …); the driver infers it when absent. */
  type: z.string().optional(),
});
export type ParamValue = z.infer<typeof ParamValue>;

export const Operation = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('setValues'), values: z.array(ParamValue).min(1).max(1000) }),
  z.object({ kind: z.literal('getValues'), paths: z.array(ParamPath).min(1).max(1000) }),
  z.object({ kind: z.literal('addObject'), path: ObjectPath }),
  z.object({ kind: z.literal('deleteObject'), path: ObjectPath }),
  z.object({
    kind: z.literal('download'),
    url: z.url(),
    /** The version the image carries; verification compares it with the SoftwareVersion reported after boot. */
    version: z.string().min(1).max(64),
    fileSize: z.number().int().nonnegative(),
    /** Hex SHA-256 of the image, checked by devices that can. */
    checksum: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
    targetFileName: z.string().max(256).optional(),
    username: z.string().max(256).optional(),
    password: z.string().max(256).optional(),
    delaySeconds: z.number().int().nonnegative().default(0),
  }),
  z.object({
    kind: z.literal('activateImage'),
    /** Version to boot; the driver finds its bank from the device's FirmwareImage table. */
    version: z.string().min(1).max(64),
    /** Bank instance number when the caller knows it (`Device.DeviceInfo.FirmwareImage.{i}`). */
    instance: z.number().int().positive().optional(),
  }),
  z.object({ kind: z.literal('reboot') }),
  z.object({ kind: z.literal('factoryReset') }),
  /** Ask the device for its tree (CWMP GetParameterNames, USP GetSupportedDM); used by discovery. */
  z.object({ kind: z.literal('discover'), root: ObjectPath.optional() }),
]);
export type Operation = z.infer<typeof Operation>;
export type OperationInput = z.input<typeof Operation>;
export type OperationKind = Operation['kind'];

/** Operations that change a device; they need an exact (non-fallback) schema and a lease. */
export const WRITE_KINDS: ReadonlySet<OperationKind> = new Set([
  'setValues',
  'addObject',
  'deleteObject',
  'download',
  'activateImage',
  'reboot',
  'factoryReset',
]);

export const ExecuteRequest = z.object({
  ref: StepRef,
  devices: z.array(DeviceId).min(1).max(10_000),
  operation: Operation,
  /** After this instant a task not yet done is `expired`. */
  deadline: z.coerce.date(),
  /** Workflow id that owns the devices' leases while the step runs. */
  owner: z.string().min(1).max(256),
  /** How long the lease outlives the deadline when the owner never releases it. */
  leaseGraceSeconds: z.number().int().nonnegative().default(300),
  /** Retries for a task whose session broke off (not for device faults, which are final). */
  maxAttempts: z.number().int().min(1).max(20).default(5),
});
export type ExecuteRequest = z.infer<typeof ExecuteRequest>;
export type ExecuteRequestInput = z.input<typeof ExecuteRequest>;

// ---------------------------------------------------------------------------------------------
// Idempotency

/** The idempotency key of one device's task: (scope, step, device, operation). */
export function idempotencyKey(ref: StepRef, deviceId: string, kind: OperationKind): string {
  return [ref.scope, ref.step, deviceId, kind].map(encodeURIComponent).join('/');
}

/**
 * The ParameterKey / CommandKey sent with a write (CWMP limits it to 32 characters). It is derived
 * from the idempotency key, so a retried step sends the same key and a device that already reports
 * it has applied the change.
 */
export function parameterKeyFor(key: string): string {
  return `fb${createHash('sha256').update(key).digest('base64url').slice(0, 30)}`;
}

// ---------------------------------------------------------------------------------------------
// Per-device status: only moves forward

export const TaskState = z.enum(['queued', 'triggered', 'in_session', 'done', 'failed', 'expired']);
export type TaskState = z.infer<typeof TaskState>;

export const TriggerPath = z.enum(['connection_request', 'udp', 'next_inform', 'usp_message']);
export type TriggerPath = z.infer<typeof TriggerPath>;

export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set(['done', 'failed', 'expired']);

const RANK: Record<TaskState, number> = {
  queued: 0,
  triggered: 1,
  in_session: 2,
  done: 3,
  failed: 3,
  expired: 3,
};

/** True when `to` is a legal successor of `from` (same state is allowed: annotations may change). */
export function canAdvance(from: TaskState, to: TaskState): boolean {
  if (TERMINAL_STATES.has(from)) return from === to;
  return RANK[to] >= RANK[from];
}

/** Why an executor task failed, from the executor's side or the device's. */
export const FailureReason = z.enum([
  /** The device answered with a protocol fault (CWMP 9000–9019, USP 7000+). */
  'device_fault',
  /** The device's (model, firmware) has no exact schema yet: writes fail closed until discovery. */
  'schema_unknown',
  /** TR-181 validation against the device's firmware schema refused the values. */
  'validation',
  /** Download/transfer reported a failure (TransferComplete with a fault). */
  'transfer',
  /** Too many broken sessions (retries exhausted). */
  'retries_exhausted',
  /** The device is not in the inventory or not managed by this driver. */
  'unknown_device',
  /** Cancelled by the owner. */
  'cancelled',
]);
export type FailureReason = z.infer<typeof FailureReason>;

export const ParamFault = z.object({ path: z.string(), code: z.number().int(), message: z.string() });
export type ParamFault = z.infer<typeof ParamFault>;

export const TaskFault = z.object({
  reason: FailureReason,
  /** Protocol fault code when there is one (CWMP 9xxx, USP 7xxx). */
  code: z.number().int().optional(),
  message: z.string(),
  /** Per-parameter faults (CWMP SetParameterValuesFault, USP param_errs). */
  parameters: z.array(ParamFault).optional(),
});
export type TaskFault = z.infer<typeof TaskFault>;

export const TaskResult = z.object({
  /** getValues: the values read. */
  values: z.array(z.object({ path: z.string(), value: z.string(), type: z.string().optional() })).optional(),
  /** setValues/addObject/deleteObject: 0 applied, 1 applied after reboot (CWMP Status). */
  status: z.number().int().min(0).max(1).optional(),
  /** addObject: the new instance number. */
  instance: z.number().int().optional(),
  /** download/activateImage: transfer timing and the version reported afterwards. */
  transfer: z
    .object({
      startTime: z.string().optional(),
      completeTime: z.string().optional(),
      version: z.string().optional(),
    })
    .optional(),
  /** discover: number of parameters reported and whether a schema was registered from them. */
  discovered: z.object({ parameters: z.number().int(), registered: z.boolean() }).optional(),
  /** The ParameterKey already matched: the change was applied by an earlier attempt. */
  alreadyApplied: z.boolean().optional(),
});
export type TaskResult = z.infer<typeof TaskResult>;

export const DeviceTaskStatus = z.object({
  key: z.string(),
  ref: StepRef,
  deviceId: DeviceId,
  kind: z.string(),
  state: TaskState,
  /** How the device was (last) asked to open a session; visible for connection-request diagnosis. */
  path: TriggerPath.nullable(),
  /** Trigger paths tried, in order, with why each one gave way (e.g. `connection_request: timeout`). */
  trail: z.array(z.object({ path: TriggerPath, at: z.string(), outcome: z.string() })),
  attempts: z.number().int(),
  result: TaskResult.nullable(),
  fault: TaskFault.nullable(),
  deadline: z.string(),
  updatedAt: z.string(),
});
export type DeviceTaskStatus = z.infer<typeof DeviceTaskStatus>;

// ---------------------------------------------------------------------------------------------
// Submission

export const SubmitOutcome = z.discriminatedUnion('outcome', [
  /** A new task was queued. */
  z.object({ deviceId: DeviceId, outcome: z.literal('queued'), key: z.string() }),
  /** The same key was submitted before: nothing new was queued (a retried step). */
  z.object({ deviceId: DeviceId, outcome: z.literal('existing'), key: z.string(), state: TaskState }),
  /** Another owner holds the device's lease; retry after it is released or expires. */
  z.object({
    deviceId: DeviceId,
    outcome: z.literal('lease_held'),
    holder: z.string(),
    expiresAt: z.string(),
  }),
  /** Refused up front (unknown device, schema unknown for a write, validation). */
  z.object({ deviceId: DeviceId, outcome: z.literal('rejected'), fault: TaskFault }),
]);
export type SubmitOutcome = z.infer<typeof SubmitOutcome>;

export const LeaseInfo = z.object({
  deviceId: DeviceId,
  owner: z.string(),
  acquiredAt: z.string(),
  expiresAt: z.string(),
});
export type LeaseInfo = z.infer<typeof LeaseInfo>;

/** The executor as activities see it. One implementation per protocol; all share the task queue. */
export interface Executor {
  readonly protocol: 'cwmp' | 'usp' | (string & {});
  /**
   * Queue one operation for a batch of devices. Idempotent per device by
   * (ref.scope, ref.step, device, operation.kind): resubmitting returns `existing` and queues nothing.
   * Takes (or extends) each device's lease for `owner`; devices leased by another owner are
   * reported `lease_held` and get no task. Triggers sessions (connection request, UDP, …) itself.
   */
  submit(request: ExecuteRequestInput): Promise<SubmitOutcome[]>;
  /** Status of every device task of a step (or only of the given devices). */
  status(ref: StepRef, devices?: string[]): Promise<DeviceTaskStatus[]>;
  /** Cancel tasks of a step that did not reach a device session yet; returns how many were cancelled. */
  cancel(ref: StepRef, devices?: string[]): Promise<number>;
  /** Release the owner's leases (all, or on the given devices). Returns how many were released. */
  releaseLeases(owner: string, devices?: string[]): Promise<number>;
  leases(devices: string[]): Promise<LeaseInfo[]>;
}

/** Summary counts by state, handy for gates and progress displays. */
export function countByState(statuses: DeviceTaskStatus[]): Record<TaskState, number> {
  const out: Record<TaskState, number> = {
    queued: 0,
    triggered: 0,
    in_session: 0,
    done: 0,
    failed: 0,
    expired: 0,
  };
  for (const s of statuses) out[s.state] += 1;
  return out;
}
