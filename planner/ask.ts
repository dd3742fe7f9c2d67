import { z } from 'zod';
import type { ParameterCatalog } from '../fleet/catalog.js';
import { describeQuery, GROUP_KEYS, parseQuery, type Query, QueryError } from '../fleet/query.js';
import type { QueryResult } from '../fleet/query-compile.js';
import {
  type Gazetteer,
  NeedsClarification,
  resolveFirmware,
  resolveModel,
  resolvePlace,
  WINDOWS,
  type WindowName,
  windowSeconds,
} from './entities.js';
import { type CallKey, isUnavailable, type Llm, type PlannerUnavailable, type Usage } from './llm.js';
import { quoteData, sanitizeText } from './sanitize.js';

/**
 * Plain-language fleet questions: the model translates to the query DSL (structured output) with
 * entity mentions left as mentions; code resolves them, validates the DSL, runs it read-only and
 * renders the answer. Unknown or ambiguous entities become a clarifying question. A question asking
 * for a change gets an answer saying so; nothing on this path can write.
 */

export const QuestionOutput = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('query'), query: z.record(z.string(), z.unknown()) }),
  z.strictObject({ kind: z.literal('clarify'), question: z.string().min(1).max(500) }),
  z.strictObject({ kind: z.literal('change_request'), summary: z.string().min(1).max(500) }),
]);
export type QuestionOutput = z.infer<typeof QuestionOutput>;

export const ASK_SYSTEM = `You translate operators' questions about a CPE fleet into the Fleetbrain query DSL (JSON).
Answer with one JSON object:
- {"kind":"query","query":Q} when the question can be answered by reading the fleet;
- {"kind":"clarify","question":"..."} when it is ambiguous (never guess);
- {"kind":"change_request","summary":"..."} when it asks to change, reboot, upgrade or configure devices (you never change anything).
Q = {"where":S,"measure":M,"groupBy":[K...],"having":{"op":O,"value":n},"orderBy":{"by":"value"|"key","dir":"asc"|"desc"},"limit":n}
M = "count" | {"share":S} | {"avg"|"min"|"max":"<numeric TR-181 parameter path>"} | {"events":{"kind":E,"window":W,"failed":bool?,"eventCode":str?}}
K = ${GROUP_KEYS.join(' | ')}
S (selector) = {"all":true} | {"and":[S...]} | {"or":[S...]} | {"not":S}
  | {"place":"<place name as the operator wrote it>"} | {"model":"<model name>"} | {"firmware":"<version as written>"}
  | {"field":F,"op":OP,"value":v} (fields: protocol, serviceTier, olt, ponPort, bng, hardwareVersion, manufacturer, softwareVersion with versionLt/versionGte...)
  | {"param":"<path>","op":OP,"value":v} | {"lastContact":{"notSeenForIntervals":n}|{"seenWithinSeconds":n}}
  | {"events":{"kind":E,"window":W,"op":O,"count":n}}
E = inform | boot | bootstrap | transfer_complete | value_change | operation_complete | connection_request_failed
W = ${WINDOWS.join(' | ')} (resolved in the operator's time zone)
O = eq | ne | lt | lte | gt | gte. Use place/model/firmware nodes for names the operator wrote; code resolves them.`;

export interface AskDeps {
  gazetteer: Gazetteer;
  /** The operator's IANA time zone, for named windows. */
  timeZone: string;
  now: Date;
  catalog?: ParameterCatalog;
  /** Runs a validated query read-only (fleet/query-compile.ts runQuery). */
  execute(q: Query): Promise<QueryResult>;
  /** DSL-repair rounds (default 2). */
  maxRounds?: number;
}

export type AskAnswer =
  | PlannerUnavailable
  | {
      kind: 'answer';
      query: Query;
      description: string;
      result: QueryResult;
      table: string;
      usage: Usage;
      latencyMs: number;
      rounds: number;
    }
  | {
      kind: 'clarify';
      question: string;
      by: 'model' | 'resolver';
      usage: Usage;
      latencyMs: number;
      rounds: number;
    }
  | { kind: 'change_request'; message: string; usage: Usage; latencyMs: number; rounds: number }
  | { kind: 'invalid'; error: string; usage: Usage; latencyMs: number; rounds: number };

type Json = unknown;

