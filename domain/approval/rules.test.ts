import { describe, expect, it } from 'vitest';
import type { Principal } from './identity.js';
import { hasRole, mayDecideApprovals } from './identity.js';
import {
  type ApprovalRequest,
  type ApprovalState,
  applyApproval,
  approvalsCount,
  checkApproval,
  expireApproval,
  initialApprovalState,
  revisePlan,
} from './rules.js';

const h1 = 'a'.repeat(64);
const h2 = 'b'.repeat(64);
const alice: Principal = { id: 'u-alice', name: 'alice', kind: 'user', roles: ['operator', 'approver'] };
const bob: Principal = { id: 'u-bob', name: 'bob', kind: 'user', roles: ['approver'] };
const carol: Principal = { id: 'u-carol', name: 'carol', kind: 'user', roles: ['admin'] };
const vic: Principal = { id: 'u-vic', name: 'vic', kind: 'user', roles: ['viewer'] };
const planner: Principal = { id: 's-planner', name: 'planner', kind: 'service', roles: ['approver'] };

const start = (required = 2): ApprovalState =>
  initialApprovalState({
    proposer: { id: alice.id, name: 'alice', kind: 'user' },
    planHash: h1,
    requiredApprovals: required,
    expiresAt: 10_000,
  });
const req = (who: Principal, over: Partial<ApprovalRequest> = {}): ApprovalRequest => ({
  approvalId: `${who.name}-vote-1`,
  approver: who,
  decision: 'approve',
  planHash: h1,
  ...over,
});
const code = (s: ApprovalState, r: ApprovalRequest, now = 0) => {
  const c = checkApproval(s, r, now);
  return c.ok ? (c.duplicate ? 'duplicate' : 'ok') : c.code;
};

describe('roles', () => {
  it('treats admin as every role and any role as viewer', () => {
    expect(hasRole(carol, 'approver')).toBe(true);
    expect(hasRole(vic, 'viewer')).toBe(true);
    expect(hasRole(bob, 'viewer')).toBe(true);
    expect(hasRole(bob, 'operator')).toBe(false);
    expect(hasRole({ roles: [] }, 'viewer')).toBe(false);
  });
  it('never lets a service identity decide, whatever its roles', () => {
    expect(mayDecideApprovals(planner)).toBe(false);
    expect(mayDecideApprovals(bob)).toBe(true);
    expect(mayDecideApprovals(vic)).toBe(false);
  });
});

describe('approval rules', () => {
  it('refuses the proposer, service identities and people without the approver role', () => {
    const s = start();
    expect(code(s, req(alice))).toBe('self_approval');
    expect(code(s, req(planner))).toBe('service_identity');
    expect(code(s, req(vic))).toBe('role_required');
    expect(code(s, req(bob))).toBe('ok');
    expect(code(s, req(carol))).toBe('ok');
  });

  it('needs as many distinct approvers as the policy requires', () => {
    let s = applyApproval(start(2), req(bob), 1);
    expect(s.status).toBe('pending');
    expect(code(s, req(bob, { approvalId: 'bob-vote-2' }))).toBe('already_decided_by_approver');
    s = applyApproval(s, req(carol), 2);
    expect(s.status).toBe('approved');
    expect(approvalsCount(s)).toBe(2);
    expect(code(s, req({ ...vic, id: 'u-x', roles: ['approver'] }))).toBe('not_pending');
  });

  it('is approved at once when the policy requires no approval', () => {
    expect(start(0).status).toBe('approved');
    expect(() => start(-1)).toThrow(RangeError);
  });

  it('counts a repeated approval id once and refuses it for another vote', () => {
    const s = applyApproval(start(2), req(bob), 1);
    expect(code(s, req(bob))).toBe('duplicate');
    expect(code(s, req(carol, { approvalId: 'bob-vote-1' }))).toBe('approval_id_conflict');
    expect(code(s, req(bob, { decision: 'reject' }))).toBe('approval_id_conflict');
  });

  it('binds votes to the plan hash: a new plan voids them, an old hash is refused', () => {
    let s = applyApproval(start(2), req(bob), 1);
    s = revisePlan(s, h2);
    expect(s).toMatchObject({ planHash: h2, planRevision: 1, votes: [] });
    expect(approvalsCount(s)).toBe(0);
    expect(code(s, req(carol))).toBe('plan_changed');
    // bob's old vote stays void, even re-sent under its old id
    expect(code(s, req(bob))).toBe('duplicate');
    expect(approvalsCount(s)).toBe(0);
    expect(code(s, req(bob, { approvalId: 'bob-vote-2', planHash: h2 }))).toBe('ok');
    expect(revisePlan(s, h2)).toBe(s);
  });

  it('closes the window at expiry and rejects on a rejection', () => {
    const s = start(1);
    expect(code(s, req(bob), 10_000)).toBe('window_expired');
    expect(expireApproval(s).status).toBe('expired');
    const rejected = applyApproval(s, req(bob, { decision: 'reject' }), 1);
    expect(rejected.status).toBe('rejected');
    expect(() => revisePlan(rejected, h2)).toThrow(/rejected/);
  });
});
