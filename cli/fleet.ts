import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { connect } from '../db/client.js';
import { coreCatalog } from '../fleet/catalog.js';
import { describeSelector } from '../fleet/describe.js';
import { STRATUM_FIELDS, type StratumField } from '../fleet/fields.js';
import { countByStrata, listDeviceIds, selectDevices } from '../fleet/resolve.js';
import { parseSelector, type Selector, SelectorError } from '../fleet/selector.js';
import { importTopology } from '../fleet/topology.js';
import { loadConfig } from '../platform/config.js';
import { requireDatabaseUrl } from './shared.js';

/** A failure the user can fix; printed as one line, exit code 2 (1 is left for "ran, found problems"). */
class UsageError extends Error {}

function fail(err: unknown): never {
  if (err instanceof UsageError || err instanceof SelectorError) {
    process.stderr.write(`fleetbrain fleet: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

function readSelector(text: string): Selector {
  let raw: unknown;
  try {
    raw = JSON.parse(text.startsWith('@') ? readFileSync(text.slice(1), 'utf8') : text);
  } catch (err) {
    throw new UsageError(`selector is not valid JSON: ${(err as Error).message}`);
  }
  return parseSelector(raw, { catalog: coreCatalog() });
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a non-negative integer');
  return n;
}

function strata(v: string): StratumField[] {
  const fields = v.split(',').filter(Boolean);
  for (const f of fields) {
    if (!(STRATUM_FIELDS as readonly string[]).includes(f)) {
      throw new InvalidArgumentError(`unknown stratum field "${f}" (use ${STRATUM_FIELDS.join(', ')})`);
    }
  }
  return fields as StratumField[];
}

export function fleetCommand(program: Command): void {
  const fleet = program
    .command('fleet')
    .description('fleet inventory, topology and device selection (DATABASE_URL)');

  fleet
    .command('import-topology')
    .description(
      'import device topology (region, site, OLT, PON port, BNG, tier, time zone) from an OSS CSV or JSON file',
    )
    .argument(
      '<file>',
      'CSV with a header row (device_id,region,site,olt,pon_port,bng,service_tier,time_zone) or a JSON array',
    )
    .option('--partial', 'apply the valid rows even when some rows are invalid')
    .option('--dry-run', 'validate and report what would change, write nothing')
    .addOption(
      new Option('--format <format>', 'file format (default: from the content)').choices(['csv', 'json']),
    )
    .option('--json', 'print the result as JSON')
    .action(
      async (
        file: string,
        o: { partial?: boolean; dryRun?: boolean; format?: 'csv' | 'json'; json?: boolean },
      ) => {
        let text: string;
        try {
          text = readFileSync(file, 'utf8');
        } catch (err) {
          fail(new UsageError(`cannot read ${file}: ${(err as Error).message}`));
        }
        const h = connect(requireDatabaseUrl(loadConfig()), { max: 1, applicationName: 'fleetbrain-fleet' });
        try {
          const r = await importTopology(h.db, text, {
            partial: o.partial,
            dryRun: o.dryRun,
            format: o.format,
          });
          if (o.json) console.log(JSON.stringify(r, null, 2));
          else {
            for (const e of r.errors.slice(0, 100)) {
              console.log(`${file}:${e.line}: ${e.field ? `${e.field}: ` : ''}${e.message}`);
            }
            if (r.errors.length > 100) console.log(`... and ${r.errors.length - 100} more errors`);
            const verb = r.dryRun ? 'would apply' : 'applied';
            console.log(
              `${r.rows} rows, ${r.errors.length} errors; ${verb} ${r.applied} rows (${r.changed} changed)`,
            );
            if (r.errors.length > 0 && !o.partial)
              console.log('nothing applied: fix the rows above or use --partial');
          }
          process.exitCode = r.errors.length > 0 ? 1 : 0;
        } finally {
          await h.close();
        }
      },
    );

  fleet
    .command('select')
    .description(
      'resolve a selector: count, device-set hash (what approvals bind to), sample and a plain reading',
    )
    .argument('<selector>', 'selector JSON, or @file.json')
    .option('--sample <n>', 'sample size', positiveInt, 10)
    .option('--strata <fields>', `per-stratum counts, comma-separated (${STRATUM_FIELDS.join(', ')})`, strata)
    .option('--ids', 'print every matching device id (fails past --row-cap)')
    .option('--row-cap <n>', 'most ids --ids prints', positiveInt, 100_000)
    .option('--as-of <time>', 'evaluate relative conditions as of this ISO time')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        text: string,
        o: {
          sample: number;
          strata?: StratumField[];
          ids?: boolean;
          rowCap: number;
          asOf?: string;
          json?: boolean;
        },
      ) => {
        let selector: Selector;
        try {
          selector = readSelector(text);
        } catch (err) {
          fail(err);
        }
        const now = o.asOf ? new Date(o.asOf) : new Date();
        if (Number.isNaN(now.getTime())) fail(new UsageError(`--as-of: not a date-time: ${o.asOf}`));
        const catalog = coreCatalog();
        const h = connect(requireDatabaseUrl(loadConfig()), { max: 1, applicationName: 'fleetbrain-fleet' });
        try {
          const sel = await selectDevices(h.db, selector, { now, catalog, sampleSize: o.sample });
          const st = o.strata ? await countByStrata(h.db, selector, o.strata, { now, catalog }) : undefined;
          const ids = o.ids
            ? (await listDeviceIds(h.db, selector, { now, catalog, rowCap: o.rowCap })).ids
            : undefined;
          const out = {
            description: describeSelector(selector),
            asOf: now.toISOString(),
            count: sel.count,
            deviceSetHash: sel.hash,
            sample: sel.sample,
            ...(st ? { strata: st } : {}),
            ...(ids ? { ids } : {}),
          };
          if (o.json) console.log(JSON.stringify(out, null, 2));
          else {
            console.log(`selects: ${out.description}`);
            console.log(`as of:   ${out.asOf}`);
            console.log(`devices: ${out.count}`);
            console.log(`hash:    sha256:${out.deviceSetHash}`);
            if (out.sample.length) console.log(`sample:  ${out.sample.join(', ')}`);
            for (const s of st ?? []) {
              const key = Object.entries(s.stratum)
                .map(([k, v]) => `${k}=${v ?? '(none)'}`)
                .join(' ');
              console.log(`  ${String(s.count).padStart(9)}  ${key}`);
            }
            for (const id of ids ?? []) console.log(id);
          }
        } finally {
          await h.close();
        }
      },
    );
}
