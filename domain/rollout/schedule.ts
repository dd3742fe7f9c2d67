/**
 * Schedule estimate for a dry run: each wave dispatches at the per-minute cap and then waits for
 * its slowest outcome (the outcome timeout) before the gate may open the next one. An upper-bound
 * style estimate: promotion can shorten it, maintenance windows and approvals lengthen it.
 */
import type { PlannedWave } from './waves.js';

export interface WaveEstimate {
  wave: number;
  stage: number;
  devices: number;
  startMinute: number;
  dispatchMinutes: number;
  settledMinute: number;
}

export function estimateSchedule(
  waves: readonly Pick<PlannedWave, 'wave' | 'stage' | 'deviceIds'>[],
  perMinute: number,
  outcomeTimeoutMinutes: number,
): { waves: WaveEstimate[]; totalMinutes: number } {
  let t = 0;
  const out: WaveEstimate[] = [];
  for (const w of waves) {
    const dispatchMinutes = Math.ceil(w.deviceIds.length / perMinute);
    const settled = t + dispatchMinutes + outcomeTimeoutMinutes;
    out.push({
      wave: w.wave,
      stage: w.stage,
      devices: w.deviceIds.length,
      startMinute: t,
      dispatchMinutes,
      settledMinute: settled,
    });
    t = settled;
  }
  return { waves: out, totalMinutes: t };
}
