import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import type { ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { z } from 'zod';

/**
 * The planner's only door to a language model: any OpenAI-compatible chat-completions endpoint.
 * Output is requested as JSON matching a zod schema and validated here; tools are deterministic
 * functions the model calls instead of imitating them. No endpoint configured ⇒ `PlannerUnavailable`.
 */

export interface LlmSettings {
  baseUrl?: string;
  apiKey?: string;
  model: string;
  /** Per-request timeout. */
  timeoutMs?: number;
}

/** A typed "the planner cannot run" answer; manual proposals never need the model. */
export interface PlannerUnavailable {
  kind: 'planner_unavailable';
  reason: string;
}

export function isUnavailable(x: unknown): x is PlannerUnavailable {
  return typeof x === 'object' && x !== null && (x as { kind?: unknown }).kind === 'planner_unavailable';
}

/** Reads OPENAI_BASE_URL / OPENAI_API_KEY / FLEETBRAIN_MODEL (as parsed by platform/config). */
export function llmSettingsFromEnv(env: {
  OPENAI_BASE_URL?: string;
  OPENAI_API_KEY?: string;
  FLEETBRAIN_MODEL: string;
}): LlmSettings {
  return { baseUrl: env.OPENAI_BASE_URL, apiKey: env.OPENAI_API_KEY, model: env.FLEETBRAIN_MODEL };
}

/** A tool the model may call; `run` is deterministic code whose result goes back as JSON. */
export interface LlmTool<A = unknown> {
  name: string;
  description: string;
  parameters: z.ZodType<A>;
  run(args: A): unknown | Promise<unknown>;
}

export function defineTool<S extends z.ZodType>(t: {
  name: string;
  description: string;
  parameters: S;
  run(args: z.output<S>): unknown | Promise<unknown>;
}): LlmTool<z.output<S>> {
  return t as LlmTool<z.output<S>>;
}

/** Identifies a call for fixture servers (suite / case / round); harmless to a live endpoint. */
export interface CallKey {
  suite: string;
  case: string;
  round: number;
}

export const FIXTURE_KEY_HEADER = 'x-fleetbrain-fixture-key';
export const formatCallKey = (k: CallKey) => `${k.suite}/${k.case}/${k.round}`;

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface StructuredRequest<T> {
  /** Names the response format; one small schema per intent. */
  name: string;
  schema: z.ZodType<T>;
  messages: ChatCompletionMessageParam[];
  tools?: readonly LlmTool[];
  /** Tool-call rounds allowed before the answer must come. */
  maxToolRounds?: number;
  key?: CallKey;
}

export type StructuredResult<T> =
  | {
      ok: true;
      value: T;
      usage: Usage;
      latencyMs: number;
      toolCalls: Array<{ name: string; args: unknown }>;
      /** The conversation including the final assistant message (for a repair round). */
      messages: ChatCompletionMessageParam[];
    }
  | {
      ok: false;
      /** schema: the answer was not JSON or failed the zod schema; transport: the endpoint failed. */
      error: 'schema' | 'transport' | 'tool_rounds';
      message: string;
      raw?: string;
      usage: Usage;
      latencyMs: number;
      toolCalls: Array<{ name: string; args: unknown }>;
      messages: ChatCompletionMessageParam[];
    };

export interface Llm {
  readonly model: string;
  readonly baseUrl: string;
  structured<T>(req: StructuredRequest<T>): Promise<StructuredResult<T>>;
}

/** The zod schema as JSON Schema for `response_format` and tool parameters. */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const js = z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  delete js.$schema;
  return js;
}

/** Formats zod issues so a model can act on them: "path: message" per line. */
export function formatIssues(err: z.ZodError): string {
  return err.issues
    .slice(0, 20)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('\n');
}

