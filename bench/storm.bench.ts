import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { migrate } from '../db/migrate.js';
import { provisionCredentials } from '../executor/cwmp/driver.js';
import { CredentialCipher } from '../executor/secrets.js';
import { startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';
import { SimFleet } from '../sim/cwmp/fleet.js';
import { MODELS } from '../sim/models.js';
import type { Benchmark } from './bench.js';

/**
 * Inform storm: N simulated CPEs (separate process, digest auth, sources spread over loopback
 * addresses) start their sessions at once against the ACS (separate process) with PostgreSQL on this
 * machine; then the same simulator against a bare protocol server gives the machine's ceiling.
 *
 * Args: `npm run bench -- storm [sizes]`, sizes comma-separated (default 10000,50000,100000).
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const SECRET = 'storm-credential-key';
/** Sessions in flight at once from the simulator (bounded by `ulimit -n`, whose hard limit here is 20 000). */
const WINDOW = 4000;
const SOURCES = Array.from({ length: 8 }, (_, i) => `127.0.1.${i + 1}`);

/** Start a child with a raised descriptor limit (`ulimit -n`) and an IPC channel. */
function child(file: string, args: string[]): ChildProcess {
  const cmd = `ulimit -n 1048576 2>/dev/null || ulimit -n 65536; exec node --import tsx ${file} ${args.map((a) => `'${a}'`).join(' ')}`;
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
  ok: number;
  sessions: number;
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
}

function identities(count: number, prefix: string) {
  return Array.from({ length: count }, (_, i) => {
    const m = MODELS[i % MODELS.length]!;
    const id = `${m.oui}-${m.productClass}-${prefix}${String(i).padStart(7, '0')}`;
    const c = SimFleet.credentialsFor('sim-secret', id);
    return { deviceId: id, username: c.username, password: c.password };
  });
}

async function storm(url: string, count: number, prefix: string): Promise<SimReply> {
  const sim = child(path.join(here, 'storm', 'sim-process.ts'), []);
  await ask(sim, null);
  try {
    return await ask<SimReply>(sim, {
      cmd: 'storm',
      url,
      count,
      serialPrefix: prefix,
      localAddresses: SOURCES,
      retryScale: 0.02,
      deadlineMs: 900_000,
      concurrency: WINDOW,
    });
  } finally {
    sim.kill();
  }
}

const bench: Benchmark = async (args) => {
  const sizes = (args[0] ?? '10000,50000,100000').split(',').map(Number);
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
      // The ACS: a fresh process per size, so its memory is measured per storm.
      const acs = child(path.join(here, 'storm', 'acs-process.ts'), ['acs', pgs.url, SECRET, '1000']);
      const ready = await ask<{ url: string }>(acs, null);
      const before = await ask<ServerStats>(acs, { cmd: 'stats' });
      const started = new Date();
      const s = await storm(ready.url, n, prefix);
      const after = await ask<ServerStats>(acs, { cmd: 'stats' });
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
      // Baseline: the same simulator against the bare protocol server.
      const bare = child(path.join(here, 'storm', 'acs-process.ts'), ['bare', '', SECRET]);
      const bready = await ask<{ url: string }>(bare, null);
      const b = await storm(bready.url, n, prefix);
      bare.send({ cmd: 'exit' });
      const bsps = b.ok / (b.spanMs / 1000);
      const k = `${Math.round(n / 1000)}k`;
      metrics[`peak_rss_mb_${k}`] = after.peakRss / 2 ** 20;
      metrics.devices = n;
      metrics.sessions_per_s = sps;
      metrics.baseline_sessions_per_s = bsps;
      metrics.p99_session_ms = s.p99;
      metrics.lost_informs = (metrics.lost_informs ?? 0) + lost;
      metrics.drain_s = s.spanMs / 1000;
      metrics.acs_cpu_ms_per_session = (after.cpuMs - before.cpuMs) / Math.max(1, s.ok);
      table.push({
        devices: n,
        completed: s.ok,
        sessions_per_s: Math.round(sps),
        baseline_sessions_per_s: Math.round(bsps),
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
        acs_peak_rss_mb: Math.round(after.peakRss / 2 ** 20),
      });
      if (s.sampleErrors.length > 0) notes.push(`errors at ${n}: ${s.sampleErrors.join(' | ')}`);
      if (b.errors > 0) notes.push(`baseline errors at ${n}: ${b.sampleErrors.join(' | ')}`);
    }
    await pool.end();
    const r10 = metrics.peak_rss_mb_10k;
    const r100 = metrics.peak_rss_mb_100k;
    if (r10 && r100) notes.push(`ACS memory 100k/10k = ${(r100 / r10).toFixed(2)} (target ≤ 1.2)`);
    notes.push(
      'ACS: maxSessions 1000, Retry-After 10-20 s honoured by the simulator scaled ×0.02 (to keep the run short); ' +
        'PostgreSQL durable (fsync on), writes batched per 5 ms / 1000 sessions.',
      `sources: ${SOURCES.join(', ')}; sessions/s = completed ÷ (last completion − first request); p99 over the successful attempt of each session.`,
    );
  } finally {
    await pgs.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { metrics, table, notes };
};

export default bench;