/** Replaces place/model/firmware mentions and named windows with DSL the fleet compiler knows. */
export function resolveDraft(draft: Json, deps: Pick<AskDeps, 'gazetteer' | 'timeZone' | 'now'>): Json {
  const win = (o: Record<string, Json>) => {
    if (!('window' in o)) return o;
    const { window, ...rest } = o;
    if (typeof window !== 'string' || !(WINDOWS as readonly string[]).includes(window))
      throw new QueryError('window', `unknown window ${JSON.stringify(window)} (use ${WINDOWS.join(', ')})`);
    return { ...rest, withinSeconds: windowSeconds(window as WindowName, deps.now, deps.timeZone) };
  };
  const walk = (n: Json): Json => {
    if (Array.isArray(n)) return n.map(walk);
    if (typeof n !== 'object' || n === null) return n;
    const o = n as Record<string, Json>;
    const keys = Object.keys(o);
    if (keys.length === 1 && typeof o.place === 'string') {
      const r = resolvePlace(o.place, deps.gazetteer);
      return { field: r.field, op: 'eq', value: r.value };
    }
    if (keys.length === 1 && typeof o.model === 'string') {
      const r = resolveModel(o.model, deps.gazetteer);
      return { field: r.field, op: 'eq', value: r.value };
    }
    if (keys.length === 1 && typeof o.firmware === 'string')
      return resolveFirmware(o.firmware, deps.gazetteer);
    if (keys.length === 1 && typeof o.events === 'object' && o.events !== null)
      return { events: win(o.events as Record<string, Json>) };
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, walk(v)]));
  };
  return walk(draft);
}

function fmt(v: number | null, share: boolean): string {
  if (v === null) return '—';
  if (share) return `${(v * 100).toFixed(1)} %`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

/** A Markdown table of the result, rendered by code; key values are device data and are quoted. */
export function renderTable(q: Query, r: QueryResult): string {
  const share = typeof q.measure === 'object' && 'share' in q.measure;
  const head = [...q.groupBy, 'value'];
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`];
  for (const row of r.rows) {
    const keys = q.groupBy.map((k) => {
      const v = row.key[k];
      return v === null || v === undefined ? '(none)' : cell(quoteData(sanitizeText(v, 64).text));
    });
    lines.push(`| ${[...keys, fmt(row.value, share)].join(' | ')} |`);
  }
  if (r.truncated) lines.push(`\n(more rows than the cap; showing ${r.rows.length})`);
  return lines.join('\n');
}

export async function ask(
  llm: Llm | PlannerUnavailable,
  deps: AskDeps,
  question: string,
  key?: Omit<CallKey, 'round'>,
): Promise<AskAnswer> {
  if (isUnavailable(llm)) return llm;
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let latencyMs = 0;
  const q = sanitizeText(question, 1000).text;
  let messages: Parameters<Llm['structured']>[0]['messages'] = [
    { role: 'system', content: ASK_SYSTEM },
    {
      role: 'user',
      content: `Question (${deps.now.toISOString()}, operator time zone ${deps.timeZone}): ${JSON.stringify(q)}`,
    },
  ];
  const maxRounds = deps.maxRounds ?? 2;
  let lastError = '';
  for (let round = 0; round < maxRounds; round++) {
    const r = await llm.structured({
      name: 'fleet_question',
      schema: QuestionOutput,
      messages,
      ...(key ? { key: { ...key, round } } : {}),
    });
    usage.promptTokens += r.usage.promptTokens;
    usage.completionTokens += r.usage.completionTokens;
    latencyMs += r.latencyMs;
    const n = round + 1;
    messages = r.messages;
    if (!r.ok) {
      if (r.error !== 'schema')
        return { kind: 'invalid', error: `model endpoint: ${r.message}`, usage, latencyMs, rounds: n };
      lastError = r.message;
    } else if (r.value.kind === 'clarify') {
      return { kind: 'clarify', question: r.value.question, by: 'model', usage, latencyMs, rounds: n };
    } else if (r.value.kind === 'change_request') {
      return {
        kind: 'change_request',
        message:
          `This asks for a change (${r.value.summary}). Questions never change devices: ` +
          'propose it as a change request, where it is validated, policy-checked and approved.',
        usage,
        latencyMs,
        rounds: n,
      };
    } else {
      try {
        const query = parseQuery(
          resolveDraft(r.value.query, deps),
          deps.catalog ? { catalog: deps.catalog } : {},
        );
        const result = await deps.execute(query);
        return {
          kind: 'answer',
          query,
          description: describeQuery(query),
          result,
          table: renderTable(query, result),
          usage,
          latencyMs,
          rounds: n,
        };
      } catch (err) {
        if (err instanceof NeedsClarification)
          return { kind: 'clarify', question: err.question, by: 'resolver', usage, latencyMs, rounds: n };
        if (!(err instanceof QueryError)) throw err;
        lastError = err.message;
      }
    }
    messages = [...messages, { role: 'user', content: `That query is invalid: ${lastError}\nAnswer again.` }];
  }
  return { kind: 'invalid', error: lastError, usage, latencyMs, rounds: maxRounds };
}
