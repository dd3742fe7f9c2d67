import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../db/migrate.js';
import { AcsConfig } from '../executor/cwmp/acs.js';
import { provisionCredentials } from '../executor/cwmp/driver.js';
import { CredentialCipher } from '../executor/secrets.js';
import { startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';
import { SimFleet } from '../sim/cwmp/fleet.js';
import { MODELS } from '../sim/models.js';
import type { Benchmark } from './bench.js';
import { option } from './dataset.js';

/**
 * Inform storm: N simulated CPEs (separate process, digest auth, sources spread over loopback
 * addresses) start their sessions at once against the ACS (separate process) with PostgreSQL on this
 * machine; the same simulator against a bare protocol server, just before and just after, gives the
 * machine's ceiling (the mean of the two).
 *
 * Usage: `npm run bench -- storm [sizes] [options]`
 *   sizes                comma-separated device counts (default 10000,50000,100000; other sizes
 *                        write bench/results/storm.partial.json)
 *   --procs N            simulator processes (default 2, one per core: more of them take CPU time
 *                        from the server under test, and the listen queue overflows)
 *   --sockets N          sessions open at once over all simulator processes (default 8000; each
 *                        process has a hard limit of 20 000 descriptors)
 *   --max-sessions N     the ACS's admission limit (default 1000)
 *   --deadline-s S       bound on each storm (ACS and bare alike); devices not done by then give up
 *                        and count as not completed (default 1800)
 * Diagnostics: STORM_PROF=<dir> writes CPU profiles of every child; STORM_MEMLOG=<file> a line of the
 * ACS's memory (RSS, heap spaces, buffers) per second.
 * The three sizes take about 20 minutes on a quiet 2-core machine.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const SECRET = 'storm-credential-key';
/** Loopback source addresses of simulator process p: 8 each, so ephemeral ports never run out. */
const sources = (p: number) => Array.from({ length: 8 }, (_, i) => `127.0.${p + 1}.${i + 1}`);

/**
 * Start a child with a raised descriptor limit (`ulimit -n`) and an IPC channel; `nodeFlagsOf` names
 * the fleetbrain command whose Node flags it runs with (bin/node-flags: the ACS runs as the executor).
 */
function child(file: string, args: string[], nodeFlagsOf = ''): ChildProcess {
  // STORM_PROF=<dir> writes a CPU profile of every child there (to see where the ACS spends its time).
  const prof = process.env.STORM_PROF ? `--cpu-prof --cpu-prof-dir=${process.env.STORM_PROF} ` : '';
  const cmd = `set -e; flags=$(bin/node-flags '${nodeFlagsOf}'); ulimit -n $(ulimit -Hn) 2>/dev/null || true; exec node ${prof}$flags --import tsx ${file} ${args.map((a) => `'${a}'`).join(' ')}`;
  return spawn('bash', ['-c', cmd], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: path.resolve(here, '..'),
  });
}

function ask<T>(c: ChildProcess, msg: object | null, timeoutMs = 1_800_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('child did not answer')), timeoutMs);
    c.once('message', (m) => {
      clearTimeout(t);
      resolve(m as T);
    });
    c.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
    if (msg) c.send(msg);
  });
}

interface SimReply {
  cpuMs: number;
  ok: number;
  sessions: number;
  rejected503: number;
  errors: number;
  informsAcked: number;
  latenciesMs: number[];
  firstStart: number;
  lastDone: number;
  sampleErrors: string[];
  acked: Record<string, number>;
}
interface StormResult {
  /** CPU time of the simulator processes over the storm. */
  simCpuMs: number;
  ok: number;
  rejected503: number;
  errors: number;
  informsAcked: number;
  p50: number;
  p99: number;
  spanMs: number;
  sampleErrors: string[];
  acked: Record<string, number>;
}
interface ServerStats {
  rss: number;
  peakRss: number;
  cpuMs: number;
  sessionsCompleted?: number;
  informs?: number;
  flushes?: number;
  jobs?: number;
  dropped?: number;
  peakHeapUsed: number;
  peakHeapTotal: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

function identities(count: number, prefix: string) {
  return Array.from({ length: count }, (_, i) => {
    const m = MODELS[i % MODELS.length]!;
    const id = `${m.oui}-${m.productClass}-${prefix}${String(i).padStart(7, '0')}`;
    const c = SimFleet.credentialsFor('sim-secret', id);
    return { deviceId: id, username: c.username, password: c.password };
  });
}

/**
 * CPU time (ms) of the PostgreSQL cluster so far: the postmaster with its reaped children (exited
 * backends) plus its live children, from /proc (Linux; clock ticks of 10 ms). PostgreSQL shares the
 * cores with the ACS, so its CPU per session is part of the ACS's cost.
 */
function pgCpuMs(dataDir: string): number {
  const ticks = (pid: string, withChildren: boolean): number => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
      return Number(f[11]) + Number(f[12]) + (withChildren ? Number(f[13]) + Number(f[14]) : 0);
    } catch {
      return 0; // exited meanwhile: its time is in the postmaster's reaped-children total
    }
  };
  const postmaster = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]!.trim();
  let total = ticks(postmaster, true);
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === postmaster) total += ticks(pid, true);
    } catch {}
  }
  return total * 10;
}

