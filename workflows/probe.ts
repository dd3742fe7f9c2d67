import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { createProbeActivities } from '../activities/probe.js';

/**
 * A round trip through every moving part (client → server → worker → activity → signal → query):
 * used by the `workflow` benchmark and by smoke tests of a deployment.
 */
export interface ProbeInput {
  id: string;
  /** Wait for an `ack` signal before finishing (false: finish right after the activity). */
  awaitAck: boolean;
  ackTimeoutMs?: number;
}

export interface ProbeState {
  stage: 'started' | 'echoed' | 'acked' | 'timed-out';
  echo?: string;
  ackedBy?: string;
}

export const ackSignal = defineSignal<[{ by: string }]>('ack');
export const stateQuery = defineQuery<ProbeState>('state');

const { echo } = proxyActivities<ReturnType<typeof createProbeActivities>>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 3 },
});

export async function probe(input: ProbeInput): Promise<ProbeState> {
  const state: ProbeState = { stage: 'started' };
  setHandler(stateQuery, () => state);
  setHandler(ackSignal, ({ by }) => {
    state.ackedBy ??= by;
  });
  state.echo = await echo(input.id);
  state.stage = 'echoed';
  if (!input.awaitAck) return state;
  const acked = await condition(() => state.ackedBy !== undefined, input.ackTimeoutMs ?? 60_000);
  state.stage = acked ? 'acked' : 'timed-out';
  return state;
}
