/**
 * Rollback planning, done before each wave so an abort never has to think: for each device the
 * cheapest way back, and on abort which devices to send it to.
 */
import type { Outcome } from './outcome.js';

export interface RollbackDevice {
  id: string;
  stratum: string;
  dualBank: boolean;
  /** Version held in the inactive bank, if the device reports it. */
  inactiveBankVersion?: string;
}

export type RollbackPath = 'activate-previous-bank' | 'download-previous' | 'field-action';

export interface RollbackStep {
  deviceId: string;
  path: RollbackPath;
  reason: string;
}

/** Cheapest path first: Activate() of the old bank costs one reboot; a re-download costs a transfer. */
export function planRollbackPath(
  d: RollbackDevice,
  previousVersion: string,
  previousImageInCatalogue: boolean,
): RollbackStep {
  if (d.dualBank && d.inactiveBankVersion === previousVersion) {
    return {
      deviceId: d.id,
      path: 'activate-previous-bank',
      reason: `previous image ${previousVersion} is in the inactive bank`,
    };
  }
  if (previousImageInCatalogue) {
    return {
      deviceId: d.id,
      path: 'download-previous',
      reason: `re-download ${previousVersion} from the catalogue`,
    };
  }
  return {
    deviceId: d.id,
    path: 'field-action',
    reason: `no way back to ${previousVersion} over the network`,
  };
}

export interface AbortPlan {
  rollback: RollbackStep[];
  /** Bricked devices: nothing over the network will reach them. */
  fieldAction: string[];
  /** Already on the old image (reverted, transfer failure): nothing to do. */
  untouched: string[];
  /** Outcome not known yet; re-examined after the halt settles. */
  pending: string[];
}

/**
 * On abort: roll back the upgraded, reachable devices of the halted strata (success and degraded
 * are on the new image and talking to us); list the bricked ones for field action.
 */
export function planAbort(
  devices: readonly RollbackDevice[],
  outcomes: ReadonlyMap<string, Outcome>,
  haltStrata: readonly string[],
  previousVersion: string,
  previousImageInCatalogue: boolean,
): AbortPlan {
  const halted = new Set(haltStrata);
  const plan: AbortPlan = { rollback: [], fieldAction: [], untouched: [], pending: [] };
  for (const d of devices) {
    if (!halted.has(d.stratum)) continue;
    const o = outcomes.get(d.id);
    if (o === undefined) continue; // never dispatched
    switch (o) {
      case 'success':
      case 'degraded': {
        const step = planRollbackPath(d, previousVersion, previousImageInCatalogue);
        if (step.path === 'field-action') plan.fieldAction.push(d.id);
        else plan.rollback.push(step);
        break;
      }
      case 'brick':
        plan.fieldAction.push(d.id);
        break;
      case 'reverted':
      case 'transfer-failure':
        plan.untouched.push(d.id);
        break;
      case 'unknown':
      case 'pending':
        plan.pending.push(d.id);
        break;
    }
  }
  // Activations first: they are cheap and fast; downloads queue behind them under the rate caps.
  plan.rollback.sort((a, b) =>
    a.path === b.path ? (a.deviceId < b.deviceId ? -1 : 1) : a.path === 'activate-previous-bank' ? -1 : 1,
  );
  return plan;
}

/** How well the rollback itself went, for the report. */
export function rollbackSuccessRate(results: ReadonlyMap<string, 'done' | 'failed' | 'expired'>): {
  attempted: number;
  done: number;
  rate: number;
} {
  let done = 0;
  for (const r of results.values()) if (r === 'done') done++;
  const attempted = results.size;
  return { attempted, done, rate: attempted > 0 ? done / attempted : 1 };
}
