import { z } from 'zod';

/** Suite and fixture files: the single source of truth for what a case is and what it expects. */

export const FleetQuestionCase = z.strictObject({
  id: z.string().regex(/^[a-z0-9_-]+$/),
  question: z.string().min(1),
  tags: z.array(z.string()),
  /** Second review: why the gold or the question changed (only on cases that changed). */
  reviewNote: z.string().optional(),
  expect: z.discriminatedUnion('kind', [
    /** The gold query, in the same draft form the model writes (mentions resolved by code). */
    z.strictObject({ kind: z.literal('answer'), query: z.record(z.string(), z.unknown()) }),
    z.strictObject({ kind: z.literal('clarify') }),
    z.strictObject({ kind: z.literal('change_request') }),
  ]),
});
export type FleetQuestionCase = z.infer<typeof FleetQuestionCase>;

export const FleetQuestionSuite = z.strictObject({
  suite: z.literal('fleet-questions'),
  description: z.string(),
  fixtureFleet: z.literal('fixture-fleet-v1'),
  now: z.iso.datetime(),
  timeZone: z.string(),
  review: z.string(),
  cases: z.array(FleetQuestionCase).min(1),
});
export type FleetQuestionSuite = z.infer<typeof FleetQuestionSuite>;

const Change = z.strictObject({
  path: z.string(),
  value: z.union([z.string(), z.number(), z.boolean()]).optional(),
});

export const PlannerCase = z.strictObject({
  id: z.string().regex(/^[a-z0-9_-]+$/),
  intent: z.string(),
  tags: z.array(z.string()),
  /** The operator's scope (fleet selector) and the devices shown to the model. */
  scope: z.record(z.string(), z.unknown()),
  scopeDescription: z.string(),
  devices: z.array(z.record(z.string(), z.unknown())),
  expect: z.strictObject({
    /**
     * propose: an accepted proposal with the required changes; no_change: no proposal (abstention or
     * the gate stopping it); either: both are right (an abstention, or a proposal with the required
     * changes, nothing forbidden and no gate escape).
     */
    outcome: z.enum(['propose', 'no_change', 'either']),
    required: z.array(Change).default([]),
    /** Path prefixes no accepted proposal may touch. */
    forbidden: z.array(z.string()).default([]),
  }),
  injection: z.string().optional(),
  /** Second review: why the expectation or the intent changed (only on cases that changed). */
  reviewNote: z.string().optional(),
});
export type PlannerCase = z.infer<typeof PlannerCase>;

export const PlannerSuite = z.strictObject({
  suite: z.literal('planner'),
  description: z.string(),
  review: z.string(),
  cases: z.array(PlannerCase).min(1),
});
export type PlannerSuite = z.infer<typeof PlannerSuite>;

export const FixtureFile = z.strictObject({
  suite: z.string(),
  label: z.string(),
  replies: z.record(z.string(), z.unknown()),
});
export type FixtureFile = z.infer<typeof FixtureFile>;
