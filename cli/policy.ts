import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { connect } from '../db/client.js';
import { PolicyLoadError } from '../policies/bundle.js';
import { loadPolicyEngine } from '../policies/engine.js';
import { policyTimes } from '../policies/local-time.js';
import { opaBin } from '../policies/opa-bin.js';
import { PolicyData } from '../policies/schema.js';
import { explainDecision, loadPolicyData, recordDecision } from '../policies/store.js';

interface EvalFlags {
  data?: string;
  at?: string;
  tz?: string[];
  opaUrl?: string;
  plannerId: string[];
  record?: boolean;
  json?: boolean;
}

const policiesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'policies');

async function readJson(file: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (err) {
    throw new Error(`${what} ${file}: ${(err as Error).message}`);
  }
}

/** A data file may hold the document itself or `{"policy_data": …}` (as policies/testdata does). */
async function dataFromFile(file: string): Promise<PolicyData> {
  const raw = (await readJson(file, 'policy data')) as Record<string, unknown>;
  const doc = 'policy_data' in raw ? raw.policy_data : raw;
  const parsed = PolicyData.safeParse(doc);
  if (!parsed.success)
    throw new Error(`policy data ${file}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

async function evalCommand(file: string, flags: EvalFlags): Promise<void> {
  const input = (await readJson(file, 'policy input')) as Record<string, unknown>;
  // Dry runs may leave `times` out: local times are computed here, as the services do.
  if (!('times' in input) || flags.at || flags.tz) {
    const at = flags.at ? new Date(flags.at) : new Date();
    if (Number.isNaN(at.getTime())) throw new Error(`--at ${flags.at}: not a date`);
    const size = (input.cohort as { size?: number } | undefined)?.size ?? 0;
    const zones = flags.tz ?? ['UTC'];
    input.times = policyTimes(
      at,
      zones.map((z) => ({ time_zone: z, device_count: Math.round(size / zones.length) })),
    );
  }
  const dbUrl = process.env.DATABASE_URL;
  const handle = (!flags.data || flags.record) && dbUrl ? connect(dbUrl, { max: 2 }) : undefined;
  try {
    let data: PolicyData;
    if (flags.data) data = await dataFromFile(flags.data);
    else if (handle) data = await loadPolicyData(handle.db, { plannerIds: flags.plannerId });
    else throw new Error('no policy data: pass --data <file> or set DATABASE_URL');
    const engine = await loadPolicyEngine({ data, ...(flags.opaUrl ? { opaUrl: flags.opaUrl } : {}) });
    const evaluated = await engine.decide(input);
    if (flags.record) {
      if (!handle) throw new Error('--record needs DATABASE_URL');
      const id = await recordDecision(
        handle.db,
        { kind: 'dry_run', id: path.basename(file) },
        input as { action: string; actor: { id: string } },
        evaluated,
      );
      process.stderr.write(`recorded policy decision ${id}\n`);
    }
    if (flags.json) process.stdout.write(`${JSON.stringify(evaluated, null, 2)}\n`);
    else {
      process.stdout.write(`${explainDecision(evaluated.decision).join('\n')}\n`);
      process.stdout.write(
        `engine ${evaluated.engine} · ${evaluated.latencyMs.toFixed(2)} ms · input ${evaluated.inputHash.slice(0, 12)} · bundle ${evaluated.bundleHash.slice(0, 12)}\n`,
      );
    }
    // Scripts can tell a deny from an error: 0 allow, 3 deny, 1 failure.
    process.exitCode = evaluated.decision.allow ? 0 : 3;
  } finally {
    await handle?.close();
  }
}

export function policyCommand(program: Command): void {
  const policy = program.command('policy').description('policies as code: dry-run decisions and Rego tests');

  policy
    .command('eval')
    .description('evaluate data.fleetbrain.decision for a policy input (dry run); exit 0 allow, 3 deny')
    .argument('<input.json>', 'policy input; `times` is computed when absent')
    .option('--data <file>', 'policy data document (default: from the database at DATABASE_URL)')
    .option('--at <iso>', 'evaluate as of this instant (recomputes local times)')
    .option('--tz <zone...>', 'IANA time zones of the affected devices (recomputes local times)')
    .option('--opa-url <url>', 'evaluate on this OPA server instead of in-process wasm (or set OPA_URL)')
    .option('--planner-id <id...>', 'actor ids that are the planner', ['svc-planner'])
    .option('--record', 'store the decision in policy_decisions as a dry run')
    .option('--json', 'print the whole decision record as JSON')
    .action(async (file: string, flags: EvalFlags) => {
      try {
        await evalCommand(file, flags);
      } catch (err) {
        const prefix = err instanceof PolicyLoadError ? 'policy bundle unusable' : 'policy eval failed';
        process.stderr.write(`fleetbrain policy: ${prefix}: ${(err as Error).message}\n`);
        process.exitCode = 1;
      }
    });

  policy
    .command('test')
    .description('run the Rego tests (opa test -v policies/)')
    .action(() => {
      const res = spawnSync(opaBin(), ['test', '-v', policiesDir], { stdio: 'inherit' });
      process.exitCode = res.status ?? 1;
    });
}
