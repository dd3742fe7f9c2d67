import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { Command } from 'commander';
import { connect, type DbHandle } from '../db/client.js';
import { migrate } from '../db/migrate.js';
import { seedFixtureFleet } from '../evals/fixture-fleet.js';
import { writeReport } from '../evals/report.js';
import { FixtureMiss, runSuite, SUITES, type SuiteName } from '../evals/run-suite.js';
import { loadEnv } from '../platform/config.js';
import { startPostgres } from '../platform/postgres.js';
import { freePort } from '../platform/process.js';

interface EvalFlags {
  suite: string;
  baseUrl?: string;
  model?: string;
  fixtures?: string;
  out: string;
  k: string;
  databaseUrl?: string;
}

/** A seeded fixture-fleet database: an empty one given by URL, or a throwaway embedded PostgreSQL. */
async function fixtureDatabase(url?: string): Promise<{ h: DbHandle; stop(): Promise<void> }> {
  if (url) {
    await migrate(url);
    const h = connect(url, { max: 4 });
    const n = await h.db.execute<{ n: string }>(sql`select count(*) as n from devices`);
    if (Number(n.rows[0]?.n) !== 0) {
      await h.close();
      throw new Error(
        '--database-url must point to an empty scratch database: the fixture fleet is seeded into it',
      );
    }
    await seedFixtureFleet(h.db);
    return { h, stop: () => h.close() };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fleetbrain-eval-'));
  // As root the cluster runs as `postgres`, which must reach its data directory.
  chmodSync(dir, 0o755);
  const pg = await startPostgres({
    dataDir: path.join(dir, 'pg'),
    port: await freePort(),
    database: 'evals',
    ephemeral: true,
  });
  await migrate(pg.url);
  const h = connect(pg.url, { max: 4 });
  await seedFixtureFleet(h.db);
  return {
    h,
    stop: async () => {
      await h.close();
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `fleetbrain eval --suite <name>`: fixture mode by default; live mode with --base-url and --model. */
export function evalCommand(program: Command): void {
  program
    .command('eval')
    .description('run an eval suite (fixture mode tests the harness; live mode measures a model)')
    .requiredOption('--suite <name>', `one of ${SUITES.join(', ')}`)
    .option(
      '--base-url <url>',
      'OpenAI-compatible endpoint: live mode (default OPENAI_BASE_URL only with --model)',
    )
    .option('--model <name>', 'model name for live mode (default FLEETBRAIN_MODEL)')
    .option(
      '--fixtures <file>',
      'authored fixture replies (fixture mode; default evals/fixtures/<suite>.json)',
    )
    .option('--out <dir>', 'report folder', 'evals/reports')
    .option('--k <n>', 'runs per planner case (pass^k)', '1')
    .option(
      '--database-url <url>',
      'empty scratch database for the fixture fleet (default: a throwaway embedded PostgreSQL)',
    )
    .action(async (flags: EvalFlags) => {
      if (!(SUITES as readonly string[]).includes(flags.suite)) {
        process.stderr.write(`fleetbrain eval: unknown suite "${flags.suite}" (use ${SUITES.join(', ')})\n`);
        process.exitCode = 2;
        return;
      }
      const suite = flags.suite as SuiteName;
      const env = loadEnv();
      const live = flags.baseUrl
        ? {
            baseUrl: flags.baseUrl,
            model: flags.model ?? env.FLEETBRAIN_MODEL,
            ...(env.OPENAI_API_KEY ? { apiKey: env.OPENAI_API_KEY } : {}),
          }
        : undefined;
      const k = Number.parseInt(flags.k, 10);
      if (!Number.isInteger(k) || k < 1) {
        process.stderr.write('fleetbrain eval: --k must be a positive integer\n');
        process.exitCode = 2;
        return;
      }
      const fleet = suite === 'fleet-questions' ? await fixtureDatabase(flags.databaseUrl) : undefined;
      try {
        const report = await runSuite({
          suite,
          ...(live ? { live } : {}),
          ...(flags.fixtures ? { fixtures: flags.fixtures } : {}),
          ...(fleet ? { db: fleet.h.db } : {}),
          k,
        });
        const files = writeReport(report, flags.out);
        process.stdout.write(`${report.run.label}\nreport: ${files.md}\n        ${files.json}\n`);
      } catch (err) {
        if (err instanceof FixtureMiss) {
          process.stderr.write(`fleetbrain eval: ${err.message}\n`);
          process.exitCode = 1;
          return;
        }
        throw err;
      } finally {
        await fleet?.stop();
      }
    });
}