export function createLlm(settings: LlmSettings): Llm | PlannerUnavailable {
  if (!settings.baseUrl) {
    return {
      kind: 'planner_unavailable',
      reason:
        'no language model endpoint is configured (set OPENAI_BASE_URL, OPENAI_API_KEY and FLEETBRAIN_MODEL); manual proposals still work',
    };
  }
  const client = new OpenAI({
    baseURL: settings.baseUrl,
    // Local OpenAI-compatible servers often need no key; the SDK insists on a string.
    apiKey: settings.apiKey ?? 'none',
    timeout: settings.timeoutMs ?? 60_000,
    maxRetries: 1,
  });
  const baseUrl = settings.baseUrl;
  const model = settings.model;

  async function structured<T>(req: StructuredRequest<T>): Promise<StructuredResult<T>> {
    const started = performance.now();
    const usage: Usage = { promptTokens: 0, completionTokens: 0 };
    const toolCalls: Array<{ name: string; args: unknown }> = [];
    const messages = [...req.messages];
    const tools: ChatCompletionTool[] | undefined = req.tools?.length
      ? req.tools.map((t) => ({
          type: 'function',
          function: { name: t.name, description: t.description, parameters: jsonSchemaOf(t.parameters) },
        }))
      : undefined;
    const maxToolRounds = req.maxToolRounds ?? 4;
    const done = () => ({ usage, latencyMs: performance.now() - started, toolCalls, messages });
    for (let sub = 0; ; sub++) {
      const headers: Record<string, string> = {};
      // Tool rounds are sub-rounds of the caller's round: "3.1" is the 2nd completion of round 3.
      if (req.key) headers[FIXTURE_KEY_HEADER] = `${formatCallKey(req.key)}${sub ? `.${sub}` : ''}`;
      let completion: OpenAI.Chat.Completions.ChatCompletion;
      try {
        completion = await client.chat.completions.create(
          {
            model,
            messages,
            temperature: 0,
            ...(tools ? { tools } : {}),
            response_format: {
              type: 'json_schema',
              json_schema: { name: req.name, schema: jsonSchemaOf(req.schema), strict: false },
            },
          },
          { headers },
        );
      } catch (err) {
        return { ok: false, error: 'transport', message: (err as Error).message, ...done() };
      }
      usage.promptTokens += completion.usage?.prompt_tokens ?? 0;
      usage.completionTokens += completion.usage?.completion_tokens ?? 0;
      const msg = completion.choices[0]?.message;
      if (!msg)
        return { ok: false, error: 'transport', message: 'the endpoint returned no choice', ...done() };
      const calls = (msg.tool_calls ?? []).filter((c) => c.type === 'function');
      if (calls.length > 0) {
        if (sub >= maxToolRounds) {
          return {
            ok: false,
            error: 'tool_rounds',
            message: `more than ${maxToolRounds} tool rounds`,
            ...done(),
          };
        }
        messages.push({ role: 'assistant', content: msg.content ?? null, tool_calls: calls });
        for (const c of calls) {
          const tool = req.tools?.find((t) => t.name === c.function.name);
          let result: unknown;
          try {
            if (!tool) throw new Error(`unknown tool "${c.function.name}"`);
            const args = tool.parameters.safeParse(JSON.parse(c.function.arguments || '{}'));
            if (!args.success) throw new Error(`invalid arguments:\n${formatIssues(args.error)}`);
            toolCalls.push({ name: tool.name, args: args.data });
            result = await tool.run(args.data);
          } catch (err) {
            result = { error: (err as Error).message };
          }
          messages.push({ role: 'tool', tool_call_id: c.id, content: JSON.stringify(result) });
        }
        continue;
      }
      const raw = msg.content ?? '';
      messages.push({ role: 'assistant', content: raw });
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        return { ok: false, error: 'schema', message: 'the answer is not JSON', raw, ...done() };
      }
      const parsed = req.schema.safeParse(json);
      if (!parsed.success) {
        return { ok: false, error: 'schema', message: formatIssues(parsed.error), raw, ...done() };
      }
      return { ok: true, value: parsed.data, ...done() };
    }
  }

  return { model, baseUrl, structured };
}
