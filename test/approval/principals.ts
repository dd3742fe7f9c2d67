import type { Principal } from '../../domain/approval/identity.js';
import type { Proposer } from '../../domain/approval/rules.js';

/** The cast of the approval tests. */
export const alice: Principal = {
  id: 'id-alice',
  name: 'alice',
  kind: 'user',
  roles: ['operator', 'approver'],
};
export const bob: Principal = { id: 'id-bob', name: 'bob', kind: 'user', roles: ['approver'] };
export const carol: Principal = { id: 'id-carol', name: 'carol', kind: 'user', roles: ['approver'] };
export const vic: Principal = { id: 'id-vic', name: 'vic', kind: 'user', roles: ['viewer', 'operator'] };
/** A service identity; even if it somehow carried the approver role it must not decide. */
export const planner: Principal = {
  id: 'id-planner',
  name: 'planner',
  kind: 'service',
  roles: ['operator', 'approver'],
};

export const asProposer = (p: Principal): Proposer => ({ id: p.id, name: p.name, kind: p.kind });
