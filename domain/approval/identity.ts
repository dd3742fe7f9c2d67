import { z } from 'zod';

/**
 * Roles are sets, not a ladder: an approver need not be an operator. `admin` implies every role;
 * any role implies `viewer`.
 */
export const roleSchema = z.enum(['viewer', 'operator', 'approver', 'admin']);
export type Role = z.infer<typeof roleSchema>;
export const ROLES = roleSchema.options;

/** People are users; the planner and reconciliation run as service identities (propose, never approve). */
export const identityKindSchema = z.enum(['user', 'service']);
export type IdentityKind = z.infer<typeof identityKindSchema>;

/** Identity names are stable, printable handles (they appear in audit entries and inboxes). */
export const identityNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-z0-9][a-z0-9._@-]*$/,
    'lower-case letters, digits and . _ @ - (starting with a letter or digit)',
  );

/** Who is acting, as authenticated by the API and passed to workflows with every decision. */
export const principalSchema = z
  .object({
    id: z.string().min(1),
    name: identityNameSchema,
    kind: identityKindSchema,
    roles: z.array(roleSchema),
  })
  .strict();
export type Principal = z.infer<typeof principalSchema>;

export function hasRole(p: Pick<Principal, 'roles'>, role: Role): boolean {
  if (p.roles.includes('admin') || p.roles.includes(role)) return true;
  return role === 'viewer' && p.roles.length > 0;
}

/** Only people with the approver (or admin) role decide; service identities never do, whatever roles they hold. */
export function mayDecideApprovals(p: Pick<Principal, 'kind' | 'roles'>): boolean {
  return p.kind === 'user' && hasRole(p, 'approver');
}

/** Roles a service identity may hold: the ones that propose and read, never the ones that decide. */
export const SERVICE_ROLES: readonly Role[] = ['viewer', 'operator'];
