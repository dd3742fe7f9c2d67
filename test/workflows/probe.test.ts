import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ackSignal, probe, stateQuery } from '../../workflows/probe.js';
import { startTestWorker } from '../support/temporal.js';

const replayDir = path.join(import.meta.dirname, '..', 'replay');

describe('probe workflow on the real Temporal dev server', () => {
  let env: Awaited<ReturnType<typeof startTestWorker>>;
  beforeAll(async () => {
    env = await startTestWorker({ workerId: 'w1' });
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('runs the activity, answers the query, and finishes on the signal', async () => {
    const handle = await env.client.workflow.start(probe, {
      taskQueue: env.taskQueue,
      workflowId: `probe-${Date.now()}`,
      args: [{ id: 'p1', awaitAck: true, ackTimeoutMs: 30_000 }],
    });
    // The query reflects progress before the signal arrives.
    await expect.poll(() => handle.query(stateQuery), { timeout: 10_000 }).toMatchObject({ stage: 'echoed' });
    await handle.signal(ackSignal, { by: 'alice' });
    await handle.signal(ackSignal, { by: 'bob' }); // a second ack does not replace the first
    const result = await handle.result();
    expect(result).toEqual({ stage: 'acked', echo: 'p1@w1', ackedBy: 'alice' });
    if (process.env.UPDATE_REPLAY_HISTORIES === '1') {
      const history = await handle.fetchHistory();
      writeFileSync(path.join(replayDir, 'probe-acked.json'), `${historyToJSON(history)}\n`);
    }
  });

  it('times out when no ack arrives', async () => {
    const result = await env.client.workflow.execute(probe, {
      taskQueue: env.taskQueue,
      workflowId: `probe-timeout-${Date.now()}`,
      args: [{ id: 'p2', awaitAck: true, ackTimeoutMs: 200 }],
    });
    expect(result.stage).toBe('timed-out');
    expect(result.ackedBy).toBeUndefined();
  });
});
