import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { osEndpointId } from '../../executor/usp/endpoint-id.js';
import { modelByKey } from '../models.js';

/**
 * A simulated USP fleet split over child processes (agent-process.ts), each multiplexing its agents
 * over a bounded pool of MQTT connections. Every agent keeps its own endpoint ID, topic and Record
 * flow; only the TCP connection is shared. Used by load tests: 100 000 agents need neither 100 000
 * sockets (the hard limit is 20 000 descriptors per process, the broker's too) nor the controller's core.
 */

const Backoff = z.object({ minMs: z.number().positive(), multiplier: z.number().min(1), maxMs: z.number() });

export const StartCommand = z.object({
  type: z.literal('start'),
  url: z.string().url(),
  controllerId: z.string().min(1),
  serialPrefix: z.string(),
  /** Serial numbers are `${serialPrefix}${index padded to 6}` for index in [from, from + count). */
  from: z.number().int().nonnegative(),
  count: z.number().int().nonnegative(),
  perConnection: z.number().int().positive(),
  models: z.array(z.string()).min(1),
  onboarded: z.boolean(),
  subscriptions: z.array(z.record(z.string(), z.string())).optional(),
  notifyRetryMs: z.number().positive().optional(),
  timeScale: z.number().positive().optional(),
  backoff: Backoff.optional(),
  /** Loopback source addresses the connections are spread over (ephemeral ports per address). */
  localAddresses: z.array(z.string()).optional(),
  protocolVersion: z.union([z.literal(5), z.literal(4)]).optional(),
  /** MQTT QoS of the agents' Records (default 1). */
  qos: z.union([z.literal(0), z.literal(1)]).optional(),
  /** Connections opened at once while starting (the broker's accept queue is not under test). */
  connectSlice: z.number().int().positive().optional(),
});
export type StartCommand = z.infer<typeof StartCommand>;

export const Command = z.discriminatedUnion('type', [
  StartCommand,
  z.object({ type: z.literal('powerOn') }),
  z.object({ type: z.literal('status') }),
  /** Endpoint IDs of agents still waiting for a NotifyResp. */
  z.object({ type: z.literal('unacked') }),
  z.object({ type: z.literal('stop') }),
]);
export type Command = z.infer<typeof Command>;

export interface ChildStatus {
  agents: number;
  connections: number;
  connectionsUp: number;
  /** Agents with no Notify waiting for its NotifyResp. */
  acked: number;
  requests: number;
  notifiesSent: number;
  notifyAcks: number;
  /** process.cpuUsage() of the child, µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
}

export type Reply =
  | { type: 'started'; agents: number; connections: number }
  | { type: 'ok' }
  | { type: 'status'; status: ChildStatus }
  | { type: 'unacked'; ids: string[] }
  | { type: 'error'; message: string };

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

export interface AgentProcessesOptions extends Omit<StartCommand, 'type' | 'from' | 'count'> {
  count: number;
  /** Child processes to split the agents over (default: one per 25 000 agents, at least one). */
  processes?: number;
}

export interface AgentProcesses {
  /** Endpoint IDs of every agent, in serial order. */
  readonly endpointIds: string[];
  readonly connections: number;
  readonly processes: number;
  /** Process ids of the children (benchmarks read their CPU and syscall counters from /proc). */
  readonly pids: number[];
  powerOn(): Promise<void>;
  /** Summed over the children; CPU and RSS summed too. */
  status(): Promise<ChildStatus>;
  unacked(): Promise<string[]>;
  stop(): Promise<void>;
}

class Child {
  private readonly waiters: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  private exited: Error | undefined;

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m) => this.waiters.shift()?.resolve(m as Reply));
    proc.on('exit', (code, signal) => {
      this.exited = new Error(`agent process exited (${signal ?? code})`);
      for (const w of this.waiters.splice(0)) w.reject(this.exited);
    });
  }

  async call(cmd: Command): Promise<Reply> {
    if (this.exited) throw this.exited;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.proc.send(cmd);
    });
    if (reply.type === 'error') throw new Error(`agent process: ${reply.message}`);
    return reply;
  }
}

function sum(a: ChildStatus, b: ChildStatus): ChildStatus {
  const out = { ...a };
  for (const k of Object.keys(b) as Array<keyof ChildStatus>) out[k] += b[k];
  return out;
}

export async function startAgentProcesses(opts: AgentProcessesOptions): Promise<AgentProcesses> {
  const { count, processes: wanted, ...common } = opts;
  const n = Math.max(1, Math.min(count, wanted ?? Math.ceil(count / 25_000)));
  const models = common.models.map(modelByKey);
  const endpointIds = Array.from({ length: count }, (_, j) => {
    const model = models[j % models.length] as (typeof models)[number];
    return osEndpointId(model.oui, `${common.serialPrefix}${String(j).padStart(6, '0')}`);
  });
  // tsx for the child when the parent runs under another loader (vitest); cwd resolves it.
  const execArgv = process.execArgv.includes('tsx') ? process.execArgv : ['--import', 'tsx'];
  const children: Child[] = [];
  const stopAll = async () => {
    await Promise.all(
      children.map(async (c) => {
        await c.call({ type: 'stop' }).catch(() => {});
        // The child exits by itself after answering (flushing what it writes at exit, e.g. a
        // --cpu-prof profile); it is killed only when it does not.
        if (c.proc.exitCode === null && c.proc.signalCode === null) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 5_000);
            c.proc.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
        if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill();
      }),
    );
  };
  let connections = 0;
  try {
    // Whole connections per child, so every child's pool is bounded the same way.
    const perChild = Math.ceil(Math.ceil(count / common.perConnection) / n) * common.perConnection;
    const starts: Array<Promise<Reply>> = [];
    for (let from = 0; from < count; from += perChild) {
      const child = new Child(
        fork(path.join(here, 'agent-process.ts'), [], { cwd: repoRoot, execArgv, stdio: 'inherit' }),
      );
      children.push(child);
      starts.push(child.call({ type: 'start', ...common, from, count: Math.min(perChild, count - from) }));
    }
    for (const r of await Promise.all(starts)) if (r.type === 'started') connections += r.connections;
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    endpointIds,
    connections,
    processes: children.length,
    pids: children.map((c) => c.proc.pid ?? 0),
    async powerOn() {
      await Promise.all(children.map((c) => c.call({ type: 'powerOn' })));
    },
    async status() {
      const all = await Promise.all(children.map((c) => c.call({ type: 'status' })));
      return all.map((r) => (r as Extract<Reply, { type: 'status' }>).status).reduce((a, b) => sum(a, b));
    },
    async unacked() {
      const all = await Promise.all(children.map((c) => c.call({ type: 'unacked' })));
      return all.flatMap((r) => (r as Extract<Reply, { type: 'unacked' }>).ids);
    },
    stop: stopAll,
  };
}
