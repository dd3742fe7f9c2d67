import { and, asc, desc, eq, isNull, lte, or, sql } from 'drizzle-orm';
import type { Decision, PrecedenceRule } from '../domain/profiles/precedence.js';
import { DEFAULT_RULES, PrecedenceOrder } from '../domain/profiles/precedence.js';
import type { Profile, ProfileSpec } from '../domain/profiles/profile.js';
import { appendAudit } from './audit.js';
import type { Db } from './client.js';
import { profileDecisions, profileSettings, profiles, profileVersions } from './schema/profiles.js';

/**
 * Profile storage with history. Every write bumps the version, appends the full version to
 * `profile_versions` and an audit entry, in one transaction; a stale `expectedVersion` changes nothing.
 */

export type ProfileRow = typeof profiles.$inferSelect;
export interface StoredProfile extends Profile {
  kind: 'profile' | 'override';
  changeRequestId?: string;
  updatedBy: string;
}

export class ProfileStoreError extends Error {
  constructor(
    readonly code: 'not_found' | 'exists' | 'version_conflict' | 'invalid',
    message: string,
  ) {
    super(message);
    this.name = 'ProfileStoreError';
  }
}

type Actor = { id: string; kind: 'user' | 'service' | 'system' };

export function toProfile(r: ProfileRow): StoredProfile {
  return {
    id: r.id,
    name: r.id,
    ...(r.description ? { description: r.description } : {}),
    selector: r.selector,
    parameters: r.parameters,
    priority: r.priority,
    owner: r.owner,
    ...(r.validFrom ? { validFrom: r.validFrom } : {}),
    ...(r.validUntil ? { validUntil: r.validUntil } : {}),
    version: r.version,
    updatedAt: r.updatedAt,
    kind: r.kind as StoredProfile['kind'],
    ...(r.changeRequestId ? { changeRequestId: r.changeRequestId } : {}),
    updatedBy: r.updatedBy,
  };
}

function specJson(p: StoredProfile): Record<string, unknown> {
  return JSON.parse(JSON.stringify(p)) as Record<string, unknown>;
}

export async function getProfile(db: Db, id: string): Promise<StoredProfile | undefined> {
  const [r] = await db.select().from(profiles).where(eq(profiles.id, id));
  return r ? toProfile(r) : undefined;
}

export async function listProfiles(db: Db): Promise<StoredProfile[]> {
  return (await db.select().from(profiles).orderBy(asc(profiles.id))).map(toProfile);
}

export async function profileHistory(db: Db, id: string) {
  return db
    .select()
    .from(profileVersions)
    .where(eq(profileVersions.profileId, id))
    .orderBy(asc(profileVersions.version));
}

export async function putProfile(
  db: Db,
  spec: ProfileSpec,
  actor: Actor,
  opts: {
    mode: 'create' | 'update';
    expectedVersion?: number;
    kind?: 'profile' | 'override';
    changeRequestId?: string;
  },
): Promise<StoredProfile> {
  return db.transaction(async (tx) => {
    const [cur] = await tx.select().from(profiles).where(eq(profiles.id, spec.name)).for('update');
    if (opts.mode === 'create' && cur) throw new ProfileStoreError('exists', `profile ${spec.name} exists`);
    if (opts.mode === 'update' && !cur) throw new ProfileStoreError('not_found', `no profile ${spec.name}`);
    if (cur && opts.expectedVersion !== undefined && cur.version !== opts.expectedVersion)
      throw new ProfileStoreError(
        'version_conflict',
        `profile ${spec.name} is at version ${cur.version}, not ${opts.expectedVersion}`,
      );
    // Versions continue across delete and re-create, so history never has two version 1s.
    const last = await tx
      .select({ v: profileVersions.version })
      .from(profileVersions)
      .where(eq(profileVersions.profileId, spec.name))
      .orderBy(desc(profileVersions.version))
      .limit(1);
    const version = (last[0]?.v ?? 0) + 1;
    const row = {
      id: spec.name,
      description: spec.description ?? null,
      selector: spec.selector,
      parameters: spec.parameters,
      priority: spec.priority,
      owner: spec.owner,
      validFrom: spec.validFrom ?? null,
      validUntil: spec.validUntil ?? null,
      kind: opts.kind ?? cur?.kind ?? 'profile',
      changeRequestId: opts.changeRequestId ?? cur?.changeRequestId ?? null,
      version,
      updatedBy: actor.id,
      updatedAt: new Date(),
    };
    const [written] = cur
      ? await tx.update(profiles).set(row).where(eq(profiles.id, spec.name)).returning()
      : await tx.insert(profiles).values(row).returning();
    const p = toProfile(written as ProfileRow);
    const action = cur ? 'updated' : 'created';
    await tx
      .insert(profileVersions)
      .values({ profileId: p.id, version, action, spec: specJson(p), actor: actor.id });
    await appendAudit(tx, {
      actor,
      action: `profile.${action}`,
      subject: { kind: 'profile', id: p.id },
      data: {
        version,
        kind: p.kind,
        ...(p.changeRequestId ? { changeRequestId: p.changeRequestId } : {}),
        paths: p.parameters.map((x) => x.path),
        ...(cur
          ? {
              released: cur.parameters
                .map((x) => x.path)
                .filter((x) => !p.parameters.some((y) => y.path === x)),
            }
          : {}),
      },
    });
    return p;
  });
}