interface StormOptions {
  procs: number;
  sockets: number;
  deadlineMs: number;
}

/** N devices split over `procs` simulator processes, built first, then started at once. */
async function storm(url: string, count: number, prefix: string, o: StormOptions): Promise<StormResult> {
  const per = Math.ceil(count / o.procs);
  const sims = Array.from({ length: o.procs }, () => child(path.join(here, 'storm', 'sim-process.ts'), []));
  try {
    await Promise.all(sims.map((c) => ask(c, null)));
    await Promise.all(
      sims.map((c, p) =>
        ask(c, {
          cmd: 'prepare',
          url,
          count: Math.max(0, Math.min(per, count - p * per)),
          firstIndex: p * per,
          serialPrefix: prefix,
          localAddresses: sources(p),
        }),
      ),
    );
    const replies = await Promise.all(
      sims.map((c) =>
        ask<SimReply>(
          c,
          {
            cmd: 'storm',
            retryScale: 1,
            deadlineMs: o.deadlineMs,
            concurrency: Math.floor(o.sockets / o.procs),
          },
          o.deadlineMs + 120_000,
        ),
      ),
    );
    const lat = replies.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
    const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
    const sum = (k: 'ok' | 'rejected503' | 'errors' | 'informsAcked') =>
      replies.reduce((a, r) => a + r[k], 0);
    return {
      simCpuMs: replies.reduce((a, r) => a + r.cpuMs, 0),
      ok: sum('ok'),
      rejected503: sum('rejected503'),
      errors: sum('errors'),
      informsAcked: sum('informsAcked'),
      p50: q(0.5),
      p99: q(0.99),
      spanMs: Math.max(...replies.map((r) => r.lastDone)) - Math.min(...replies.map((r) => r.firstStart)),
      sampleErrors: replies.flatMap((r) => r.sampleErrors).slice(0, 5),
      acked: Object.assign({}, ...replies.map((r) => r.acked)),
    };
  } finally {
    for (const c of sims) c.kill();
  }
}

/** The same simulator against the bare protocol server: the machine's ceiling. */
async function bareStorm(n: number, prefix: string, so: StormOptions) {
  const bare = child(path.join(here, 'storm', 'acs-process.ts'), ['bare', '', SECRET]);
  process.once('exit', () => bare.kill());
  const ready = await ask<{ url: string }>(bare, null);
  const before = await ask<ServerStats>(bare, { cmd: 'stats' });
  const b = await storm(ready.url, n, prefix, so);
  const after = await ask<ServerStats>(bare, { cmd: 'stats' });
  bare.send({ cmd: 'exit' });
  return {
    ...b,
    sps: b.ok / (b.spanMs / 1000),
    serverCpuMs: after.cpuMs - before.cpuMs,
  };
}

