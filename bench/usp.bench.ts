import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { WriteBatcher } from '../executor/persist.js';
import { UspController } from '../executor/usp/controller.js';
import { batcherSink, deviceResolver, inventoryRegistrar, knownUspDevices } from '../executor/usp/driver.js';
import type { SetReq } from '../executor/usp/messages.js';
import { MqttMtp } from '../executor/usp/mtp/mqtt.js';
import { startMosquitto } from '../platform/mqtt.js';
import { startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';
import { modelByKey } from '../sim/models.js';
import { type AgentProcesses, type ChildStatus, startAgentProcesses } from '../sim/usp/agent-processes.js';
import { agentTopic, controllerTopic } from '../sim/usp/host.js';
import type { Benchmark } from './bench.js';

/**
 * `usp`: (1) Set round trips controller → mosquitto → agent → mosquitto → controller for 10 000
 * agents, a window of requests in flight (pipelined); (2) a reconnect storm of 100 000 agents, each
 * sending Boot! with send_resp at once; an agent is lost when, within 10 minutes, it has neither a
 * persisted event in PostgreSQL nor its NotifyResp.
 *
 * Everything runs on loopback in one machine: mosquitto, PostgreSQL, the controller (this process)
 * and the agents (child processes, each multiplexing its agents over a bounded pool of MQTT client
 * connections: one endpoint ID and topic per agent, one TCP connection per `--per-conn` agents). The
 * hard limit of 20 000 file descriptors per process (mosquitto's too) rules out one socket per agent.
 *
 * Flags: `--set-only` (Set round trips alone, no PostgreSQL: a quick iteration), `--storm-only`,
 * `--qos 0|1` (MQTT QoS of every Record, default 1 as the product), `--roundtrips`, `--window`,
 * `--agents`, `--storm`. Besides the keys the JSON carries CPU µs per Set round trip per
 * component (set_ctrl_cpu_us, set_agents_cpu_us, set_broker_cpu_us, set_cpu_us; user + system from
 * /proc, so they hold on a loaded machine where the wall-clock figures do not) and set_p50_ms.
 */

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a non-negative number`);
  return v;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const BACKOFF = { minMs: 1_000, multiplier: 2, maxMs: 30_000 };
const MODELS = ['hgw500'];

/** Pid of the process whose command line mentions `needle` (mosquitto, by its config directory). */
function pidOf(needle: string): number | undefined {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) return Number(pid);
    } catch {}
  }
  return undefined;
}

/** CPU seconds (user, system) and read/write syscalls of some processes so far, from /proc. */
interface ProcCounters {
  userS: number;
  sysS: number;
  syscr: number;
  syscw: number;
}

function countersOf(pids: number[]): ProcCounters {
  const tick = 100; // USER_HZ on Linux
  const out: ProcCounters = { userS: 0, sysS: 0, syscr: 0, syscw: 0 };
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.userS += Number(f[11]) / tick;
      out.sysS += Number(f[12]) / tick;
      const io = readFileSync(`/proc/${pid}/io`, 'utf8');
      out.syscr += Number(/syscr: (\d+)/.exec(io)?.[1] ?? Number.NaN);
      out.syscw += Number(/syscw: (\d+)/.exec(io)?.[1] ?? Number.NaN);
    } catch {
      out.userS = Number.NaN;
    }
  }
  return out;
}

const minus = (a: ProcCounters, b: ProcCounters): ProcCounters => ({
  userS: a.userS - b.userS,
  sysS: a.sysS - b.sysS,
  syscr: a.syscr - b.syscr,
  syscw: a.syscw - b.syscw,
});

const cpuS = (s: ChildStatus) => (s.cpuUserUs + s.cpuSystemUs) / 1e6;

function controllerOn(url: string, id: string, qos: 0 | 1) {
  return new MqttMtp({
    url,
    protocolVersion: 5,
    qos,
    endpointId: id,
    subscriptions: [controllerTopic(id)],
    replyTopic: controllerTopic(id),
    backoff: BACKOFF,
  });
}

/** 127.0.0.2 … : connections spread over several loopback source addresses. */
const loopbacks = (n: number) => Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);

const bench: Benchmark = async (args) => {
  // `--set-only`: the Set round trips alone (no PostgreSQL, no storm), for quick iterations;
  // `--storm-only`: the reconnect storm alone. The final JSON needs both (no flag).
  const setOnly = args.includes('--set-only');
  const stormOnly = args.includes('--storm-only');
  if (setOnly && stormOnly) throw new Error('--set-only and --storm-only exclude each other');
  const agents = arg(args, 'agents', 10_000);
  const roundTrips = stormOnly ? 0 : arg(args, 'roundtrips', 60_000);
  const window = arg(args, 'window', 256);
  const setPerConn = arg(args, 'set-per-conn', 100);
  const setProcs = arg(args, 'set-procs', 1);
  const storm = setOnly ? 0 : arg(args, 'storm', 100_000);
  const perConnection = arg(args, 'per-conn', 500);
  const stormProcs = arg(args, 'storm-procs', 4);
  const stormLimitS = arg(args, 'storm-limit-s', 600);
  // The product's default (1); `--qos 0` measures the other choice TR-369 allows (R-MQTT.20).
  const qos = arg(args, 'qos', 1);
  if (qos !== 0 && qos !== 1) throw new Error('--qos is 0 or 1');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-bench-usp-'));
  // As root, PostgreSQL runs as `postgres`, which must be able to reach its data directory.
  chmodSync(dir, 0o755);
  const notes: string[] = [
    `load before: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ];
  const mqttDir = path.join(dir, 'mqtt');
  const broker = await startMosquitto({ dir: mqttDir, port: await freePort() });
  const brokerPids = () => {
    const pid = pidOf(mqttDir);
    return pid ? [pid] : [];
  };
  // The Set path persists nothing (no Notify is sent by a Set without subscriptions): PostgreSQL
  // is started for the storm only.
  const pg =
    storm > 0
      ? await startPostgres({
          dataDir: path.join(dir, 'pg'),
          port: await freePort(),
          ephemeral: true,
        }).catch(async (err: unknown) => {
          await broker.stop();
          throw err;
        })
      : undefined;
  if (pg) await migrate(pg.url);
  const dbh = pg ? connect(pg.url, { max: 8 }) : undefined;
  const batcher = dbh ? new WriteBatcher(dbh.db, { maxDelayMs: 10, maxJobs: 5_000 }) : undefined;
  const metrics: Record<string, number> = {};
  const table: Array<Record<string, string | number>> = [];
  const fleets: AgentProcesses[] = [];
  try {
    // ---- 1. Set round trips ------------------------------------------------------------------
    if (agents > 0 && roundTrips > 0) {
      const ctrlId = 'proto::bench-controller-set';
      let unexpectedNotifies = 0;
      const controller = new UspController({
        endpointId: ctrlId,
        mtps: [controllerOn(broker.url, ctrlId, qos)],
        // Set-phase agents have no subscriptions: a Notify here is a bench fault, never acknowledged.
        events: batcher
          ? batcherSink(batcher)
          : {
              append: () => {
                unexpectedNotifies += 1;
                return Promise.reject(new Error('the Set phase expects no notifications'));
              },
            },
        agentTopic,
        onboarding: false,
        requestTimeoutMs: 10_000,
        retries: 0,
      });
      await controller.start();
      const fleet = await startAgentProcesses({
        url: broker.url,
        controllerId: ctrlId,
        serialPrefix: 'SET',
        count: agents,
        processes: setProcs,
        perConnection: setPerConn,
        models: MODELS,
        onboarded: true,
        backoff: BACKOFF,
        localAddresses: loopbacks(4),
        qos,
      });
      fleets.push(fleet);
      await fleet.powerOn();
      const ids = fleet.endpointIds;
      const lat: number[] = [];
      let failures = 0;
      const reqs: SetReq[] = Array.from({ length: 997 }, (_, k) => ({
        allow_partial: false,
        update_objs: [
          {
            obj_path: 'Device.WiFi.SSID.1.',
            param_settings: [{ param: 'SSID', value: `ssid-${k}`, required: true }],
          },
        ],
      }));
      const runSets = async (n: number, record: boolean) => {
        let next = 0;
        const worker = async () => {
          while (next < n) {
            const i = next++;
            const id = ids[i % ids.length] as string;
            const t0 = performance.now();
            try {
              await controller.set(id, reqs[i % reqs.length] as SetReq);
              if (record) lat.push(performance.now() - t0);
            } catch {
              failures += 1;
            }
          }
        };
        await Promise.all(Array.from({ length: window }, worker));
      };
      // Warm-up: one round trip per agent so routes, JIT and broker subscriptions are in place.
      await runSets(ids.length, false);
      failures = 0;
      const before = {
        ctrl: countersOf([process.pid]),
        agents: countersOf(fleet.pids),
        broker: countersOf(brokerPids()),
      };
      const t0 = performance.now();
      await runSets(roundTrips, true);
      const secs = (performance.now() - t0) / 1000;
      const ctrl = minus(countersOf([process.pid]), before.ctrl);
      const agentsC = minus(countersOf(fleet.pids), before.agents);
      const brokerC = minus(countersOf(brokerPids()), before.broker);
      const ops = Math.max(1, lat.length);
      const us = (c: ProcCounters) => Math.round(((c.userS + c.sysS) * 1e6) / ops);
      const split = (c: ProcCounters) =>
        `${Math.round((c.userS * 1e6) / ops)} user + ${Math.round((c.sysS * 1e6) / ops)} sys µs, ${(c.syscr / ops).toFixed(2)} reads + ${(c.syscw / ops).toFixed(2)} writes`;
      lat.sort((a, b) => a - b);
      metrics.set_roundtrips_per_s = Math.round(lat.length / secs);
      metrics.p99_ms = round1(quantile(lat, 0.99));
      metrics.set_p50_ms = round1(quantile(lat, 0.5));
      metrics.set_failed = failures;
      // CPU time per Set round trip, per component and in total (user + system, from /proc).
      metrics.set_ctrl_cpu_us = us(ctrl);
      metrics.set_agents_cpu_us = us(agentsC);
      metrics.set_broker_cpu_us = us(brokerC);
      metrics.set_cpu_us = metrics.set_ctrl_cpu_us + metrics.set_agents_cpu_us + metrics.set_broker_cpu_us;
      table.push({
        phase: 'set round trips',
        agents: ids.length,
        'mqtt conns (agents/conn)': `${fleet.connections} (${setPerConn})`,
        processes: fleet.processes,
        ops: lat.length,
        failed: failures,
        seconds: round1(secs),
        'ops/s': metrics.set_roundtrips_per_s,
        p50_ms: metrics.set_p50_ms,
        p99_ms: metrics.p99_ms,
        'ctrl cpu µs/op': metrics.set_ctrl_cpu_us,
        'agents cpu µs/op': metrics.set_agents_cpu_us,
        'broker cpu µs/op': metrics.set_broker_cpu_us,
      });
      notes.push(
        `set: MQTT QoS ${qos}, window ${window} requests in flight over ${secs.toFixed(1)} s wall; per round trip: controller ${split(ctrl)}; agents ${split(agentsC)}; mosquitto ${split(brokerC)}; total ${metrics.set_cpu_us} µs CPU (${Math.round(1e6 / Math.max(1, metrics.set_cpu_us))} round trips per core-second); notifications in the Set phase: ${unexpectedNotifies}; load after: ${os.loadavg()[0]?.toFixed(2)}`,
      );
      await fleet.stop();
      fleets.pop();
      await controller.stop();
    }

    // ---- 2. Reconnect storm ------------------------------------------------------------------
    if (storm > 0 && dbh && batcher) {
      const stormId = 'proto::bench-controller-storm';
      // The agents are reconnecting devices: already in the inventory, loaded at controller start
      // as the executor process does (runtime.ts), so nothing is looked up or re-onboarded per agent.
      const model = modelByKey(MODELS[0] as string);
      await dbh.pool.query(
        `INSERT INTO devices (id, oui, serial_number, protocol, product_class, software_version, data_model_root)
         SELECT $1 || lpad(i::text, 6, '0'), $2, 'STM' || lpad(i::text, 6, '0'), 'usp', $3, $4, 'Device.'
           FROM generate_series(0, $5::int - 1) AS i`,
        [
          `${model.oui}-${model.productClass}-STM`,
          model.oui,
          model.productClass,
          model.defaultFirmware,
          storm,
        ],
      );
      const known = await knownUspDevices(dbh.pool);
      const idOf = new Map(known);
      const stormController = new UspController({
        endpointId: stormId,
        mtps: [controllerOn(broker.url, stormId, qos)],
        events: batcherSink(batcher),
        register: inventoryRegistrar(dbh.pool, batcher),
        resolveDeviceId: deviceResolver(dbh.pool),
        devices: known,
        agentTopic,
      });
      await stormController.start();
      const bootSub = {
        ID: 'fb-boot',
        Enable: 'true',
        NotifType: 'Event',
        ReferenceList: 'Device.Boot!',
        NotifRetry: 'true',
      };
      const tc = performance.now();
      const fleet = await startAgentProcesses({
        url: broker.url,
        controllerId: stormId,
        serialPrefix: 'STM',
        count: storm,
        processes: stormProcs,
        perConnection,
        models: MODELS,
        onboarded: true,
        subscriptions: [bootSub],
        notifyRetryMs: 10_000,
        backoff: BACKOFF,
        localAddresses: loopbacks(8),
        qos,
      });
      fleets.push(fleet);
      const connectS = (performance.now() - tc) / 1000;
      const agentsBefore = await fleet.status();
      const brokerBefore = countersOf(brokerPids());
      const cpu0 = process.cpuUsage();
      const ts = performance.now();
      // Every agent comes back at once and announces Boot! (send_resp = NotifRetry = true).
      await fleet.powerOn();
      const deadline = Date.now() + stormLimitS * 1000;
      let st = await fleet.status();
      let lastLog = Date.now();
      while (Date.now() < deadline && st.acked < st.agents) {
        await new Promise((r) => setTimeout(r, 500));
        st = await fleet.status();
        if (Date.now() - lastLog >= 10_000) {
          lastLog = Date.now();
          console.error(
            `storm ${((performance.now() - ts) / 1000).toFixed(0)} s: ${st.acked}/${st.agents} acknowledged, ${stormController.stats.notifies} Notify received, ${batcher.stats.events} events written, load ${os.loadavg()[0]?.toFixed(1)}`,
          );
        }
      }
      const stormS = (performance.now() - ts) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const ctrlCpuS = (cpu.user + cpu.system) / 1e6;
      const agentsCpuS = cpuS(st) - cpuS(agentsBefore);
      const brokerD = minus(countersOf(brokerPids()), brokerBefore);
      const brokerCpuS = brokerD.userS + brokerD.sysS;
      const unacked = await fleet.unacked();
      // The machine may be saturated: a connection timeout here is retried, not reported as loss.
      let rows: { rows: Array<{ id: string }> } = { rows: [] };
      for (let attempt = 1; ; attempt++) {
        try {
          rows = await dbh.pool.query<{ id: string }>(
            `SELECT DISTINCT device_id AS id FROM device_events WHERE kind = 'boot' AND device_id LIKE '%-STM%'`,
          );
          break;
        } catch (err) {
          if (attempt >= 10) throw err;
          await new Promise((r) => setTimeout(r, 2_000));
        }
      }
      const persisted = new Set(rows.rows.map((r) => r.id));
      const unackedSet = new Set(unacked);
      const stored = (eid: string) => persisted.has(idOf.get(eid) ?? eid);
      const lost = unacked.filter((eid) => !stored(eid)).length;
      const unackedButStored = unacked.length - lost;
      const ackedNotStored = fleet.endpointIds.filter((eid) => !unackedSet.has(eid) && !stored(eid)).length;
      metrics.reconnect_devices = fleet.endpointIds.length;
      metrics.reconnect_lost = lost;
      metrics.reconnect_s = round1(stormS);
      table.push({
        phase: 'reconnect storm',
        agents: fleet.endpointIds.length,
        'mqtt conns (agents/conn)': `${fleet.connections} (${perConnection})`,
        processes: fleet.processes,
        ops: persisted.size,
        failed: lost,
        seconds: metrics.reconnect_s,
        'ops/s': Math.round(persisted.size / stormS),
        p50_ms: '',
        p99_ms: '',
        'ctrl cpu µs/op': Math.round((ctrlCpuS * 1e6) / Math.max(1, persisted.size)),
        'agents cpu µs/op': Math.round((agentsCpuS * 1e6) / Math.max(1, persisted.size)),
        'broker cpu µs/op': Math.round((brokerCpuS * 1e6) / Math.max(1, persisted.size)),
      });
      notes.push(
        `storm: ${persisted.size} agents with a persisted boot event, ${st.acked} acknowledged, ${unackedButStored} stored but not yet acknowledged, ${ackedNotStored} acknowledged without a stored event (must be 0); Notify sent ${st.notifiesSent - agentsBefore.notifiesSent} (retries included), duplicates absorbed ${stormController.stats.notifyDuplicates}; DB flushes ${batcher.stats.flushes}; ${fleet.processes} agent processes connected in ${connectS.toFixed(1)} s before the storm; controller CPU ${ctrlCpuS.toFixed(1)} s, agents ${agentsCpuS.toFixed(1)} s, mosquitto ${brokerCpuS.toFixed(1)} s; load after: ${os.loadavg()[0]?.toFixed(2)}`,
      );
      await fleet.stop();
      fleets.pop();
      await stormController.stop();
    }
    notes.push(
      `Agents share MQTT client connections (set: ${setPerConn} per connection, storm: ${perConnection}), each keeping its own endpoint ID, topic and Record flow; they run in child processes. Controller, agents, mosquitto and PostgreSQL share the machine's ${os.cpus().length} cores (wall-clock figures are pessimistic when other work runs: see CPU µs/op).`,
    );
  } finally {
    await Promise.all(fleets.map((f) => f.stop().catch(() => {})));
    await dbh?.close().catch(() => {});
    await pg?.stop().catch(() => {});
    await broker.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
  return { metrics, table, notes, partial: setOnly || stormOnly };
};

export default bench;
