import { Command } from 'commander';
import { ConfigError } from '../platform/config.js';
import { ToolError } from '../platform/tools.js';
import { PolicyLoadError } from '../policies/bundle.js';

type Register = (program: Command) => void;

// Each command's module is loaded only when it runs (they pull in Temporal, OPA, the ACS …): a
// command starts in a fraction of the time. Help and unknown commands load them all.
const commands: Record<string, () => Promise<Register>> = {
  dev: async () => (await import('./dev.js')).devCommand,
  api: async () => (await import('./api.js')).apiCommand,
  worker: async () => (await import('./worker.js')).workerCommand,
  migrate: async () => (await import('./migrate.js')).migrateCommand,
  executor: async () => (await import('./executor.js')).executorCommand,
  sim: async () => (await import('./sim.js')).simCommand,
  datamodel: async () => (await import('./datamodel.js')).datamodelCommand,
  policy: async () => (await import('./policy.js')).policyCommand,
  ask: async () => (await import('./ask.js')).askCommand,
  eval: async () => (await import('./eval.js')).evalCommand,
  fleet: async () => (await import('./fleet.js')).fleetCommand,
  users: async () => (await import('./users.js')).usersCommand,
  audit: async () => (await import('./audit.js')).auditCommand,
  profiles: async () => (await import('./profiles.js')).profilesCommand,
};

const program = new Command('fleetbrain')
  .description('Fleetbrain: policy-driven AI control plane for broadband CPE fleets')
  .showHelpAfterError();

async function main(): Promise<void> {
  const asked = process.argv[2];
  const load =
    asked !== undefined && Object.hasOwn(commands, asked) ? [commands[asked]] : Object.values(commands);
  for (const register of await Promise.all(load.map((l) => l?.()))) register?.(program);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  // Expected failures are one line; anything else keeps its stack for a bug report.
  if (err instanceof ConfigError) process.stderr.write(`fleetbrain: configuration error: ${err.message}\n`);
  else if (err instanceof PolicyLoadError)
    process.stderr.write(`fleetbrain: policy bundle refused: ${err.message}\n`);
  else if (err instanceof ToolError) process.stderr.write(`fleetbrain: missing tool: ${err.message}\n`);
  else
    process.stderr.write(`fleetbrain: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
