import { z } from 'zod';

/** Boundary types of the policy decision: what goes into data.fleetbrain.decision and what comes out. */

export const RiskClass = z.enum(['low', 'medium', 'high', 'critical']);
export type RiskClass = z.infer<typeof RiskClass>;

export const Weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
export type Weekday = z.infer<typeof Weekday>;

export const Actor = z.strictObject({
  id: z.string().min(1),
  kind: z.enum(['user', 'service']),
  roles: z.array(z.string()),
});
export type Actor = z.infer<typeof Actor>;

/** A TR-181 parameter path with its new value; paths are concrete (no wildcards or search expressions). */
export const ParameterChange = z.strictObject({
  path: z.string().min(1),
  value: z.union([z.string(), z.number(), z.boolean()]),
});

export const FirmwareCampaign = z.strictObject({
  version: z.string().min(1),
  url: z.string().min(1),
  checksum: z.string().min(1),
  size: z.number().int().nonnegative().optional(),
});

export const RolloutPlan = z.strictObject({
  first_wave_size: z.number().int().nonnegative(),
  waves: z.number().int().nonnegative(),
  brick_rate_threshold: z.number().min(0).max(1),
});

export const Change = z
  .strictObject({
    id: z.string().optional(),
    kind: z.enum(['parameters', 'firmware']),
    parameters: z.array(ParameterChange).optional(),
    add_objects: z.array(z.string().min(1)).optional(),
    delete_objects: z.array(z.string().min(1)).optional(),
    firmware: FirmwareCampaign.optional(),
    rollout: RolloutPlan.optional(),
    /** Explicit intent to set credentials; honoured only for a human secrets_admin proposer. */
    sensitive_allowed: z.boolean().optional(),
  })
  // The same shape checks the policy makes (input.rego), so both reject the same inputs.
  .refine((c) => c.kind !== 'firmware' || c.firmware !== undefined, {
    message: 'a firmware campaign needs change.firmware',
    path: ['firmware'],
  })
  .refine(
    (c) =>
      c.kind !== 'parameters' ||
      (c.parameters?.length ?? 0) + (c.add_objects?.length ?? 0) + (c.delete_objects?.length ?? 0) > 0,
    { message: 'the change sets, adds or deletes nothing', path: ['parameters'] },
  );

const isCount = (n: number) => Number.isInteger(n) && n >= 0;

/**
 * Counts in the (large) strata and topology arrays, checked in one pass: per-field `.int()`
 * checks cost more than the policy evaluation itself at 200 elements.
 */
function countsValid(items: Array<{ count: number; total?: number }>, ctx: z.RefinementCtx): void {
  items.forEach((t, i) => {
    if (!isCount(t.count))
      ctx.addIssue({ code: 'custom', message: 'not a non-negative integer', path: [i, 'count'] });
    if (t.total === undefined) return;
    if (!isCount(t.total))
      ctx.addIssue({ code: 'custom', message: 'not a non-negative integer', path: [i, 'total'] });
    else if (t.count > t.total)
      ctx.addIssue({ code: 'custom', message: 'count exceeds total', path: [i, 'count'] });
  });
}

export const Cohort = z
  .strictObject({
    size: z.number().int().nonnegative(),
    fleet_size: z.number().int().positive(),
    /** Device strata (e.g. model × firmware × region) with the cohort's device count in each. */
    strata: z.array(z.strictObject({ key: z.string(), count: z.number() })).superRefine(countsValid),
    /** Topology elements (region, OLT, PON port, BNG…): cohort devices on it and all devices on it. */
    topology: z
      .array(z.strictObject({ kind: z.string(), id: z.string(), count: z.number(), total: z.number() }))
      .superRefine(countsValid),
  })
  .refine((c) => c.size <= c.fleet_size, { message: 'cohort size exceeds fleet size', path: ['size'] });

export const DeviceGroup = z.strictObject({
  vendor: z.string().optional(),
  model: z.string(),
  firmware_version: z.string(),
  count: z.number().int().nonnegative(),
});

export const ValidationSummary = z.strictObject({
  ok: z.boolean(),
  errors: z.number().int().nonnegative(),
  warnings: z.number().int().nonnegative().optional(),
  unknown_models: z.number().int().nonnegative(),
  fallback_schema: z.boolean(),
});

/** One affected time zone's local time, computed in TypeScript (see local-time.ts). */
export const LocalTime = z.strictObject({
  time_zone: z.string(),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  time: z.string().regex(/^\d{2}:\d{2}$/),
  weekday: Weekday,
  minute_of_day: z.number().int().min(0).max(1439),
  device_count: z.number().int().nonnegative(),
});
export type LocalTime = z.infer<typeof LocalTime>;

