import { sql } from 'drizzle-orm';
import { boolean, check, index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Users and service identities (planner, reconciliation). Roles are authoritative here, not in a
 * token: a JWT only says who someone is. A service identity can never hold a deciding role.
 */
export const identities = pgTable(
  'identities',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    name: text('name').notNull().unique(),
    kind: text('kind').notNull(),
    roles: text('roles').array().notNull().default(sql`'{}'::text[]`),
    displayName: text('display_name'),
    /** `sub` of the OIDC provider's tokens for this identity, when JWT login is configured. */
    oidcSubject: text('oidc_subject').unique(),
    disabled: boolean('disabled').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check('identities_kind_ck', sql`${t.kind} in ('user', 'service')`),
    check('identities_roles_ck', sql`${t.roles} <@ array['viewer', 'operator', 'approver', 'admin']::text[]`),
    check(
      'identities_service_roles_ck',
      sql`${t.kind} = 'user' or not (${t.roles} && array['approver', 'admin']::text[])`,
    ),
  ],
);

/** Bearer tokens: only the sha-256 of the secret is stored; the prefix lets people tell tokens apart. */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    identityId: uuid('identity_id')
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    prefix: text('prefix').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [index('api_tokens_identity_idx').on(t.identityId)],
);
