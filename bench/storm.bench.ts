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
import { percentile } from './stats.js';

/**
 * Inform storm: N simulated CPEs (separate process, digest auth, sources spread over loopback
 * addresses) start their sessions at once against the ACS (separate process) with PostgreSQL on this
 * machine; the same simulator against a bare protocol server, just before and just after, gives the
 * machine's ceiling (the mean of the two). Each size is repeated (bare, ACS, bare, ACS, …, bare) and
 * reported by its median repeat, since one pair on this machine swings the ratio by ±0.1.
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
 *   --repeat N           ACS storms per size, each between two bare ones (default 3)
 *   --warmup N           CPEs of a storm each server (ACS and bare alike) takes just before the
 *                        measured one, not counted: the measured storm meets a running server, as
 *                        an outage's storm does, not one whose code V8 has yet to compile (default
 *                        2000; 0 measures a cold start)
 * Diagnostics: STORM_PROF=<dir> writes CPU profiles of every child; STORM_MEMLOG=<file> a line of the
 * ACS's memory (RSS, heap spaces, buffers) per second.
 * The three sizes, three repeats each, take about 25 minutes on a quiet 2-core machine.
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
  const c = spawn('bash', ['-c', cmd], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: path.resolve(here, '..'),
  });
  // Whatever happens, no child outlives the benchmark (and a child gone needs no such hook).
  const kill = () => c.kill();
  process.once('exit', kill);
  c.once('exit', () => process.off('exit', kill));
  return c;
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
  /** SYNs dropped on a full listen queue during the storm (see listenOverflows). */
  listenOverflows: number;
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

/**
 * Connections the kernel refused since boot because a listen queue was full (TcpExt ListenOverflows,
 * Linux): each such CPE's SYN is retried 1, 3, 7, … s later, so they are where a storm's stragglers
 * come from. Read before and after a storm; the servers are the only listeners that busy.
 */
function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
    const names = lines[i]!.split(' ');
    const values = lines[i + 1]!.split(' ');
    return Number(values[names.indexOf('ListenOverflows')] ?? 0);
  } catch {
    return 0;
  }
}

/** The kernel's cap on a listen queue (net.core.somaxconn) against the storm's simultaneous connects. */
function listenQueueNote(sockets: number): string {
  let cap = Number.NaN;
  try {
    cap = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
  } catch {}
  const backlog = AcsConfig.parse({}).backlog;
  const queue = Number.isNaN(cap) ? backlog : Math.min(cap, backlog);
  return queue >= sockets
    ? `listen queue ${queue} (backlog ${backlog}, net.core.somaxconn ${cap}) ≥ ${sockets} sockets: no SYN is dropped for want of room`
    : `LISTEN QUEUE ${queue} < ${sockets} sockets (net.core.somaxconn ${cap}): SYNs beyond it are dropped and retried 1, 3, 7, … s later, which measures the kernel's backoff more than the server (listen_overflows); raise it with sysctl -w net.core.somaxconn=65535`;
}

interface StormOptions {
  procs: number;
  sockets: number;
  deadlineMs: number;
  /** CPEs of a storm each server takes first, not counted (see `--warmup`). */
  warmup: number;
}

/** A server's warm-up storm: other CPEs than the measured ones, so the measured storm finds none known. */
const warmupPrefix = (prefix: string) => `W${prefix}`;