const bench: Benchmark = async (args) => {
  const allSizes = '10000,50000,100000';
  const sizeArg = args[0] && !args[0].startsWith('--') ? args[0] : allSizes;
  const sizes = sizeArg.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`storm: bad sizes ${sizeArg}`);
  const num = (name: string, dflt: number) => {
    const v = option(args, name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`storm: ${name} must be a positive number`);
    return n;
  };
  const sockets = num('--sockets', 8000);
  const maxSessions = num('--max-sessions', 1000);
  const deadlineMs = num('--deadline-s', 1800) * 1000;
  const procs = num('--procs', 2);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-storm-'));
  // As root the cluster runs as `postgres`, which must reach its data directory.
  chmodSync(dir, 0o755);
  const pgs = await startPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    database: 'storm',
  });
  const table: Array<Record<string, string | number>> = [];
  const metrics: Record<string, number> = {};
  const notes: string[] = [];
  try {
    await migrate(pgs.url);
    const pool = new pg.Pool({ connectionString: pgs.url, max: 4 });
    const cipher = new CredentialCipher(SECRET);
    for (const n of sizes) {
      const prefix = `N${n}-`;
      await provisionCredentials(pool, cipher, identities(n, prefix));
      const so: StormOptions = { procs, sockets, deadlineMs };
      // The ceiling is measured before and after the ACS's storm, and averaged: this machine's speed
      // drifts (the same storm's CPU per session differs by up to a quarter from one minute to the next).
      const b1 = await bareStorm(n, prefix, so);
      // The ACS: a fresh process per size, so its memory is measured per storm.
      const acs = child(
        path.join(here, 'storm', 'acs-process.ts'),
        ['acs', pgs.url, SECRET, String(maxSessions)],
        'executor',
      );
      // Whatever happens below, the ACS process does not outlive the benchmark.
      process.once('exit', () => acs.kill());
      const ready = await ask<{ url: string }>(acs, null);
      const before = await ask<ServerStats>(acs, { cmd: 'stats' });
      const pgBefore = pgCpuMs(path.join(dir, 'pg'));
      const started = new Date();
      const s = await storm(ready.url, n, prefix, so);
      const after = await ask<ServerStats>(acs, { cmd: 'stats' });
      const pgMsPerSession = (pgCpuMs(path.join(dir, 'pg')) - pgBefore) / Math.max(1, s.ok);
      acs.send({ cmd: 'exit' });
      // Lost = informs answered with InformResponse that have no matching device_events row, per device
      // (a device whose answer was lost in transit retries and is stored twice: that is not a loss).
      const rows = await pool.query<{ device_id: string; n: number }>(
        `SELECT device_id, count(*)::int AS n FROM device_events WHERE kind = 'inform' AND at >= $1 AND device_id LIKE $2 GROUP BY device_id`,
        [started, `%-${prefix}%`],
      );
      const storedBy = new Map(rows.rows.map((r) => [r.device_id, r.n]));
      let lost = 0;
      let storedTotal = 0;
      for (const [id, n] of Object.entries(s.acked)) lost += Math.max(0, n - (storedBy.get(id) ?? 0));
      for (const n of storedBy.values()) storedTotal += n;
      const stored = { rows: [{ n: storedTotal }] };
      const sps = s.ok / (s.spanMs / 1000);
      const b2 = await bareStorm(n, prefix, so);
      const bsps = (b1.sps + b2.sps) / 2;
      const bOk = b1.ok + b2.ok;
      const k = `${Math.round(n / 1000)}k`;
      metrics[`peak_rss_mb_${k}`] = after.peakRss / 2 ** 20;
      metrics.devices = n;
      metrics.sessions_per_s = sps;
      metrics.baseline_sessions_per_s = bsps;
      metrics.p99_session_ms = s.p99;
      metrics.lost_informs = (metrics.lost_informs ?? 0) + lost;
      metrics.drain_s = s.spanMs / 1000;
      metrics.acs_cpu_ms_per_session = (after.cpuMs - before.cpuMs) / Math.max(1, s.ok);
      metrics.pg_cpu_ms_per_session = pgMsPerSession;
      table.push({
        devices: n,
        sim_procs: so.procs,
        completed: s.ok,
        baseline_completed: Math.min(b1.ok, b2.ok),
        sessions_per_s: Math.round(sps),
        baseline_sessions_per_s: Math.round(bsps),
        baseline_before_after: `${Math.round(b1.sps)}/${Math.round(b2.sps)}`,
        ratio: Number((sps / bsps).toFixed(2)),
        p50_ms: Math.round(s.p50),
        p99_ms: Math.round(s.p99),
        retries_503: s.rejected503,
        errors: s.errors,
        informs_acked: s.informsAcked,
        informs_stored: stored.rows[0]!.n,
        lost_informs: lost,
        drain_s: Number((s.spanMs / 1000).toFixed(1)),
        acs_cpu_ms_per_session: Number(((after.cpuMs - before.cpuMs) / Math.max(1, s.ok)).toFixed(2)),
        pg_cpu_ms_per_session: Number(pgMsPerSession.toFixed(2)),
        // The simulator shares the cores: its CPU per session against the ACS and against the bare server.
        sim_cpu_ms_per_session: Number((s.simCpuMs / Math.max(1, s.ok)).toFixed(2)),
        baseline_sim_cpu_ms_per_session: Number(((b1.simCpuMs + b2.simCpuMs) / Math.max(1, bOk)).toFixed(2)),
        baseline_server_cpu_ms_per_session: Number(
          ((b1.serverCpuMs + b2.serverCpuMs) / Math.max(1, bOk)).toFixed(2),
        ),
        acs_peak_rss_mb: Math.round(after.peakRss / 2 ** 20),
        acs_heap_at_peak_mb: `${Math.round(after.peakHeapUsed / 2 ** 20)}/${Math.round(after.peakHeapTotal / 2 ** 20)}`,
        acs_dropped_connections: (after.dropped ?? 0) - (before.dropped ?? 0),
        acs_loop_delay_p99_ms: Math.round(after.loopDelayP99Ms),
        acs_loop_delay_max_ms: Math.round(after.loopDelayMaxMs),
        // Writes handed to PostgreSQL per transaction: its fixed cost per commit is shared by these.
        jobs_per_flush: Number(
          (
            ((after.jobs ?? 0) - (before.jobs ?? 0)) /
            Math.max(1, (after.flushes ?? 0) - (before.flushes ?? 0))
          ).toFixed(1),
        ),
      });
      // Each size takes long: show its row and keep the figures so far, in case a later size is cut short.
      console.log(`storm ${n}: ${JSON.stringify(table.at(-1))}`);
      writeFileSync(
        path.join(here, 'results', 'storm.partial.json'),
        `${JSON.stringify({ name: 'storm', at: new Date().toISOString(), metrics }, null, 2)}\n`,
      );
      if (s.ok < n || b1.ok < n || b2.ok < n)
        notes.push(
          `NOT ALL DONE at ${n}: ACS ${s.ok}, bare ${b1.ok} and ${b2.ok} completed within the deadline`,
        );
      if (s.sampleErrors.length > 0) notes.push(`errors at ${n}: ${s.sampleErrors.join(' | ')}`);
      for (const b of [b1, b2])
        if (b.errors > 0) notes.push(`baseline errors at ${n}: ${b.errors}: ${b.sampleErrors.join(' | ')}`);
    }
    await pool.end();
    const r10 = metrics.peak_rss_mb_10k;
    const r100 = metrics.peak_rss_mb_100k;
    if (r10 && r100) notes.push(`ACS memory 100k/10k = ${(r100 / r10).toFixed(2)} (target ≤ 1.2)`);
    notes.push(
      `ACS: run as bin/fleetbrain runs the executor (${execFileSync('bin/node-flags', ['executor'], {
        cwd: path.resolve(here, '..'),
      })
        .toString()
        .trim()}); ` +
        `maxSessions ${maxSessions}; a new session beyond it waits up to ${AcsConfig.parse({}).admissionWaitMs / 1000} s for room, then gets 503 with a ` +
        'Retry-After from its admission schedule (≥ 1 s), honoured as given by the simulator; ' +
        'PostgreSQL durable (fsync on), writes grouped (group commit: one flush in flight, at most 1000 sessions each).',
      `simulator: ${sockets} sessions open at once over its processes, sources 127.0.<proc>.1-8; ` +
        'a failed session (reset, timeout) retried per TR-069 §3.2.1.1 (5–10 s, doubling); ' +
        'sessions/s = completed ÷ (last completion − first request); p99 over the successful attempt of each session.',
    );
  } finally {
    await pgs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  // Other sizes than the issue's three are a partial result, never written over the full one.
  return { metrics, table, notes, partial: sizeArg !== allSizes };
};

export default bench;
