import path from 'node:path';
import { migrate } from '../db/migrate.js';
import { cacheDir } from '../platform/paths.js';
import { type EmbeddedPostgres, startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';

/**
 * Where a benchmark keeps its generated PostgreSQL dataset between runs, outside the repository.
 * As root the cluster runs as `postgres`, which cannot enter /root, so it lives under /var/tmp.
 */
export function datasetDir(name: string): string {
  if (process.env.FLEETBRAIN_BENCH_DIR) return path.join(process.env.FLEETBRAIN_BENCH_DIR, name);
  if (process.getuid?.() === 0 && cacheDir.startsWith('/root'))
    return path.join('/var/tmp/fleetbrain/bench', name);
  return path.join(cacheDir, 'bench', name);
}

/** Starts (creating on first use) and migrates a benchmark's persistent PostgreSQL dataset. */
export async function startDataset(
  name: string,
  database: string,
): Promise<{ pg: EmbeddedPostgres; dir: string }> {
  const dir = datasetDir(name);
  const pg = await startPostgres({ dataDir: dir, port: await freePort(), database, ephemeral: true });
  try {
    await migrate(pg.url);
  } catch (err) {
    await pg.stop();
    throw err;
  }
  return { pg, dir };
}

/** `--name value` from a benchmark's arguments. */
export function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
