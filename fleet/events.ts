import { z } from 'zod';
import { deviceEvents } from '../db/schema/fleet.js';
import { chunks, type DbOrTx } from './db.js';

/**
 * What a device said, as stored in the append-only `device_events` table. The executor writes these
 * before it acknowledges; rollout gates, verification, reconciliation and fleet questions read them.
 */
export const DeviceEventKind = z.enum([
  /** a CWMP Inform or USP Notify; payload.eventCodes lists the codes ("0 BOOTSTRAP", "2 PERIODIC", ...) */
  'inform',
  'boot',
  'bootstrap',
  /** TransferComplete / USP TransferComplete!; payload.faultCode (0 = success) */
  'transfer_complete',
  /** "4 VALUE CHANGE" or USP ValueChange!; payload.parameters */
  'value_change',
  /** an executor operation reached a final state on the device; payload.operation, payload.result */
  'operation_complete',
  /** every connection-request path failed; payload.paths tried */
  'connection_request_failed',
]);
export type DeviceEventKind = z.infer<typeof DeviceEventKind>;

const payloadBase = z.record(z.string(), z.unknown());
/** Which device and when: every event carries them beside its kind and payload. */
const eventBase = { deviceId: z.string().min(1).max(256), at: z.date() };

/**
 * An event with its payload's shape per kind: the named fields are checked, anything else is kept as
 * given. One discriminated union of whole events, not an intersection of the base with a union of
 * payloads: zod merges an intersection's two results key by key, which in an inform storm was a
 * twentieth of everything the ACS allocated.
 */
export const DeviceEvent = z.discriminatedUnion('kind', [
  z.object({
    ...eventBase,
    kind: z.literal('inform'),
    payload: z.looseObject({ eventCodes: z.array(z.string()) }),
  }),
  z.object({ ...eventBase, kind: z.literal('boot'), payload: payloadBase.default({}) }),
  z.object({ ...eventBase, kind: z.literal('bootstrap'), payload: payloadBase.default({}) }),
  z.object({
    ...eventBase,
    kind: z.literal('transfer_complete'),
    payload: z.looseObject({ faultCode: z.number().int().nonnegative(), commandKey: z.string().optional() }),
  }),
  z.object({
    ...eventBase,
    kind: z.literal('value_change'),
    payload: z.looseObject({ parameters: z.record(z.string(), z.string()).optional() }),
  }),
  z.object({
    ...eventBase,
    kind: z.literal('operation_complete'),
    payload: z.looseObject({ operation: z.string(), result: z.string() }),
  }),
  z.object({ ...eventBase, kind: z.literal('connection_request_failed'), payload: payloadBase.default({}) }),
]);
export type DeviceEvent = z.input<typeof DeviceEvent>;

const ROWS_PER_INSERT = 2_000;

/**
 * Appends events in multi-row INSERTs (one round trip per 2 000 events) and returns their ids in input
 * order. Pass a transaction to make the append atomic with other writes; events are validated first, so
 * a bad event rejects the whole batch before anything is written.
 */
export async function appendEvents(db: DbOrTx, events: readonly DeviceEvent[]): Promise<number[]> {
  const rows = events.map((e, i) => {
    const parsed = DeviceEvent.safeParse(e);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(
        `device event ${i}: ${issue?.path.join('.') || 'event'}: ${issue?.message ?? 'invalid'}`,
      );
    }
    const v = parsed.data;
    return { deviceId: v.deviceId, at: v.at, kind: v.kind, payload: v.payload as Record<string, unknown> };
  });
  const ids: number[] = [];
  for (const batch of chunks(rows, ROWS_PER_INSERT)) {
    const inserted = await db.insert(deviceEvents).values(batch).returning({ id: deviceEvents.id });
    for (const r of inserted) ids.push(r.id);
  }
  return ids;
}
