/**
 * TEST DOUBLES for rollout workflow tests — not the real executor or fleet.
 *
 * `FastExecutorDouble` implements the `Executor` interface in memory: it records every submit,
 * answers `existing` for a key seen before (the real executor's idempotency contract) and reports
 * every task `done`. `FakeFleet` turns recorded downloads into device events per an image
 * behaviour, and reports fleet health as the test sets it.
 */
import type {
  DeviceTaskStatus,
  ExecuteRequestInput,
  Executor,
  LeaseInfo,
  StepRef,
  SubmitOutcome,
} from '../../executor/executor.js';
import { idempotencyKey } from '../../executor/executor.js';
import type { RolloutDevice, RolloutFleet, RolloutImage } from '../../activities/rollout.js';
import type { DeviceEvent } from '../../domain/rollout/outcome.js';

export interface Dispatch {
  key: string;
  step: string;
  deviceId: string;
  kind: string;
  version?: string;
  at: number;
}

export class FastExecutorDouble implements Executor {
  readonly protocol = 'fast-double';
  readonly dispatches: Dispatch[] = [];
  /** Every submit call, including the ones answered `existing`. */
  submitCalls = 0;
  private readonly byKey = new Map<string, Dispatch>();

  async submit(req: ExecuteRequestInput): Promise<SubmitOutcome[]> {
    this.submitCalls++;
    const out: SubmitOutcome[] = [];
    for (const deviceId of req.devices) {
      const key = idempotencyKey(req.ref, deviceId, req.operation.kind);
      if (this.byKey.has(key)) {
        out.push({ deviceId, outcome: 'existing', key, state: 'done' });
        continue;
      }
      const op = req.operation;
      const d: Dispatch = {
        key,
        step: req.ref.step,
        deviceId,
        kind: op.kind,
        ...('version' in op ? { version: op.version } : {}),
        at: Date.now(),
      };
      this.byKey.set(key, d);
      this.dispatches.push(d);
      out.push({ deviceId, outcome: 'queued', key });
    }
    return out;
  }
  async status(ref: StepRef, devices?: string[]): Promise<DeviceTaskStatus[]> {
    return this.dispatches
      .filter((d) => d.key.startsWith(`${encodeURIComponent(ref.scope)}/${encodeURIComponent(ref.step)}/`))
      .filter((d) => !devices || devices.includes(d.deviceId))
      .map((d) => ({
        key: d.key,
        ref,
        deviceId: d.deviceId,
        kind: d.kind,
        state: 'done',
        path: 'connection_request',
        trail: [],
        attempts: 1,
        result: null,
        fault: null,
        deadline: new Date(d.at + 3600_000).toISOString(),
        updatedAt: new Date(d.at).toISOString(),
      }));
  }
  async cancel(): Promise<number> {
    return 0;
  }
  async releaseLeases(): Promise<number> {
    return 0;
  }
  async leases(): Promise<LeaseInfo[]> {
    return [];
  }
  downloadsOf(version: string): Dispatch[] {
    return this.dispatches.filter((d) => d.kind === 'download' && d.version === version);
  }
}

/** What a device does after it receives an image: 'ok' comes back on it, 'brick' stays silent. */
export type Behaviour = (device: RolloutDevice) => 'ok' | 'brick';

export class FakeFleet implements RolloutFleet {
  healthy = true;
  /** While true, no device (upgraded or not) reports anything: an ACS outage. */
  silent = false;
  constructor(
    readonly devices: RolloutDevice[],
    private readonly executor: FastExecutorDouble,
    private readonly images: Record<string, { version: string; behaviour: Behaviour }>,
    private readonly minuteMs: number,
  ) {}
  async resolveCohort(): Promise<RolloutDevice[]> {
    return this.devices;
  }
  async observe(deviceIds: readonly string[], fromMs: number, toMs: number) {
    const byId = new Map(this.devices.map((d) => [d.id, d]));
    const downloads = new Map<string, { version: string; at: number }>();
    for (const d of this.executor.dispatches)
      if (d.kind === 'download' && d.version && !downloads.has(d.deviceId))
        downloads.set(d.deviceId, { version: d.version, at: d.at });
    const events = new Map<string, DeviceEvent[]>();
    if (!this.silent) {
      for (const id of deviceIds) {
        const dev = byId.get(id);
        if (!dev) continue;
        const dl = downloads.get(id);
        const evs: DeviceEvent[] = [];
        if (dl) {
          const img = Object.values(this.images).find((i) => i.version === dl.version);
          const back = dl.at + this.minuteMs;
          if (img && img.behaviour(dev) === 'ok' && back <= toMs)
            evs.push({ kind: 'boot', at: back, softwareVersion: dl.version });
        } else {
          // Not upgraded: the periodic inform of a live device.
          evs.push({
            kind: 'inform',
            at: toMs - 1,
            softwareVersion: dev.firmware,
            eventCodes: ['2 PERIODIC'],
          });
        }
        events.set(
          id,
          evs.filter((e) => e.at >= fromMs && e.at <= toMs),
        );
      }
    }
    const samples = [];
    for (let t = fromMs; t <= toMs; t += this.minuteMs) samples.push({ at: t, healthy: this.healthy });
    samples.push({ at: toMs, healthy: this.healthy });
    return { events, health: { samples, maxStalenessMs: this.minuteMs * 2 } };
  }
}

export function makeCohort(perModel: number): RolloutDevice[] {
  const out: RolloutDevice[] = [];
  for (const model of ['A', 'B'])
    for (let i = 0; i < perModel; i++)
      out.push({
        id: `${model}-${String(i).padStart(4, '0')}`,
        model,
        hardwareVersion: 'h1',
        firmware: '1.0',
        topology: { olt: `olt-${i % 4}`, ponPort: `pon-${i % 16}` },
        dualBank: model === 'A',
        ...(model === 'A' ? { inactiveBankVersion: '1.0' } : {}),
      });
  return out;
}

export const catalogue: Record<string, RolloutImage> = {
  'img-good': {
    id: 'img-good',
    url: 'http://images.test/good.bin',
    version: '2.0',
    fileSize: 1000,
    previousVersion: '1.0',
    previousUrl: 'http://images.test/old.bin',
  },
  'img-bad': {
    id: 'img-bad',
    url: 'http://images.test/bad.bin',
    version: '2.0-bad',
    fileSize: 1000,
    previousVersion: '1.0',
    previousUrl: 'http://images.test/old.bin',
  },
};
