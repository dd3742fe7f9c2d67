import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLlm, isUnavailable, type Llm } from '../../planner/llm.js';

/**
 * A local OpenAI-compatible chat-completions server whose replies are AUTHORED in the test, chosen by
 * the text of the operator's question. It tests routes and pipelines, never a model's accuracy.
 * `reply` returns the assistant's JSON for a question, or undefined for "no authored reply" (404).
 */
export interface AuthoredModel {
  llm: Llm;
  /** The user messages received, in order. */
  seen: string[];
  close(): Promise<void>;
}

export async function startAuthoredModel(reply: (question: string) => unknown): Promise<AuthoredModel> {
  const seen: string[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      messages?: Array<{ role: string; content: string }>;
    };
    const question = body.messages?.find((m) => m.role === 'user')?.content ?? '';
    seen.push(question);
    const answer = reply(question);
    res.writeHead(answer === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(
        answer === undefined
          ? { error: { message: 'no authored reply', type: 'fixture_miss' } }
          : {
              id: 'authored',
              object: 'chat.completion',
              created: 0,
              model: 'authored-fixture',
              choices: [
                {
                  index: 0,
                  finish_reason: 'stop',
                  message: { role: 'assistant', content: JSON.stringify(answer) },
                },
              ],
              usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120 },
            },
      ),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  const llm = createLlm({
    baseUrl: `http://127.0.0.1:${port}/v1`,
    apiKey: 'fixture',
    model: 'authored-fixture',
  });
  if (isUnavailable(llm)) throw new Error(llm.reason);
  return {
    llm,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
