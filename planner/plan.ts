import type { ParseOptions, Selector } from '../fleet/selector.js';
import { type CheckPorts, type CheckResult, checkProposal } from './check.js';
import { type DeviceFacts, plannerMessages } from './context.js';
import {
  type CallKey,
  isUnavailable,
  type Llm,
  type LlmTool,
  type PlannerUnavailable,
  type Usage,
} from './llm.js';
import { type Proposal, ProposalError, PlannerOutput, proposalFromModel } from './proposal.js';
import type { HandleTable } from './sanitize.js';

/**
 * Intent → proposal with a bounded repair loop: each round the model answers (schema-checked), the
 * answer becomes a proposal (selector parsed, clamped to scope, handles resolved), and the proposal is
 * checked (TR-181 per firmware, policy). Errors go back to the model as the next user turn; after
 * `maxRounds` rounds the planner gives up and says why. Passing here is not approval.
 */

export interface PlanRequest {
  intent: string;
  scope: Selector;
  scopeDescription: string;
  devices: readonly DeviceFacts[];
  /** Deterministic helpers offered to the model; built over the same handle table. */
  tools?: (handles: HandleTable) => LlmTool[];
  maxRounds?: number;
  selectorOptions?: ParseOptions;
  /** For fixture servers: suite and case; the round is filled in per call. */
  key?: Omit<CallKey, 'round'>;
}

export interface RoundRecord {
  round: number;
  outcome: 'schema_error' | 'proposal_error' | 'check_failed' | 'passed' | 'abstained' | 'transport_error';
  errors: string[];
  toolCalls: Array<{ name: string; args: unknown }>;
}

export type PlanResult =
  | PlannerUnavailable
  | {
      kind: 'proposed';
      proposal: Proposal;
      check: CheckResult;
      rounds: RoundRecord[];
      usage: Usage;
      latencyMs: number;
    }
  | { kind: 'abstained'; reason: string; rounds: RoundRecord[]; usage: Usage; latencyMs: number }
  | {
      kind: 'failed';
      reason: string;
      lastProposal?: Proposal;
      lastCheck?: CheckResult;
      rounds: RoundRecord[];
      usage: Usage;
      latencyMs: number;
    };

export const DEFAULT_MAX_ROUNDS = 3;

export async function planChange(
  llm: Llm | PlannerUnavailable,
  ports: CheckPorts,
  req: PlanRequest,
): Promise<PlanResult> {
  if (isUnavailable(llm)) return llm;
  const maxRounds = req.maxRounds ?? DEFAULT_MAX_ROUNDS;
  const { messages, handles } = plannerMessages(req);
  const tools = req.tools?.(handles) ?? [];
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let latencyMs = 0;
  const rounds: RoundRecord[] = [];
  let convo = messages as Parameters<Llm['structured']>[0]['messages'];
  let lastProposal: Proposal | undefined;
  let lastCheck: CheckResult | undefined;

  for (let round = 0; round < maxRounds; round++) {
    const r = await llm.structured({
      name: 'change_proposal',
      schema: PlannerOutput,
      messages: convo,
      tools,
      ...(req.key ? { key: { ...req.key, round } } : {}),
    });
    usage.promptTokens += r.usage.promptTokens;
    usage.completionTokens += r.usage.completionTokens;
    latencyMs += r.latencyMs;
    convo = r.messages;
    const record = (outcome: RoundRecord['outcome'], errors: string[]) =>
      rounds.push({ round, outcome, errors, toolCalls: r.toolCalls });
    let feedback: string;
    if (!r.ok) {
      if (r.error !== 'schema') {
        record('transport_error', [r.message]);
        return {
          kind: 'failed',
          reason: `the model endpoint failed: ${r.message}`,
          rounds,
          usage,
          latencyMs,
        };
      }
      record('schema_error', [r.message]);
      feedback = `Your answer does not match the required JSON schema:\n${r.message}\nAnswer again with valid JSON only.`;
    } else if (r.value.kind === 'abstain') {
      record('abstained', []);
      return { kind: 'abstained', reason: r.value.reason, rounds, usage, latencyMs };
    } else {
      let proposal: Proposal;
      try {
        proposal = proposalFromModel(r.value, {
          intent: req.intent,
          scope: req.scope,
          handles,
          selectorOptions: req.selectorOptions,
        });
      } catch (err) {
        if (!(err instanceof ProposalError)) throw err;
        record('proposal_error', [err.message]);
        convo = [
          ...convo,
          { role: 'user', content: `The proposal is not well-formed: ${err.message}\nFix it.` },
        ];
        continue;
      }
      lastProposal = proposal;
      const check = await checkProposal(proposal, ports);
      lastCheck = check;
      if (check.ok) {
        record('passed', []);
        return { kind: 'proposed', proposal, check, rounds, usage, latencyMs };
      }
      const errs = check.errors.map(
        (e) => `[${e.stage}] ${e.code}${e.path ? ` at ${e.path}` : ''}: ${e.message}`,
      );
      record('check_failed', errs);
      feedback =
        `The proposal was rejected by deterministic checks (validation and policy). Errors:\n${errs.join('\n')}\n` +
        'Propose a corrected change set that avoids these errors, or abstain if the intent cannot be met.';
    }
    convo = [...convo, { role: 'user', content: feedback }];
  }
  return {
    kind: 'failed',
    reason: `no acceptable proposal after ${maxRounds} rounds`,
    ...(lastProposal ? { lastProposal } : {}),
    ...(lastCheck ? { lastCheck } : {}),
    rounds,
    usage,
    latencyMs,
  };
}
