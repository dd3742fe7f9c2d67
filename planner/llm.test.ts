import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type FixtureServer, startFixtureServer } from './fixture-server.js';
import { createLlm, defineTool, isUnavailable, type Llm, llmSettingsFromEnv } from './llm.js';

// Every reply below is an AUTHORED FIXTURE served by a local HTTP server: these tests check the
// client plumbing (schemas, tool calls, keys, errors), not any model's behaviour.

const Answer = z.strictObject({ kind: z.literal('answer'), channel: z.number().int() });

let server: FixtureServer;
let llm: Llm;

beforeAll(async () => {
  server = await startFixtureServer({
    't/ok/0': { content: { kind: 'answer', channel: 6 }, usage: { prompt: 120, completion: 9 } },
    't/bad-schema/0': { content: { kind: 'answer', channel: 'six' } },
    't/not-json/0': { content: 'I think channel 6 is best.' },
    't/tool/0': { toolCalls: [{ name: 'add', args: { a: 2, b: 3 } }], usage: { prompt: 50, completion: 5 } },
    't/tool/0.1': { content: { kind: 'answer', channel: 5 }, usage: { prompt: 70, completion: 4 } },
    't/bad-tool-args/0': { toolCalls: [{ name: 'add', args: { a: 'x' } }] },
    't/bad-tool-args/0.1': { content: { kind: 'answer', channel: 1 } },
    't/loop/0': { toolCalls: [{ name: 'add', args: { a: 1, b: 1 } }] },
    't/loop/0.1': { toolCalls: [{ name: 'add', args: { a: 1, b: 1 } }] },
  });
  const made = createLlm({ baseUrl: server.baseUrl, model: 'fixture-model', apiKey: 'k' });
  if (isUnavailable(made)) throw new Error('expected a client');
  llm = made;
});
afterAll(() => server.close());

const add = defineTool({
  name: 'add',
  description: 'adds two integers',
  parameters: z.strictObject({ a: z.number().int(), b: z.number().int() }),
  run: ({ a, b }) => ({ sum: a + b }),
});

const msgs = [{ role: 'user' as const, content: 'pick a channel' }];

describe('planner LLM client (against authored fixtures)', () => {
  it('without an endpoint it answers PlannerUnavailable, naming the settings', () => {
    const r = createLlm(llmSettingsFromEnv({ FLEETBRAIN_MODEL: 'm' }));
    expect(isUnavailable(r)).toBe(true);
    if (isUnavailable(r)) expect(r.reason).toMatch(/OPENAI_BASE_URL/);
  });

  it('validates a structured answer with zod and counts tokens', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      key: { suite: 't', case: 'ok', round: 0 },
    });
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value).toEqual({ kind: 'answer', channel: 6 });
    expect(r.usage).toEqual({ promptTokens: 120, completionTokens: 9 });
    const sent = server.requests.find((q) => q.key === 't/ok/0');
    expect(sent?.body.model).toBe('fixture-model');
    expect(JSON.stringify(sent?.body.response_format)).toContain('"channel"');
  });

  it('reports a schema failure with the offending path', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      key: { suite: 't', case: 'bad-schema', round: 0 },
    });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error).toBe('schema');
      expect(r.message).toMatch(/^channel: /);
    }
  });

  it('reports prose instead of JSON as a schema failure', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      key: { suite: 't', case: 'not-json', round: 0 },
    });
    expect(!r.ok && r.error).toBe('schema');
  });

  it('runs tool calls in code and sends results back', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      tools: [add],
      key: { suite: 't', case: 'tool', round: 0 },
    });
    expect(r.ok).toBe(true);
    expect(r.toolCalls).toEqual([{ name: 'add', args: { a: 2, b: 3 } }]);
    const second = server.requests.find((q) => q.key === 't/tool/0.1');
    const toolMsg = second?.body.messages?.find((m) => m.role === 'tool');
    expect(toolMsg?.content).toBe('{"sum":5}');
    expect(second?.body.tools).toHaveLength(1);
    expect(r.usage).toEqual({ promptTokens: 120, completionTokens: 9 });
  });

  it('answers invalid tool arguments with an error the model can read, without running the tool', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      tools: [add],
      key: { suite: 't', case: 'bad-tool-args', round: 0 },
    });
    expect(r.ok).toBe(true);
    expect(r.toolCalls).toEqual([]);
    const toolMsg = server.requests
      .find((q) => q.key === 't/bad-tool-args/0.1')
      ?.body.messages?.find((m) => m.role === 'tool');
    expect(String(toolMsg?.content)).toMatch(/invalid arguments/);
  });

  it('bounds tool rounds', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      tools: [add],
      maxToolRounds: 1,
      key: { suite: 't', case: 'loop', round: 0 },
    });
    expect(!r.ok && r.error).toBe('tool_rounds');
  });

  it('a key without a fixture fails as a transport error and is recorded as a miss', async () => {
    const r = await llm.structured({
      name: 'answer',
      schema: Answer,
      messages: msgs,
      key: { suite: 't', case: 'nope', round: 0 },
    });
    expect(!r.ok && r.error).toBe('transport');
    expect(server.misses).toContain('t/nope/0');
  });
});
