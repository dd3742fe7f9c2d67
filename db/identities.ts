import { createHash, randomBytes } from 'node:crypto';
import { and, asc, eq, gt, isNull, or } from 'drizzle-orm';
import type { Principal, Role } from '../domain/approval/identity.js';
import { SERVICE_ROLES } from '../domain/approval/identity.js';
import type { Db } from './client.js';
import { apiTokens, identities } from './schema/identity.js';

/** Identities and bearer tokens: the only code that reads or writes those tables. */

export type IdentityRow = typeof identities.$inferSelect;

/** Bearer tokens start with this, so they are recognisable in logs and secret scanners. */
export const TOKEN_PREFIX = 'fbt_';

export function hashToken(token: string): string {
  // Tokens are 256 random bits: a fast hash is enough (no dictionary to guess from), and lookups stay indexable.
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function toPrincipal(row: IdentityRow): Principal {
  return { id: row.id, name: row.name, kind: row.kind as Principal['kind'], roles: row.roles as Role[] };
}

export class IdentityError extends Error {
  override name = 'IdentityError';
  constructor(
    readonly code: 'service_role' | 'exists' | 'not_found',
    message: string,
  ) {
    super(message);
  }
}

export async function createIdentity(
  db: Db,
  input: { name: string; kind: Principal['kind']; roles: Role[]; displayName?: string; oidcSubject?: string },
): Promise<IdentityRow> {
  const roles = [...new Set(input.roles)];
  const denied = input.kind === 'service' ? roles.filter((r) => !SERVICE_ROLES.includes(r)) : [];
  if (denied.length > 0) {
    throw new IdentityError(
      'service_role',
      `service identities may not hold ${denied.join(', ')}: they never approve`,
    );
  }
  const [existing] = await db.select().from(identities).where(eq(identities.name, input.name));
  if (existing) throw new IdentityError('exists', `identity ${input.name} already exists`);
  const [row] = await db
    .insert(identities)
    .values({
      name: input.name,
      kind: input.kind,
      roles,
      displayName: input.displayName ?? null,
      oidcSubject: input.oidcSubject ?? null,
    })
    .returning();
  if (!row) throw new Error('insert returned no row');
  return row;
}

export async function findIdentity(db: Db, nameOrId: string): Promise<IdentityRow | undefined> {
  const byId = /^[0-9a-f-]{36}$/i.test(nameOrId) ? eq(identities.id, nameOrId) : undefined;
  const [row] = await db
    .select()
    .from(identities)
    .where(byId ? or(byId, eq(identities.name, nameOrId)) : eq(identities.name, nameOrId));
  return row;
}

export async function listIdentities(db: Db): Promise<IdentityRow[]> {
  return db.select().from(identities).orderBy(asc(identities.name));
}

export async function setRoles(db: Db, name: string, roles: Role[]): Promise<IdentityRow> {
  const row = await findIdentity(db, name);
  if (!row) throw new IdentityError('not_found', `no identity ${name}`);
  const unique = [...new Set(roles)];
  if (row.kind === 'service' && unique.some((r) => !SERVICE_ROLES.includes(r))) {
    throw new IdentityError('service_role', 'service identities may only be viewer or operator');
  }
  const [updated] = await db
    .update(identities)
    .set({ roles: unique, updatedAt: new Date() })
    .where(eq(identities.id, row.id))
    .returning();
  if (!updated) throw new IdentityError('not_found', `no identity ${name}`);
  return updated;
}

export async function setDisabled(db: Db, name: string, disabled: boolean): Promise<void> {
  const row = await findIdentity(db, name);
  if (!row) throw new IdentityError('not_found', `no identity ${name}`);
  await db.update(identities).set({ disabled, updatedAt: new Date() }).where(eq(identities.id, row.id));
}

/** Issues a token; the secret is returned once and only its hash is stored. */
export async function issueToken(
  db: Db,
  identityId: string,
  opts: { name: string; expiresAt?: Date },
): Promise<{ id: string; token: string; prefix: string; expiresAt: Date | null }> {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const prefix = token.slice(0, TOKEN_PREFIX.length + 6);
  const [row] = await db
    .insert(apiTokens)
    .values({
      identityId,
      name: opts.name,
      tokenHash: hashToken(token),
      prefix,
      expiresAt: opts.expiresAt ?? null,
    })
    .returning({ id: apiTokens.id, expiresAt: apiTokens.expiresAt });
  if (!row) throw new Error('insert returned no row');
  return { id: row.id, token, prefix, expiresAt: row.expiresAt };
}

export async function listTokens(db: Db, identityId: string) {
  return db
    .select({
      id: apiTokens.id,
      name: apiTokens.name,
      prefix: apiTokens.prefix,
      createdAt: apiTokens.createdAt,
      expiresAt: apiTokens.expiresAt,
      lastUsedAt: apiTokens.lastUsedAt,
      revokedAt: apiTokens.revokedAt,
    })
    .from(apiTokens)
    .where(eq(apiTokens.identityId, identityId))
    .orderBy(asc(apiTokens.createdAt));
}

export async function getToken(db: Db, tokenId: string) {
  const [row] = await db.select().from(apiTokens).where(eq(apiTokens.id, tokenId));
  return row;
}

export async function revokeToken(db: Db, tokenId: string): Promise<boolean> {
  const rows = await db
    .update(apiTokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(apiTokens.id, tokenId), isNull(apiTokens.revokedAt)))
    .returning({ id: apiTokens.id });
  return rows.length > 0;
}

/** The active identity behind a bearer token, or undefined (unknown, revoked, expired, disabled). */
export async function identityForToken(
  db: Db,
  token: string,
  now = new Date(),
): Promise<IdentityRow | undefined> {
  const [row] = await db
    .select({ identity: identities, tokenId: apiTokens.id })
    .from(apiTokens)
    .innerJoin(identities, eq(identities.id, apiTokens.identityId))
    .where(
      and(
        eq(apiTokens.tokenHash, hashToken(token)),
        isNull(apiTokens.revokedAt),
        or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now)),
        eq(identities.disabled, false),
      ),
    );
  if (!row) return undefined;
  // Best effort: a lost last-used stamp must not fail the request.
  db.update(apiTokens)
    .set({ lastUsedAt: now })
    .where(eq(apiTokens.id, row.tokenId))
    .catch(() => {});
  return row.identity;
}

export async function identityForOidcSubject(db: Db, subject: string): Promise<IdentityRow | undefined> {
  const [row] = await db
    .select()
    .from(identities)
    .where(and(eq(identities.oidcSubject, subject), eq(identities.disabled, false)));
  return row;
}
