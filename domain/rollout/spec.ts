import { z } from 'zod';

/** One step of an explicit wave plan: cumulative share of each stratum, or a cumulative device count. */
export const waveStepSchema = z.union([
  z.object({ percent: z.number().gt(0).lte(100) }).strict(),
  z.object({ count: z.number().int().positive() }).strict(),
]);
export type WaveStep = z.infer<typeof waveStepSchema>;

export const wavePlanSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('steps'),
      /** Cumulative, strictly increasing; the last step is topped up to 100 % of the cohort. */
      steps: z.array(waveStepSchema).min(1).max(64),
      /** How many leading steps are stages of the first wave (looked at separately, reported as wave 1). */
      firstWaveStages: z.number().int().min(1).default(1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('exponential'),
      /** First wave as a percentage of each stratum. */
      basePercent: z.number().gt(0).lte(100),
      /** Each wave's cumulative share is the previous one times this factor, until 100 %. */
      factor: z.number().gt(1).lte(100),
      firstWaveStages: z.number().int().min(1).default(1),
    })
    .strict(),
]);
export type WavePlan = z.infer<typeof wavePlanSchema>;

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24 h)');

/** A recurring window in the device's own local time; end before start means it crosses midnight. */
export const maintenanceWindowSchema = z
  .object({
    days: z
      .array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']))
      .min(1)
      .optional(),
    start: hhmm,
    end: hhmm,
  })
  .strict()
  .refine((w) => w.start !== w.end, { message: 'start and end must differ' });
export type MaintenanceWindow = z.infer<typeof maintenanceWindowSchema>;

export const rateCapsSchema = z
  .object({
    perMinute: z.number().int().positive().default(1000),
    perWave: z.number().int().positive().optional(),
    /** Max devices per topology element (e.g. one PON port) in one wave; spreads waves over the network. */
    perTopologyElement: z
      .object({ level: z.enum(['region', 'bng', 'olt', 'ponPort']), max: z.number().int().positive() })
      .strict()
      .optional(),
  })
  .strict();

export const gateSpecSchema = z
  .object({
    /** θ: image-attributable brick rate, as a fraction (0.005 = 0.5 %). */
    theta: z.number().gt(0).lt(0.5),
    /** 1 − family-wise false-abort rate of the gate. */
    confidence: z.number().gt(0.5).lt(1).default(0.95),
    degradedThreshold: z.number().gt(0).lt(1).default(0.01),
    revertedThreshold: z.number().gt(0).lt(1).default(0.01),
    /** Backstop: abort once this many devices are declared bricked, whatever the statistics say. */
    hardCeilingBricked: z.number().int().positive(),
    /** Inconclusive after this long pauses for a person. */
    decisionDeadlineMinutes: z
      .number()
      .int()
      .positive()
      .default(24 * 60),
    abortScope: z.enum(['failing-strata', 'all']).default('failing-strata'),
  })
  .strict();
export type GateSpec = z.infer<typeof gateSpecSchema>;

export const approvalGatesSchema = z
  .object({
    beforeStart: z.boolean().default(true),
    /** Any wave dispatching more than this many devices needs an approval first. */
    beforeWaveAbove: z.number().int().positive().optional(),
    beforeLastWave: z.boolean().default(false),
  })
  .strict();

export const notificationTargetSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }),
    events: z.array(z.enum(['halt', 'pause', 'complete', 'resume', 'wave-start'])).min(1),
    /** Name of a stored secret used to sign the payload; never the secret itself. */
    secretRef: z.string().min(1).optional(),
  })
  .strict();

export const rolloutSpecSchema = z
  .object({
    name: z.string().min(1).max(200),
    /** Catalogue id of the target image; the catalogue resolves vendor, models and version. */
    image: z.string().min(1),
    /** Fleet selector (DSL owned by fleet/); opaque here and validated there. */
    cohort: z.unknown(),
    waves: wavePlanSchema,
    rateCaps: rateCapsSchema.prefault({}),
    maintenanceWindows: z.array(maintenanceWindowSchema).default([]),
    gate: gateSpecSchema,
    /** Covers download, reboot and the CPE's session-retry backoff, not the periodic inform interval. */
    outcomeTimeoutMinutes: z
      .number()
      .int()
      .min(5)
      .max(24 * 60)
      .default(60),
    /** Time a device must stay up on the new image before it counts as success. */
    soakMinutes: z.number().int().min(0).default(15),
    /** BOOT events during the soak at or above this count mean a boot loop (degraded). */
    bootLoopBoots: z.number().int().min(2).default(3),
    approvals: approvalGatesSchema.prefault({}),
    notifications: z.array(notificationTargetSchema).default([]),
    /** Strata smaller than this are pooled (see strata.ts); default derived from θ. */
    minStratumSize: z.number().int().positive().optional(),
  })
  .strict();
export type RolloutSpec = z.infer<typeof rolloutSpecSchema>;
export type RolloutSpecInput = z.input<typeof rolloutSpecSchema>;
