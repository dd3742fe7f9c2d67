import { readdirSync, readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { detectConflictsInDb } from '../activities/profiles.js';
import { connect } from '../db/client.js';
import { effectiveConfig } from '../domain/profiles/ownership.js';
import { isConflict } from '../domain/profiles/precedence.js';
import type { Profile } from '../domain/profiles/profile.js';
import { compileWhere } from '../fleet/compile.js';
import { parseSelector } from '../fleet/selector.js';
import type { Benchmark } from './bench.js';
import { option, startDataset } from './dataset.js';

/**
 * Benchmark `profiles`: plan-time conflict detection over 100,000 devices and 200 profiles whose
 * selectors (site lists over 100 uniformly assigned sites) match 1–50 % of the fleet each. Selectors are
 * resolved from PostgreSQL (one snapshot); the timed part is resolution plus the ownership engine.
 * Correctness: a brute-force check on a 1,000-device sample resolves each selector for just those
 * devices with its own queries and merges each device's profiles one by one.
 *
 * Args: [--devices N] [--profiles P] [--sample S]
 */

const DB_NAME = 'profiles_bench';
const PATHS = Array.from({ length: 40 }, (_, i) =>
  i < 20 ? `Device.WiFi.AccessPoint.${(i % 4) + 1}.X_BENCH_Param${i}` : `Device.X_BENCH.Settings.Param${i}`,
);

function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeProfiles(count: number): Profile[] {
  const r = rng(42);
  const out: Profile[] = [];
  for (let i = 0; i < count; i++) {
    const share = 1 + Math.floor(r() * 50); // 1..50 sites of 100 = 1..50 % of devices
    const sites = new Set<string>();
    while (sites.size < share) sites.add(`s${String(Math.floor(r() * 100)).padStart(2, '0')}`);
    const paths = new Set<string>();
    while (paths.size < 6) paths.add(PATHS[Math.floor(r() * PATHS.length)] as string);
    out.push({
      id: `bench-${String(i).padStart(3, '0')}`,
      name: `bench-${i}`,
      selector: { field: 'site', op: 'in', values: [...sites].sort() },
      // most profiles agree on the standard value; some set their own
      parameters: [...paths].map((p) => ({ path: p, value: r() < 0.95 ? 'std' : `v${i % 7}` })),
      priority: Math.floor(r() * 3),
      owner: 'bench',
      version: 1,
      updatedAt: new Date(Date.UTC(2026, 0, 1 + Math.floor(r() * 20))),
    });
  }
  return out;
}

/**
 * CPU seconds (user + system) used so far by this database's backends and parallel workers, read from
 * /proc (Linux): the SQL half of the work, which process.cpuUsage() of this process does not see.
 * Backends must still be alive when read (the pool keeps them); parallel workers, if PostgreSQL
 * started any, end with their query and are not counted.
 */
function pgBackendCpuSeconds(database: string): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.startsWith('postgres: ') || !cmd.includes(` ${database} `)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime
    } catch {
      // the process ended between listing and reading
    }
  }
  return ticks / 100; // USER_HZ
}

const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

