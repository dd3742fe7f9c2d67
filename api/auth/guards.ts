import type { FastifyRequest } from 'fastify';
import { hasRole, type Principal, type Role } from '../../domain/approval/identity.js';
import { HttpError } from '../errors.js';

/** The caller of an authenticated route (the auth hook guarantees one; this narrows the type). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new HttpError(401, 'unauthenticated', 'a bearer token is required');
  return req.principal;
}

/** Route-level check, as a preHandler: `{ preHandler: requireRole('approver') }`. Any listed role suffices. */
export function requireRole(...roles: Role[]) {
  return async (req: FastifyRequest): Promise<void> => {
    const p = principalOf(req);
    if (!roles.some((r) => hasRole(p, r))) {
      throw new HttpError(403, 'forbidden', `${p.name} needs the ${roles.join(' or ')} role`);
    }
  };
}

/**
 * Object-level check: the object belongs to the caller, or the caller holds `overrideRole`.
 * Answers 404 rather than 403 when `hide` is set, so ids of others' objects cannot be probed.
 */
export function assertOwnerOr(
  p: Principal,
  ownerId: string,
  overrideRole: Role,
  opts: { what: string; hide?: boolean },
): void {
  if (p.id === ownerId || hasRole(p, overrideRole)) return;
  if (opts.hide) throw new HttpError(404, 'not_found', `no ${opts.what} with that id`);
  throw new HttpError(403, 'forbidden', `${opts.what} belongs to someone else`);
}
