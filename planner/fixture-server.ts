import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FIXTURE_KEY_HEADER } from './llm.js';

/**
 * A local OpenAI-compatible chat-completions server that replays AUTHORED FIXTURES keyed by
 * "suite/case/round[.sub]". It is a test double for the harness and pipeline: what it returns was
 * written by a person, so nothing measured against it says anything about a model's accuracy.
 * A request whose key has no fixture is answered with HTTP 404 and recorded as a miss.
 */

export type FixtureReply =
  /** The final answer: an object is sent as its JSON text, a string as is (to test invalid JSON). */
  | { content: unknown; usage?: { prompt: number; completion: number } }
  | { toolCalls: Array<{ name: string; args: unknown }>; usage?: { prompt: number; completion: number } };

export interface RecordedRequest {
  key: string | undefined;
  body: {
    model?: string;
    messages?: Array<{ role: string; content?: unknown }>;
    tools?: unknown[];
    response_format?: unknown;
  };
}

export interface FixtureServer {
  /** Base URL for the OpenAI SDK, ending in /v1. */
  baseUrl: string;
  requests: RecordedRequest[];
  misses: string[];
  /** Replace or add fixtures while running. */
  set(key: string, reply: FixtureReply): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFixtureServer(
  fixtures: Record<string, FixtureReply> | Map<string, FixtureReply>,
): Promise<FixtureServer> {
  const table = new Map(fixtures instanceof Map ? fixtures : Object.entries(fixtures));
  const requests: RecordedRequest[] = [];
  const misses: string[] = [];
  let seq = 0;
  const server: Server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      send(404, { error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } });
      return;
    }
    let body: RecordedRequest['body'];
    try {
      body = JSON.parse(await readBody(req)) as RecordedRequest['body'];
    } catch {
      send(400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
      return;
    }
    const header = req.headers[FIXTURE_KEY_HEADER];
    const key = Array.isArray(header) ? header[0] : header;
    requests.push({ key, body });
    const reply = key === undefined ? undefined : table.get(key);
    if (!reply) {
      misses.push(key ?? '(no key)');
      send(404, {
        error: { message: `no authored fixture for key ${key ?? '(none)'}`, type: 'fixture_miss' },
      });
      return;
    }
    const id = `fixture-${++seq}`;
    const usage = reply.usage ?? { prompt: 0, completion: 0 };
    const message =
      'toolCalls' in reply
        ? {
            role: 'assistant',
            content: null,
            tool_calls: reply.toolCalls.map((c, i) => ({
              id: `${id}-call-${i}`,
              type: 'function',
              function: { name: c.name, arguments: JSON.stringify(c.args) },
            })),
          }
        : {
            role: 'assistant',
            content: typeof reply.content === 'string' ? reply.content : JSON.stringify(reply.content),
          };
    send(200, {
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model ?? 'fixture',
      choices: [
        { index: 0, message, finish_reason: 'toolCalls' in reply ? 'tool_calls' : 'stop', logprobs: null },
      ],
      usage: {
        prompt_tokens: usage.prompt,
        completion_tokens: usage.completion,
        total_tokens: usage.prompt + usage.completion,
      },
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    misses,
    set: (k, r) => {
      table.set(k, r);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
