import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import type { RolloutSpec } from '../domain/rollout/spec.js';
import type { PolicyEngine } from '../policies/engine.js';
import { policyTimes } from '../policies/local-time.js';
import type { PolicyInput } from '../policies/schema.js';
import { recordDecision } from '../policies/store.js';
import type { PreparedRollout, RolloutDevice, RolloutFleet, RolloutImage } from './rollout.js';

/** Who asks for the rollout (the API's principal). */
export interface RolloutActor {
  id: string;
  kind: 'user' | 'service';
  roles: string[];
}

export interface RolloutPolicyResult {
  allow: boolean;
  requiredApprovals: number;
  reasons: string[];
  decisionId: string;
  riskClass: string;
}

/**
 * The policy decision on a rollout plan: builds the policy input from the frozen-to-be cohort (strata,
 * topology shares, device groups, local times per zone), the catalogue entry and the wave plan, asks
 * the engine (OPA, in-process or server) and stores the decision with its input and bundle hashes.
 */
export function rolloutPolicyDecider(deps: {
  db: Db;
  engine: PolicyEngine;
  fleet: RolloutFleet;
  images: (id: string) => Promise<RolloutImage | undefined>;
}) {
  return async (
    rolloutId: string,
    spec: RolloutSpec,
    prepared: PreparedRollout,
    actor: RolloutActor,
    at = new Date(),
  ): Promise<RolloutPolicyResult> => {
    const img = await deps.images(spec.image);
    const cohort = await deps.fleet.resolveCohort(spec.cohort);
    const input = await policyInput(deps.db, rolloutId, spec, prepared, cohort, img, actor, at);
    const evaluated = await deps.engine.decide(input);
    const decisionId = await recordDecision(deps.db, { kind: 'rollout', id: rolloutId }, input, evaluated, {
      storeInput: true,
    });
    const d = evaluated.decision;
    return {
      allow: d.allow,
      requiredApprovals: d.require_approvals,
      reasons: d.deny.map((x) => `${x.code}: ${x.message}`),
      decisionId,
      riskClass: d.risk_class,
    };
  };
}

async function policyInput(
  db: Db,
  rolloutId: string,
  spec: RolloutSpec,
  prepared: PreparedRollout,
  cohort: RolloutDevice[],
  img: RolloutImage | undefined,
  actor: RolloutActor,
  at: Date,
): Promise<PolicyInput> {
  const fleetSize = Number(
    (await db.execute<{ n: number }>(sql`select count(*)::int as n from devices`)).rows[0]?.n ?? 0,
  );
  const groups = new Map<string, { model: string; firmware_version: string; count: number }>();
  const zones = new Map<string, number>();
  const elems = new Map<string, { kind: string; id: string; count: number }>();
  for (const d of cohort) {
    const g = groups.get(`${d.model}\u0000${d.firmware}`) ?? {
      model: d.model,
      firmware_version: d.firmware,
      count: 0,
    };
    g.count++;
    groups.set(`${d.model}\u0000${d.firmware}`, g);
    const tz = d.timeZone ?? 'UTC';
    zones.set(tz, (zones.get(tz) ?? 0) + 1);
    for (const [kind, id] of [
      ['region', d.topology?.region],
      ['olt', d.topology?.olt],
      ['pon_port', d.topology?.ponPort],
    ] as const) {
      if (!id) continue;
      const e = elems.get(`${kind}\u0000${id}`) ?? { kind, id, count: 0 };
      e.count++;
      elems.set(`${kind}\u0000${id}`, e);
    }
  }
  const totals = new Map<string, number>();
  const column = { region: 'region', olt: 'olt', pon_port: 'pon_port' } as const;
  for (const kind of ['region', 'olt', 'pon_port'] as const) {
    const ids = [...elems.values()].filter((e) => e.kind === kind).map((e) => e.id);
    if (ids.length === 0) continue;
    const rows = await db.execute<{ id: string; n: number }>(
      sql`select ${sql.raw(column[kind])} as id, count(*)::int as n from devices
          where ${sql.raw(column[kind])} in ${ids} group by 1`,
    );
    for (const r of rows.rows) totals.set(`${kind}\u0000${r.id}`, Number(r.n));
  }
  const who = { id: actor.id, kind: actor.kind, roles: actor.roles };
  return {
    action: 'propose',
    actor: who,
    proposer: who,
    change: {
      id: rolloutId,
      kind: 'firmware',
      firmware: {
        version: img?.version ?? spec.image,
        url: img?.url ?? '-',
        checksum: img?.checksum ?? '-',
        ...(img ? { size: img.fileSize } : {}),
      },
      rollout: {
        first_wave_size: prepared.waves[0]?.devices ?? 0,
        waves: prepared.waves.length,
        brick_rate_threshold: spec.gate.theta,
      },
    },
    cohort: {
      size: cohort.length,
      fleet_size: Math.max(fleetSize, cohort.length, 1),
      strata: prepared.strata.map((s) => ({ key: s.id, count: s.size })),
      topology: [...elems.entries()].map(([k, e]) => ({
        ...e,
        total: Math.max(totals.get(k) ?? 0, e.count),
      })),
    },
    devices: [...groups.values()],
    validation: { ok: true, errors: 0, unknown_models: 0, fallback_schema: false },
    times: policyTimes(
      at,
      [...zones.entries()].map(([time_zone, device_count]) => ({ time_zone, device_count })),
    ),
  };
}
