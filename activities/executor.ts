import type {
  DeviceTaskStatus,
  ExecuteRequestInput,
  Executor,
  StepRef,
  SubmitOutcome,
} from '../executor/executor.js';

export interface ExecutorActivityDeps {
  /** One executor per protocol; devices are routed by the caller's choice of protocol. */
  executors: Partial<Record<'cwmp' | 'usp', Executor>>;
}

/**
 * Activities over the executor seam. Idempotent by construction: the task key is
 * (ref.scope, ref.step, device, operation) — a retried activity resubmits the same keys and gets
 * `existing` back, never a second application.
 */
export function createExecutorActivities(deps: ExecutorActivityDeps) {
  const pick = (protocol: 'cwmp' | 'usp'): Executor => {
    const e = deps.executors[protocol];
    if (!e) throw new Error(`no ${protocol} executor configured in this worker`);
    return e;
  };
  return {
    async executorSubmit(protocol: 'cwmp' | 'usp', request: ExecuteRequestInput): Promise<SubmitOutcome[]> {
      return pick(protocol).submit(request);
    },
    async executorStatus(
      protocol: 'cwmp' | 'usp',
      ref: StepRef,
      devices?: string[],
    ): Promise<DeviceTaskStatus[]> {
      return pick(protocol).status(ref, devices);
    },
    async executorCancel(protocol: 'cwmp' | 'usp', ref: StepRef, devices?: string[]): Promise<number> {
      return pick(protocol).cancel(ref, devices);
    },
    async executorReleaseLeases(
      protocol: 'cwmp' | 'usp',
      owner: string,
      devices?: string[],
    ): Promise<number> {
      return pick(protocol).releaseLeases(owner, devices);
    },
  };
}