export async function deleteProfile(
  db: Db,
  id: string,
  actor: Actor,
  expectedVersion?: number,
): Promise<number> {
  return db.transaction(async (tx) => {
    const [cur] = await tx.select().from(profiles).where(eq(profiles.id, id)).for('update');
    if (!cur) throw new ProfileStoreError('not_found', `no profile ${id}`);
    if (expectedVersion !== undefined && cur.version !== expectedVersion)
      throw new ProfileStoreError(
        'version_conflict',
        `profile ${id} is at version ${cur.version}, not ${expectedVersion}`,
      );
    const version = cur.version + 1;
    await tx.delete(profiles).where(eq(profiles.id, id));
    await tx
      .insert(profileVersions)
      .values({ profileId: id, version, action: 'deleted', spec: specJson(toProfile(cur)), actor: actor.id });
    await appendAudit(tx, {
      actor,
      action: 'profile.deleted',
      subject: { kind: 'profile', id },
      data: { version, released: cur.parameters.map((x) => x.path) },
    });
    return version;
  });
}

/** Profiles in force at `now` (expired overrides and not-yet-valid profiles excluded). */
export async function activeProfiles(db: Db, now: Date): Promise<StoredProfile[]> {
  const rows = await db
    .select()
    .from(profiles)
    .where(
      and(
        or(isNull(profiles.validFrom), lte(profiles.validFrom, now)),
        or(isNull(profiles.validUntil), sql`${profiles.validUntil} > ${now}`),
      ),
    )
    .orderBy(asc(profiles.id));
  return rows.map(toProfile);
}

export async function precedenceRules(db: Db): Promise<PrecedenceRule[]> {
  const [r] = await db.select().from(profileSettings);
  return r ? PrecedenceOrder.parse(r.rules) : [...DEFAULT_RULES];
}

export async function setPrecedenceRules(db: Db, rules: PrecedenceRule[], actor: Actor): Promise<void> {
  const parsed = PrecedenceOrder.parse(rules);
  await db.transaction(async (tx) => {
    await tx
      .insert(profileSettings)
      .values({ id: true, rules: parsed })
      .onConflictDoUpdate({ target: profileSettings.id, set: { rules: parsed, updatedAt: sql`now()` } });
    await appendAudit(tx, {
      actor,
      action: 'profile.precedence_set',
      subject: { kind: 'profile_settings', id: 'precedence' },
      data: { rules: parsed },
    });
  });
}

export async function decisions(db: Db): Promise<Decision[]> {
  const rows = await db.select().from(profileDecisions);
  return rows.map((r) => ({ path: r.path, profiles: r.profiles, winner: r.winner, decidedBy: r.decidedBy }));
}

/** Records an approved resolution and audits it; the same (path, profiles) is decided once (idempotent). */
export async function recordDecision(
  db: Db,
  d: {
    path: string;
    profiles: string[];
    winner: string;
    decidedBy: string[];
    proposedBy: { id: string; kind: 'user' | 'service' | 'system' };
    rationale?: string;
    approvalRequestId?: string;
    idempotencyKey: string;
  },
): Promise<void> {
  const sorted = [...d.profiles].sort();
  await db.transaction(async (tx) => {
    await tx
      .insert(profileDecisions)
      .values({
        path: d.path,
        profiles: sorted,
        winner: d.winner,
        decidedBy: d.decidedBy.join(','),
        proposedBy: d.proposedBy.id,
        proposerKind: d.proposedBy.kind,
        rationale: d.rationale ?? null,
        approvalRequestId: d.approvalRequestId ?? null,
      })
      .onConflictDoUpdate({
        target: [profileDecisions.path, profileDecisions.profiles],
        set: {
          winner: d.winner,
          decidedBy: d.decidedBy.join(','),
          proposedBy: d.proposedBy.id,
          proposerKind: d.proposedBy.kind,
          rationale: d.rationale ?? null,
          approvalRequestId: d.approvalRequestId ?? null,
          at: sql`now()`,
        },
      });
    await appendAudit(tx, {
      actor: d.proposedBy,
      action: 'profile.conflict_decided',
      subject: { kind: 'profile_field', id: d.path },
      data: {
        profiles: sorted,
        winner: d.winner,
        approvers: d.decidedBy,
        ...(d.rationale ? { rationale: d.rationale } : {}),
        ...(d.approvalRequestId ? { approvalRequestId: d.approvalRequestId } : {}),
      },
      idempotencyKey: d.idempotencyKey,
    });
  });
}