const bench: Benchmark = async (args) => {
  const opt = (name: string) => option(args, name);
  const n = Number(opt('--devices') ?? 100_000);
  const profileCount = Number(opt('--profiles') ?? 200);
  const sampleN = Number(opt('--sample') ?? 1000);
  const perScan = Number(opt('--per-scan') ?? 25);
  const check = !args.includes('--no-check');
  const { pg: pgServer, dir } = await startDataset('profiles-pg', DB_NAME);
  const notes: string[] = [`data: ${dir}`];
  try {
    const h = connect(pgServer.url, { max: 12, applicationName: 'bench-profiles' });
    try {
      const have = Number(
        (await h.db.execute<{ n: string }>(sql`select count(*) as n from devices where id like 'BENCHP-%'`))
          .rows[0]?.n,
      );
      const total = Number(
        (await h.db.execute<{ n: string }>(sql`select count(*) as n from devices`)).rows[0]?.n,
      );
      if (have !== n || total !== n) {
        await h.db.execute(sql`truncate devices cascade`);
        await h.db.execute(sql`
          insert into devices (id, oui, serial_number, protocol, product_class, software_version, site, region)
          select 'BENCHP-' || lpad(g::text, 7, '0'), '00D09E', lpad(g::text, 7, '0'), 'cwmp', 'HGW-500',
                 (array['1.0','1.1','2.0'])[1 + g % 3],
                 's' || lpad(((g * 7919) % 100)::text, 2, '0'),
                 (array['north','south','east','west'])[1 + g % 4]
          from generate_series(1, ${n}) g`);
        await h.db.execute(sql`analyze devices`);
        notes.push(`generated ${n} devices`);
      } else notes.push(`reused ${n} generated devices`);
      const profiles = makeProfiles(profileCount);
      const now = new Date('2026-06-01T00:00:00Z');

      // Warm the pool (and the table in shared buffers) so the timing measures detection, not connecting.
      await Promise.all(Array.from({ length: 12 }, () => h.pool.query('select count(*) from devices')));
      const rss0 = process.memoryUsage().rss;
      const pgCpu0 = pgBackendCpuSeconds(DB_NAME);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const res = await detectConflictsInDb(h.pool, profiles, { now, perScan });
      const seconds = (performance.now() - t0) / 1000;
      const nodeCpu = cpuSeconds(process.cpuUsage(cpu0));
      const pgCpu = pgBackendCpuSeconds(DB_NAME) - pgCpu0;
      const rss = Math.max(rss0, process.memoryUsage().rss);

      const shares = res.memberships.members.map((m) => m.length / res.ids.length);
      let bruteNote = 'brute-force check skipped (--no-check)';
      if (check) {
        // Full per-device lists of conflicts (untimed) to compare with the brute force.
        const full = await detectConflictsInDb(h.pool, profiles, {
          now,
          sampleSize: Number.MAX_SAFE_INTEGER,
        });
        const step = Math.max(1, Math.floor(full.ids.length / sampleN));
        const sample = full.ids.filter((_, i) => i % step === 0).slice(0, sampleN);
        const sampleSet = new Set(sample);
        const fromEngine = new Set<string>();
        for (const g of full.groups)
          for (const d of g.sample) {
            const id = full.ids[d] as string;
            if (sampleSet.has(id))
              fromEngine.add(`${id} ${g.path} ${g.resolution.status} ${String(g.resolution.value)}`);
          }
        // Brute force: each selector evaluated for the sample only, its size counted separately, each device merged alone.
        const matchedBy = new Map<string, string[]>();
        const sizes = new Map<string, number>();
        for (const p of profiles) {
          const w = compileWhere(parseSelector(p.selector), { now });
          const rows = await h.db.execute<{ id: string }>(
            sql`select d.id from devices d where d.id = any(string_to_array(${sample.join('\n')}, E'\n')) and ${w}`,
          );
          for (const { id } of rows.rows) {
            const l = matchedBy.get(id);
            if (l) l.push(p.id);
            else matchedBy.set(id, [p.id]);
          }
          const c = await h.db.execute<{ n: string }>(sql`select count(*) as n from devices d where ${w}`);
          sizes.set(p.id, Number(c.rows[0]?.n));
        }
        const byId = new Map(profiles.map((p) => [p.id, p]));
        const brute = new Set<string>();
        for (const id of sample) {
          const matched = (matchedBy.get(id) ?? []).map((pid) => ({
            profile: byId.get(pid) as Profile,
            matchedDevices: sizes.get(pid) as number,
          }));
          for (const f of effectiveConfig(matched, { now }).fields)
            if (isConflict(f)) brute.add(`${id} ${f.path} ${f.status} ${String(f.value)}`);
        }
        const agree = brute.size === fromEngine.size && [...brute].every((x) => fromEngine.has(x));
        if (!agree)
          throw new Error(
            `brute force (${brute.size}) and engine (${fromEngine.size}) disagree on the sample`,
          );
        bruteNote = `brute-force check on ${sample.length} devices: ${brute.size} conflicting (device, path) pairs, equal to the engine's (status and value included)`;
      }

      const multiShare = res.multiplyClaimedPairs / res.claimedPairs;
      const table = [
        {
          devices: res.ids.length,
          profiles: profiles.length,
          'match %': `${(Math.min(...shares) * 100).toFixed(1)}–${(Math.max(...shares) * 100).toFixed(1)}`,
          'claimed pairs': res.claimedPairs,
          'multi-claimed %': (multiShare * 100).toFixed(1),
          conflicts: res.conflictingPairs,
          unresolved: res.unresolvedPairs,
          groups: res.groups.length,
          'detect s': seconds.toFixed(2),
          'of which SQL s': res.resolveSeconds.toFixed(2),
          'node CPU s': nodeCpu.toFixed(2),
          'PG CPU s': pgCpu.toFixed(2),
          'rss MB': (rss / 1048576).toFixed(0),
        },
      ];
      notes.push(
        bruteNote,
        `timed: one repeatable-read snapshot (device ids + 200 selectors as bit strings, ${perScan} per table scan, scans in parallel on one exported snapshot) and the pure engine`,
        'not in this benchmark: per-firmware validation (no schemas registered for the generated model)',
      );
      if (multiShare < 0.1)
        notes.push('WARNING: fewer than 10 % of claimed pairs are claimed more than once');
      if (res.conflictingPairs < 1000) notes.push('WARNING: fewer than 1,000 conflicts');
      return {
        metrics: {
          devices: res.ids.length,
          profiles: profiles.length,
          conflicts: res.conflictingPairs,
          conflict_detection_s: seconds,
          conflict_detection_cpu_s: nodeCpu + pgCpu,
          rss_mb: rss / 1048576,
        },
        table,
        notes,
      };
    } finally {
      await h.close();
    }
  } finally {
    await pgServer.stop();
  }
};

export default bench;
