import { describe, expect, it } from 'vitest';
import type { Outcome } from './outcome.js';
import { type RollbackDevice, planAbort, planRollbackPath, rollbackSuccessRate } from './rollback.js';

describe('rollback planning', () => {
  it('prefers activating the old bank, then a re-download, then field action', () => {
    const dual: RollbackDevice = { id: 'a', stratum: 's', dualBank: true, inactiveBankVersion: '1.0' };
    const dualOverwritten: RollbackDevice = {
      id: 'b',
      stratum: 's',
      dualBank: true,
      inactiveBankVersion: '0.9',
    };
    const single: RollbackDevice = { id: 'c', stratum: 's', dualBank: false };
    expect(planRollbackPath(dual, '1.0', true).path).toBe('activate-previous-bank');
    expect(planRollbackPath(dualOverwritten, '1.0', true).path).toBe('download-previous');
    expect(planRollbackPath(single, '1.0', true).path).toBe('download-previous');
    expect(planRollbackPath(single, '1.0', false).path).toBe('field-action');
  });

  it('on abort rolls back upgraded reachable devices of halted strata and lists bricks', () => {
    const devices: RollbackDevice[] = [
      { id: 'ok1', stratum: 'bad', dualBank: false },
      { id: 'ok2', stratum: 'bad', dualBank: true, inactiveBankVersion: '1.0' },
      { id: 'deg', stratum: 'bad', dualBank: false },
      { id: 'brk', stratum: 'bad', dualBank: true, inactiveBankVersion: '1.0' },
      { id: 'rev', stratum: 'bad', dualBank: true, inactiveBankVersion: '2.0' },
      { id: 'pend', stratum: 'bad', dualBank: false },
      { id: 'never', stratum: 'bad', dualBank: false },
      { id: 'other', stratum: 'good', dualBank: false },
    ];
    const outcomes = new Map<string, Outcome>([
      ['ok1', 'success'],
      ['ok2', 'success'],
      ['deg', 'degraded'],
      ['brk', 'brick'],
      ['rev', 'reverted'],
      ['pend', 'pending'],
      ['other', 'success'],
    ]);
    const plan = planAbort(devices, outcomes, ['bad'], '1.0', true);
    expect(plan.rollback.map((s) => [s.deviceId, s.path])).toEqual([
      ['ok2', 'activate-previous-bank'],
      ['deg', 'download-previous'],
      ['ok1', 'download-previous'],
    ]);
    expect(plan.fieldAction).toEqual(['brk']);
    expect(plan.untouched).toEqual(['rev']);
    expect(plan.pending).toEqual(['pend']);
  });

  it('measures the rollback itself', () => {
    const r = rollbackSuccessRate(
      new Map([
        ['a', 'done'],
        ['b', 'failed'],
        ['c', 'done'],
        ['d', 'expired'],
      ] as const),
    );
    expect(r).toEqual({ attempted: 4, done: 2, rate: 0.5 });
  });
});
