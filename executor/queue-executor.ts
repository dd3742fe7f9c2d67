import type pg from 'pg';
import {
  type DeviceTaskStatus,
  ExecuteRequest,
  type ExecuteRequestInput,
  type Executor,
  type LeaseInfo,
  type StepRef,
  type SubmitOutcome,
} from './executor.js';
import { listLeases, releaseLeases } from './leases.js';
import { cancelTasks, enqueue, type Precheck, stepStatus } from './task-queue.js';

export interface QueueExecutorOptions {
  pool: pg.Pool;
  protocol: Executor['protocol'];
  /** Per-device admission checks (inventory, schema known, validation) before anything is queued. */
  precheck?: Precheck;
  /** Ask the given devices to open a session (connection request, USP message, …). Fire and forget. */
  wake?: (deviceIds: string[]) => void;
}

/**
 * The `Executor` every driver shares: queue, leases and status live in PostgreSQL; the driver only
 * supplies its prechecks and how to wake a device. Drivers drain the queue in their sessions.
 */
export function createQueueExecutor(opts: QueueExecutorOptions): Executor {
  return {
    protocol: opts.protocol,
    async submit(input: ExecuteRequestInput): Promise<SubmitOutcome[]> {
      const request = ExecuteRequest.parse(input);
      const outcomes = await enqueue(opts.pool, request, opts.precheck);
      const queued = outcomes.filter((o) => o.outcome === 'queued').map((o) => o.deviceId);
      if (queued.length > 0) opts.wake?.(queued);
      return outcomes;
    },
    status(ref: StepRef, devices?: string[]): Promise<DeviceTaskStatus[]> {
      return stepStatus(opts.pool, ref, devices);
    },
    cancel(ref: StepRef, devices?: string[]): Promise<number> {
      return cancelTasks(opts.pool, ref, devices);
    },
    releaseLeases(owner: string, devices?: string[]): Promise<number> {
      return releaseLeases(opts.pool, owner, devices);
    },
    leases(devices: string[]): Promise<LeaseInfo[]> {
      return listLeases(opts.pool, devices);
    },
  };
}