export const Times = z.strictObject({ utc: z.iso.datetime(), local: z.array(LocalTime) });

export const Waiver = z.strictObject({ code: z.string(), reason: z.string() });

export const PolicyInput = z.strictObject({
  action: z.enum(['propose', 'approve', 'execute']),
  /** Who is acting now: the proposer when proposing, the approver when approving. */
  actor: Actor,
  proposer: Actor,
  change: Change,
  cohort: Cohort,
  devices: z.array(DeviceGroup),
  validation: ValidationSummary,
  /** The proposer's own risk class: it can raise the computed class, never lower it. */
  requested_risk_class: RiskClass.optional(),
  waivers: z.array(Waiver).optional(),
  times: Times,
});
export type PolicyInput = z.infer<typeof PolicyInput>;

/**
 * The members that change from one decision about a plan to the next; the plan's own members
 * (change, cohort, devices) are validated once per plan (see prepared-input.ts).
 */
export const PolicyInputPerDecision = PolicyInput.omit({ change: true, cohort: true, devices: true });
export type PolicyInputPerDecision = z.infer<typeof PolicyInputPerDecision>;

export const DenyReason = z.strictObject({
  code: z.string(),
  message: z.string(),
  path: z.string().optional(),
});
export type DenyReason = z.infer<typeof DenyReason>;

export const RiskFactor = z.strictObject({ source: z.string(), class: RiskClass, detail: z.string() });

export const Constraints = z.union([
  z.strictObject({
    max_cohort_size: z.number(),
    max_fleet_share: z.number(),
    max_topology_share: z.number(),
    max_first_wave_size: z.number(),
    min_first_wave_size: z.number(),
    min_waves: z.number(),
    brick_rate_threshold: z.strictObject({ min: z.number(), max: z.number() }),
    maintenance_window_required: z.boolean(),
    fleet_wide: z.boolean(),
    waived: z.array(z.string()),
  }),
  // Empty when the policy data has no caps for the class (the decision then denies).
  z.strictObject({}),
]);

export const PolicyDecision = z.strictObject({
  allow: z.boolean(),
  deny: z.array(DenyReason),
  risk_class: RiskClass,
  require_approvals: z.number().int().nonnegative(),
  constraints: Constraints,
  risk_factors: z.array(RiskFactor),
});
export type PolicyDecision = z.infer<typeof PolicyDecision>;

/** Caps, approvals and rollout bounds for one risk class. */
export const RiskClassCaps = z.strictObject({
  max_cohort_size: z.number().int().nonnegative(),
  max_fleet_share: z.number().min(0).max(1),
  max_topology_share: z.number().min(0).max(1),
  approvals: z.number().int().nonnegative(),
  max_first_wave_size: z.number().int().positive(),
  min_waves: z.number().int().positive(),
  brick_rate_min: z.number().min(0).max(1),
  brick_rate_max: z.number().min(0).max(1),
  maintenance_window_required: z.boolean(),
});
export type RiskClassCaps = z.infer<typeof RiskClassCaps>;

export const FirmwareImageStatus = z.enum(['draft', 'approved', 'deprecated', 'revoked']);

export const CatalogueEntry = z.strictObject({
  version: z.string(),
  models: z.array(z.string()),
  allowed_from_versions: z.array(z.string()),
  url: z.string(),
  size: z.number().int().nonnegative(),
  checksum: z.string(),
  status: FirmwareImageStatus,
});
export type CatalogueEntry = z.infer<typeof CatalogueEntry>;

export const MaintenanceWindow = z.strictObject({
  name: z.string(),
  days: z.array(Weekday),
  start_minute: z.number().int().min(0).max(1439),
  end_minute: z.number().int().min(0).max(1440),
});
export type MaintenanceWindow = z.infer<typeof MaintenanceWindow>;

/** The policy data document (data.policy_data), generated from tables; its hash is part of the bundle hash. */
export const PolicyData = z.strictObject({
  firmware_catalogue: z.array(CatalogueEntry),
  maintenance_windows: z.array(MaintenanceWindow),
  risk_classes: z.strictObject({
    low: RiskClassCaps,
    medium: RiskClassCaps,
    high: RiskClassCaps,
    critical: RiskClassCaps,
  }),
  /** Actor ids that are the planner even without the planner role. */
  planner_ids: z.array(z.string()),
});
export type PolicyData = z.infer<typeof PolicyData>;
