import { SimDevice } from '../device.js';
import { modelByKey } from '../models.js';
import { type ChildStatus, Command, type Reply, type StartCommand } from './agent-processes.js';
import { type AgentHost, mqttAgentHost } from './host.js';

/**
 * Child-process entry of a simulated USP fleet (see agent-processes.ts): hosts a slice of the agents
 * on a bounded pool of MQTT connections, driven over Node IPC. Splitting the fleet over processes
 * keeps a 100 000-agent storm within the per-process file descriptor limit and off the controller's
 * core.
 */

let hosts: AgentHost[] = [];

async function start(cmd: StartCommand): Promise<Reply> {
  const models = cmd.models.map(modelByKey);
  const addrs = cmd.localAddresses ?? [];
  for (let i = cmd.from, n = 0; i < cmd.from + cmd.count; i += cmd.perConnection, n++) {
    const devices: SimDevice[] = [];
    for (let j = i; j < Math.min(cmd.from + cmd.count, i + cmd.perConnection); j++) {
      const model = models[j % models.length] as (typeof models)[number];
      devices.push(new SimDevice({ model, serial: `${cmd.serialPrefix}${String(j).padStart(6, '0')}` }));
    }
    hosts.push(
      mqttAgentHost({
        url: cmd.url,
        devices,
        backoff: cmd.backoff,
        protocolVersion: cmd.protocolVersion,
        qos: cmd.qos,
        localAddress: addrs.length > 0 ? addrs[n % addrs.length] : undefined,
        agent: {
          controllerId: cmd.controllerId,
          onboarded: cmd.onboarded,
          subscriptions: cmd.subscriptions,
          notifyRetryMs: cmd.notifyRetryMs,
          timeScale: cmd.timeScale,
        },
      }),
    );
  }
  const slice = cmd.connectSlice ?? 20;
  for (let i = 0; i < hosts.length; i += slice)
    await Promise.all(hosts.slice(i, i + slice).map((h) => h.start()));
  return { type: 'started', agents: cmd.count, connections: hosts.length };
}

function status(): ChildStatus {
  let agents = 0;
  let acked = 0;
  let requests = 0;
  let notifiesSent = 0;
  let notifyAcks = 0;
  let up = 0;
  for (const h of hosts) {
    if (h.mtp.isUp()) up += 1;
    for (const a of h.agents.values()) {
      agents += 1;
      if (a.pendingNotifies() === 0) acked += 1;
      requests += a.stats.requests;
      notifiesSent += a.stats.notifiesSent;
      notifyAcks += a.stats.notifyAcks;
    }
  }
  const cpu = process.cpuUsage();
  return {
    agents,
    connections: hosts.length,
    connectionsUp: up,
    acked,
    requests,
    notifiesSent,
    notifyAcks,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rssBytes: process.memoryUsage().rss,
  };
}

async function handle(raw: unknown): Promise<Reply> {
  const parsed = Command.safeParse(raw);
  if (!parsed.success) return { type: 'error', message: `bad command: ${parsed.error.message}` };
  const cmd = parsed.data;
  switch (cmd.type) {
    case 'start':
      if (hosts.length > 0) return { type: 'error', message: 'already started' };
      return start(cmd);
    case 'powerOn':
      for (const h of hosts) h.powerOnAll();
      return { type: 'ok' };
    case 'status':
      return { type: 'status', status: status() };
    case 'unacked': {
      const ids: string[] = [];
      for (const h of hosts)
        for (const a of h.agents.values()) if (a.pendingNotifies() > 0) ids.push(a.endpointId);
      return { type: 'unacked', ids };
    }
    case 'stop':
      await Promise.all(hosts.map((h) => h.stop()));
      hosts = [];
      return { type: 'ok' };
  }
}

if (process.send) {
  // One command at a time, answered in order: the parent keeps a FIFO of waiters.
  let chain: Promise<void> = Promise.resolve();
  process.on('message', (raw) => {
    chain = chain.then(async () => {
      const reply = await handle(raw).catch((err: unknown) => ({
        type: 'error' as const,
        message: err instanceof Error ? err.message : String(err),
      }));
      process.send?.(reply);
      if ((raw as { type?: string } | null)?.type === 'stop') process.disconnect();
    });
  });
  // The parent died: nothing else will stop us.
  process.on('disconnect', () => {
    setTimeout(() => process.exit(0), 3_000).unref();
    void Promise.all(hosts.map((h) => h.stop())).finally(() => process.exit(0));
  });
}
