import { createIdentity, issueToken, toPrincipal } from '../../db/identities.js';
import type { Db } from '../../db/client.js';
import type { IdentityKind, Principal, Role } from '../../domain/approval/identity.js';

/** An identity with a fresh bearer token, for API tests: `server.inject({ headers: who.headers })`. */
export async function createTestIdentity(
  db: Db,
  name: string,
  roles: Role[],
  opts: { kind?: IdentityKind; oidcSubject?: string } = {},
): Promise<{ principal: Principal; token: string; headers: { authorization: string } }> {
  const row = await createIdentity(db, {
    name,
    kind: opts.kind ?? 'user',
    roles,
    ...(opts.oidcSubject ? { oidcSubject: opts.oidcSubject } : {}),
  });
  const { token } = await issueToken(db, row.id, { name: 'test' });
  return { principal: toPrincipal(row), token, headers: { authorization: `Bearer ${token}` } };
}
