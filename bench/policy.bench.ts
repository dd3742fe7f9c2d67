import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { readPolicySources } from '../policies/bundle.js';
import { loadPolicyEngine, type PolicyEngine } from '../policies/engine.js';
import { testPolicyData } from '../policies/fixtures/cases.js';
import { startOpaServer } from '../policies/opa-server.js';
import { type PolicyInput, PolicyInput as PolicyInputSchema } from '../policies/schema.js';
import type { Benchmark } from './bench.js';
import { percentile } from './stats.js';

/**
 * Policy decision throughput and latency: in-process wasm against `opa run --server` on the same
 * input (20 parameter changes, 50 strata, 200 topology elements), through the same decide() path
 * (schema check, canonical input hash, evaluation, result check).
 */

export function benchInput(): PolicyInput {
  const parameters = Array.from({ length: 20 }, (_, i) => {
    const radio = (i % 2) + 1;
    const paths = [
      [`Device.WiFi.Radio.${radio}.Channel`, 36 + i],
      [`Device.WiFi.SSID.${i + 1}.SSID`, `fleet-${i}`],
      [`Device.WiFi.AccessPoint.${i + 1}.SSIDAdvertisementEnabled`, true],
      [`Device.DeviceInfo.X_Vendor_Tag${i}`, `t${i}`],
    ] as const;
    const [path, value] = paths[i % paths.length]!;
    // One DNS change makes the class high, so the per-topology-element cap is evaluated.
    return i === 19 ? { path: 'Device.DNS.Client.Server.1.DNSServer', value: '192.0.2.53' } : { path, value };
  });
  const fleet = 1_000_000;
  const size = 20_000;
  return PolicyInputSchema.parse({
    action: 'propose',
    actor: { id: 'alice', kind: 'user', roles: ['operator'] },
    proposer: { id: 'alice', kind: 'user', roles: ['operator'] },
    change: { id: 'cr-bench', kind: 'parameters', parameters },
    cohort: {
      size,
      fleet_size: fleet,
      strata: Array.from({ length: 50 }, (_, i) => ({
        key: `model-${i % 10}/fw-${Math.floor(i / 10)}`,
        count: 400,
      })),
      topology: Array.from({ length: 200 }, (_, i) => ({
        kind: i < 10 ? 'region' : i < 60 ? 'olt' : 'pon_port',
        id: `el-${i}`,
        count: i < 10 ? 2000 : i < 60 ? 400 : 40,
        total: i < 10 ? 100_000 : i < 60 ? 4000 : 128,
      })),
    },
    devices: Array.from({ length: 10 }, (_, i) => ({
      model: `model-${i}`,
      firmware_version: '3.1.4',
      count: 2000,
    })),
    validation: { ok: true, errors: 0, warnings: 0, unknown_models: 0, fallback_schema: false },
    times: {
      utc: '2026-11-25T02:00:00Z',
      local: [
        {
          time_zone: 'Europe/Berlin',
          date: '2026-11-25',
          time: '03:00',
          weekday: 'wed',
          minute_of_day: 180,
          device_count: 15_000,
        },
        {
          time_zone: 'Europe/Lisbon',
          date: '2026-11-25',
          time: '02:00',
          weekday: 'wed',
          minute_of_day: 120,
          device_count: 5000,
        },
      ],
    },
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat, i.e. 11 and 12 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measure(
  engine: PolicyEngine,
  inputs: unknown[],
  n: number,
  warmup: number,
  serverPid?: number,
) {
  for (let i = 0; i < warmup; i++) await engine.decide(inputs[i % inputs.length]);
  const lat = new Array<number>(n);
  const cpu0 = process.cpuUsage();
  const server0 = serverPid ? processCpuSeconds(serverPid) : 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    const r = await engine.decide(inputs[i % inputs.length]);
    lat[i] = performance.now() - s;
    if (i === 0 && !r.decision.allow)
      throw new Error(`bench input denied: ${JSON.stringify(r.decision.deny)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // CPU time spent on the decisions: ours, plus the OPA server's for the server engine.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6 + (serverPid ? processCpuSeconds(serverPid) - server0 : 0);
  lat.sort((a, b) => a - b);
  return {
    perSecond: n / seconds,
    cpuUs: (cpuSeconds * 1e6) / n,
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    max: lat[n - 1] ?? 0,
  };
}

const bench: Benchmark = async (args) => {
  const n = Number(args[0] ?? 20_000);
  const serverN = Number(args[1] ?? 5_000);
  const input = benchInput();
  const inputBytes = Buffer.byteLength(JSON.stringify(input));

  const wasm = await loadPolicyEngine({ data: testPolicyData, opaUrl: '' });
  const sample = await wasm.decide(input);
  const inProcess = await measure(wasm, [input], n, 1000);
  // The engine validates and parses each plan member (change with its derived facts, devices,
  // cohort) once, as a plan's decisions share them; alternating two cohorts that differ in one
  // topology element makes every decision check, serialise and parse its cohort afresh.
  const other = structuredClone(input);
  other.cohort.topology[199]!.count -= 1;
  const cold = await measure(wasm, [input, other], Math.ceil(n / 4), 200);

  const server = await startOpaServer((await readPolicySources()).modules.map((m) => m.file));
  let remote: Awaited<ReturnType<typeof measure>>;
  try {
    const engine = await loadPolicyEngine({ data: testPolicyData, opaUrl: server.url });
    const same = await engine.decide(input);
    if (JSON.stringify(same.decision) !== JSON.stringify(sample.decision)) {
      throw new Error('OPA server and wasm disagree on the benchmark input');
    }
    remote = await measure(engine, [input], serverN, 500, server.pid);
  } finally {
    await server.stop();
  }

  const row = (engine: string, r: typeof inProcess, count: number) => ({
    engine,
    decisions: count,
    decisions_per_s: Math.round(r.perSecond),
    cpu_us_per_decision: Math.round(r.cpuUs),
    decisions_per_cpu_s: Math.round(1e6 / r.cpuUs),
    p50_ms: Number(r.p50.toFixed(3)),
    p99_ms: Number(r.p99.toFixed(3)),
    max_ms: Number(r.max.toFixed(3)),
  });
  return {
    metrics: {
      decisions_per_s: Math.round(inProcess.perSecond),
      p99_ms: Number(inProcess.p99.toFixed(3)),
      input_bytes: inputBytes,
      server_decisions_per_s: Math.round(remote.perSecond),
      server_p99_ms: Number(remote.p99.toFixed(3)),
      cold_decisions_per_s: Math.round(cold.perSecond),
      cold_p99_ms: Number(cold.p99.toFixed(3)),
    },
    table: [
      row('wasm (in-process, 1 thread)', inProcess, n),
      row('wasm, a new cohort every decision', cold, Math.ceil(n / 4)),
      row('opa run --server (HTTP, sequential)', remote, serverN),
    ],
    notes: [
      `input: 20 parameter changes, 50 strata, 200 topology elements, ${inputBytes} bytes; decision: ${
        sample.decision.allow ? 'allow' : 'deny'
      }, risk ${sample.decision.risk_class}`,
      'both engines go through decide(): input schema check, canonical input hash, evaluation, decision schema check',
      'a plan member (change with its derived facts, devices, cohort) is validated and parsed in wasm once and compared on later decisions; the "new cohort" row (cold_* keys) checks, serialises and parses the cohort on every decision',
      'target: in-process >= 5000 decisions/s with p99 < 2 ms, ahead of the OPA server',
      `load average while measuring: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${os.cpus().length} cores` +
        ' (decisions_per_cpu_s is CPU-time based and less sensitive to other processes than the wall-clock figures)',
    ],
  };
};

export default bench;
