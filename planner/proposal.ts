import { z } from 'zod';
import { type ParseOptions, parseSelector, type Selector, SelectorError } from '../fleet/selector.js';
import { RiskClass } from '../policies/schema.js';
import type { HandleTable } from './sanitize.js';

/**
 * The typed change set. A proposal comes from the planner (a service identity) or from a person; both
 * go through the same validation, policy decision and approval. The model's words are kept apart:
 * `rationale.origin` says who wrote it, and approvers see it last.
 */

export { RiskClass };

const Path = z.string().min(1).max(512);
export const ChangeOp = z.discriminatedUnion('op', [
  z.strictObject({
    op: z.literal('set'),
    path: Path,
    value: z.union([z.string().max(4096), z.number(), z.boolean()]),
  }),
  z.strictObject({ op: z.literal('add'), path: Path }),
  z.strictObject({ op: z.literal('delete'), path: Path }),
]);
export type ChangeOp = z.infer<typeof ChangeOp>;

/** Model output for the "change" intent: small and strict (unknown keys such as "approved" fail). */
export const PlannerProposalOutput = z.strictObject({
  kind: z.literal('proposal'),
  /** A fleet selector (fleet/selector.ts); intersected with the operator's scope in code. */
  target: z.record(z.string(), z.unknown()),
  /** Changes for every targeted device. */
  changes: z.array(ChangeOp).max(100),
  /** Per-device changes by device handle (e.g. a channel plan); handles resolve in code. */
  perDevice: z
    .array(
      z.strictObject({ device: z.string().regex(/^dev#\d+$/), changes: z.array(ChangeOp).min(1).max(50) }),
    )
    .max(1000)
    .optional(),
  rationale: z.string().max(2000),
  requestedRiskClass: RiskClass.optional(),
});
export const PlannerAbstainOutput = z.strictObject({
  kind: z.literal('abstain'),
  reason: z.string().min(1).max(1000),
});
export const PlannerOutput = z.discriminatedUnion('kind', [PlannerProposalOutput, PlannerAbstainOutput]);
export type PlannerOutput = z.infer<typeof PlannerOutput>;

export const ProposerIdentity = z.strictObject({
  id: z.string().min(1),
  kind: z.enum(['user', 'service']),
  roles: z.array(z.string()),
});
export type ProposerIdentity = z.infer<typeof ProposerIdentity>;

/** The planner proposes as this service identity; service identities never approve. */
export const PLANNER_IDENTITY: ProposerIdentity = { id: 'svc-planner', kind: 'service', roles: ['planner'] };

export interface Proposal {
  source: 'planner' | 'manual';
  proposer: ProposerIdentity;
  intent: string;
  /** The operator's scope: fixed by a person, never by the model or a device. */
  scope: Selector;
  /** What the proposer asked for. */
  target: Selector;
  /** What will be resolved: scope AND target, so a proposal can never reach outside the scope. */
  effectiveTarget: Selector;
  changes: ChangeOp[];
  perDevice: Array<{ deviceId: string; changes: ChangeOp[] }>;
  requestedRiskClass?: RiskClass;
  rationale: { origin: 'model' | 'operator'; text: string };
}

export class ProposalError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'ProposalError';
  }
}

function intersect(scope: Selector, target: Selector): Selector {
  if ('all' in target) return scope;
  if ('all' in scope) return target;
  return { and: [scope, target] };
}

/** Parses a selector given by a person or the model; errors name the field (e.g. `scope.and.0.op`). */
export function selector(input: unknown, field: string, opts: ParseOptions = {}): Selector {
  try {
    return parseSelector(input, opts);
  } catch (err) {
    if (err instanceof SelectorError)
      throw new ProposalError(err.path ? `${field}.${err.path}` : field, err.reason);
    throw err;
  }
}

/**
 * Turns validated model output into a proposal: the target is parsed by the fleet DSL and clamped to
 * the scope, device handles are resolved through the table that issued them (unknown handles are an
 * error, never a guess).
 */
export function proposalFromModel(
  out: z.infer<typeof PlannerProposalOutput>,
  ctx: { intent: string; scope: Selector; handles: HandleTable; selectorOptions?: ParseOptions },
): Proposal {
  const target = selector(out.target, 'target', ctx.selectorOptions ?? {});
  const perDevice = (out.perDevice ?? []).map((d, i) => {
    const id = ctx.handles.resolve(d.device, 'dev');
    if (id === undefined)
      throw new ProposalError(`perDevice[${i}].device`, `unknown device handle ${d.device}`);
    return { deviceId: id, changes: d.changes };
  });
  if (out.changes.length === 0 && perDevice.length === 0)
    throw new ProposalError('changes', 'the proposal changes nothing');
  return {
    source: 'planner',
    proposer: PLANNER_IDENTITY,
    intent: ctx.intent,
    scope: ctx.scope,
    target,
    effectiveTarget: intersect(ctx.scope, target),
    changes: out.changes,
    perDevice,
    requestedRiskClass: out.requestedRiskClass,
    rationale: { origin: 'model', text: out.rationale },
  };
}

export const ManualProposalInput = z.strictObject({
  intent: z.string().min(1).max(2000),
  scope: z.unknown(),
  target: z.unknown().optional(),
  changes: z.array(ChangeOp).max(1000),
  perDevice: z
    .array(z.strictObject({ deviceId: z.string().min(1), changes: z.array(ChangeOp).min(1) }))
    .optional(),
  requestedRiskClass: RiskClass.optional(),
  rationale: z.string().max(4000).default(''),
});

/** A proposal typed by a person: needs no model, and is checked exactly like the planner's. */
export function manualProposal(
  input: z.input<typeof ManualProposalInput>,
  proposer: ProposerIdentity,
  selectorOptions: ParseOptions = {},
): Proposal {
  const p = ManualProposalInput.parse(input);
  const scope = selector(p.scope, 'scope', selectorOptions);
  const target =
    p.target === undefined ? ({ all: true } as const) : selector(p.target, 'target', selectorOptions);
  const perDevice = p.perDevice ?? [];
  if (p.changes.length === 0 && perDevice.length === 0)
    throw new ProposalError('changes', 'the proposal changes nothing');
  return {
    source: 'manual',
    proposer,
    intent: p.intent,
    scope,
    target,
    effectiveTarget: intersect(scope, target),
    changes: p.changes,
    perDevice,
    requestedRiskClass: p.requestedRiskClass,
    rationale: { origin: 'operator', text: p.rationale },
  };
}

/** Every change the proposal makes, with the device it is limited to (undefined: every target). */
export function allChanges(p: Proposal): Array<{ deviceId?: string; change: ChangeOp }> {
  return [
    ...p.changes.map((change) => ({ change })),
    ...p.perDevice.flatMap((d) => d.changes.map((change) => ({ deviceId: d.deviceId, change }))),
  ];
}