async function warmUp(url: string, prefix: string, o: StormOptions): Promise<void> {
  if (o.warmup > 0) await storm(url, o.warmup, warmupPrefix(prefix), o);
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
    const overflows0 = listenOverflows();
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
      listenOverflows: listenOverflows() - overflows0,
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
  const ready = await ask<{ url: string }>(bare, null);
  await warmUp(ready.url, prefix, so);
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

interface AcsRun extends StormResult {
  sps: number;
  lost: number;
  stored: number;
  before: ServerStats;
  after: ServerStats;
  pgMsPerSession: number;
}

/** The ACS (a fresh process, so its memory is measured per storm) under one storm; informs lost counted. */
async function acsStorm(
  pool: pg.Pool,
  pgs: { url: string; dataDir: string },
  maxSessions: number,
  n: number,
  prefix: string,
  so: StormOptions,
): Promise<AcsRun> {
  const acs = child(
    path.join(here, 'storm', 'acs-process.ts'),
    ['acs', pgs.url, SECRET, String(maxSessions)],
    'executor',
  );
  const ready = await ask<{ url: string }>(acs, null);
  await warmUp(ready.url, prefix, so);
  const before = await ask<ServerStats>(acs, { cmd: 'stats' });
  const pgBefore = pgCpuMs(pgs.dataDir);
  const started = new Date();
  const s = await storm(ready.url, n, prefix, so);
  const after = await ask<ServerStats>(acs, { cmd: 'stats' });
  const pgMsPerSession = (pgCpuMs(pgs.dataDir) - pgBefore) / Math.max(1, s.ok);
  acs.send({ cmd: 'exit' });
  // Lost = informs answered with InformResponse that have no matching device_events row, per device
  // (a device whose answer was lost in transit retries and is stored twice: that is not a loss).
  const rows = await pool.query<{ device_id: string; n: number }>(
    `SELECT device_id, count(*)::int AS n FROM device_events WHERE kind = 'inform' AND at >= $1 AND device_id LIKE $2 GROUP BY device_id`,
    [started, `%-${prefix}%`],
  );
  const storedBy = new Map(rows.rows.map((r) => [r.device_id, r.n]));
  let lost = 0;
  let stored = 0;
  for (const [id, k] of Object.entries(s.acked)) lost += Math.max(0, k - (storedBy.get(id) ?? 0));
  for (const k of storedBy.values()) stored += k;
  return { ...s, sps: s.ok / (s.spanMs / 1000), lost, stored, before, after, pgMsPerSession };
}

const bench: Benchmark = async (args) => {
  const allSizes = '10000,50000,100000';
  const sizeArg = args[0] && !args[0].startsWith('--') ? args[0] : allSizes;
  const sizes = sizeArg.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`storm: bad sizes ${sizeArg}`);
  const num = (name: string, dflt: number, min = 1) => {
    const v = option(args, name);
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`storm: ${name} must be a whole number ≥ ${min}`);
    return n;
  };
  const sockets = num('--sockets', 8000);
  const maxSessions = num('--max-sessions', 1000);
  const deadlineMs = num('--deadline-s', 1800) * 1000;
  const procs = num('--procs', 2);
  const warmup = num('--warmup', 2000, 0);
  const repeats = num('--repeat', 3);
  mkdirSync(path.join(here, 'results'), { recursive: true });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-storm-'));
  // As root the cluster runs as `postgres`, which must reach its data directory.
  chmodSync(dir, 0o755);
  const pgs = await startPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    database: 'storm',
  });
  const dataDir = path.join(dir, 'pg');
  const table: Array<Record<string, string | number>> = [];
  const metrics: Record<string, number> = {};
  const notes: string[] = [];
  const mb = (bytes: number) => bytes / 2 ** 20;
  const fixed = (v: number) => Number(v.toFixed(2));
  try {
    await migrate(pgs.url);
    const pool = new pg.Pool({ connectionString: pgs.url, max: 4 });
    const cipher = new CredentialCipher(SECRET);
    for (const n of sizes) {
      // Each repeat storms its own CPEs, so every ACS storm meets devices it has never seen.
      const prefixes = Array.from({ length: repeats }, (_, r) => `N${n}r${r}-`);
      await provisionCredentials(
        pool,
        cipher,
        prefixes.flatMap((p) => [...identities(n, p), ...identities(warmup, warmupPrefix(p))]),
      );
      const so: StormOptions = { procs, sockets, deadlineMs, warmup };
      // The ceiling is measured before and after each of the ACS's storms (bare, ACS, bare, ACS, …,
      // bare) and each ACS storm is set against the mean of the two around it: this machine's speed
      // drifts (the same storm's CPU per session differs by up to a quarter from one minute to the next).
      const bares = [await bareStorm(n, prefixes[0]!, so)];
      const runs: Array<{ acs: AcsRun; ratio: number; bsps: number }> = [];
      for (const [r, prefix] of prefixes.entries()) {
        const a = await acsStorm(pool, { url: pgs.url, dataDir }, maxSessions, n, prefix, so);
        const b2 = await bareStorm(n, prefix, so);
        bares.push(b2);
        const b1 = bares[r]!;
        const bsps = (b1.sps + b2.sps) / 2;
        const bOk = b1.ok + b2.ok;
        runs.push({ acs: a, ratio: a.sps / bsps, bsps });
        const { before, after } = a;
        table.push({
          devices: n,
          repeat: r + 1,
          completed: a.ok,
          baseline_completed: Math.min(b1.ok, b2.ok),
          sessions_per_s: Math.round(a.sps),
          baseline_sessions_per_s: Math.round(bsps),
          baseline_before_after: `${Math.round(b1.sps)}/${Math.round(b2.sps)}`,
          ratio: fixed(a.sps / bsps),
          p50_ms: Math.round(a.p50),
          p99_ms: Math.round(a.p99),
          retries_503: a.rejected503,
          errors: a.errors,
          informs_acked: a.informsAcked,
          informs_stored: a.stored,
          lost_informs: a.lost,
          drain_s: Number((a.spanMs / 1000).toFixed(1)),
          acs_cpu_ms_per_session: fixed((after.cpuMs - before.cpuMs) / Math.max(1, a.ok)),
          pg_cpu_ms_per_session: fixed(a.pgMsPerSession),
          // The simulator shares the cores: its CPU per session against the ACS and against the bare server.
          sim_cpu_ms_per_session: fixed(a.simCpuMs / Math.max(1, a.ok)),
          baseline_sim_cpu_ms_per_session: fixed((b1.simCpuMs + b2.simCpuMs) / Math.max(1, bOk)),
          baseline_server_cpu_ms_per_session: fixed((b1.serverCpuMs + b2.serverCpuMs) / Math.max(1, bOk)),
          acs_peak_rss_mb: Math.round(mb(after.peakRss)),
          acs_heap_at_peak_mb: `${Math.round(mb(after.peakHeapUsed))}/${Math.round(mb(after.peakHeapTotal))}`,
          acs_dropped_connections: (after.dropped ?? 0) - (before.dropped ?? 0),
          listen_overflows: a.listenOverflows,
          baseline_listen_overflows: `${b1.listenOverflows}/${b2.listenOverflows}`,
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
        // Each storm takes long: show its row as it comes.
        console.log(`storm ${n} #${r + 1}: ${JSON.stringify(table.at(-1))}`);
        if (a.ok < n) notes.push(`NOT ALL DONE at ${n} #${r + 1}: ACS ${a.ok} completed within the deadline`);
        if (a.sampleErrors.length > 0) notes.push(`errors at ${n} #${r + 1}: ${a.sampleErrors.join(' | ')}`);
      }
      for (const [i, b] of bares.entries()) {
        if (b.ok < n)
          notes.push(`NOT ALL DONE at ${n}: bare #${i + 1} ${b.ok} completed within the deadline`);
        if (b.errors > 0)
          notes.push(`baseline errors at ${n} (bare #${i + 1}): ${b.errors}: ${b.sampleErrors.join(' | ')}`);
      }
      // The size's figures are its median repeat (by ratio); memory is the highest peak of its repeats.
      const median = percentile(
        runs.map((x) => x.ratio),
        0.5,
      );
      const m = runs.find((x) => x.ratio === median)!;
      const k = `${Math.round(n / 1000)}k`;
      metrics[`peak_rss_mb_${k}`] = Math.max(...runs.map((x) => mb(x.acs.after.peakRss)));
      metrics.devices = n;
      metrics.sessions_per_s = m.acs.sps;
      metrics.baseline_sessions_per_s = m.bsps;
      metrics.sessions_ratio = m.ratio;
      metrics.p99_session_ms = m.acs.p99;
      metrics.lost_informs = (metrics.lost_informs ?? 0) + runs.reduce((t, x) => t + x.acs.lost, 0);
      metrics.drain_s = m.acs.spanMs / 1000;
      metrics.acs_cpu_ms_per_session = (m.acs.after.cpuMs - m.acs.before.cpuMs) / Math.max(1, m.acs.ok);
      metrics.pg_cpu_ms_per_session = m.acs.pgMsPerSession;
      notes.push(
        `${n}: ratio ${runs.map((x) => x.ratio.toFixed(2)).join(', ')} over ${repeats} repeats, median ${median.toFixed(2)} (target ≥ 0.60)`,
      );
      // Keep the figures so far, in case a later size is cut short.
      writeFileSync(
        path.join(here, 'results', 'storm.partial.json'),
        `${JSON.stringify({ name: 'storm', at: new Date().toISOString(), metrics }, null, 2)}\n`,
      );
    }
    await pool.end();
    const r10 = metrics.peak_rss_mb_10k;
    const r100 = metrics.peak_rss_mb_100k;
    if (r10 && r100)
      notes.push(
        `ACS memory 100k/10k = ${(r100 / r10).toFixed(2)} (target ≤ 1.2; each the highest peak of its repeats)`,
      );
    notes.push(
      `ACS: run as bin/fleetbrain runs the executor (${execFileSync('bin/node-flags', ['executor'], {
        cwd: path.resolve(here, '..'),
      })
        .toString()
        .trim()}); ` +
        `maxSessions ${maxSessions}; a new session beyond it waits up to ${AcsConfig.parse({}).admissionWaitMs / 1000} s for room, then gets 503 with a ` +
        'Retry-After from its admission schedule (≥ 1 s), honoured as given by the simulator; ' +
        'PostgreSQL durable (fsync on), writes grouped (group commit: one flush in flight, at most 1000 sessions each).',
      listenQueueNote(sockets),
      `warm-up: each server (ACS and bare alike) took a storm of ${warmup} other CPEs just before each measured storm, not counted.`,
      `simulator: ${sockets} sessions open at once over its ${procs} processes, sources 127.0.<proc>.1-8; ` +
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
