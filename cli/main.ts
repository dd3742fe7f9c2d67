import { Command } from 'commander';
import { ConfigError } from '../platform/config.js';
import { ToolError } from '../platform/tools.js';
import { PolicyLoadError } from '../policies/bundle.js';
import { apiCommand } from './api.js';
import { askCommand } from './ask.js';
import { auditCommand } from './audit.js';
import { datamodelCommand } from './datamodel.js';
import { devCommand } from './dev.js';
import { evalCommand } from './eval.js';
import { executorCommand } from './executor.js';
import { fleetCommand } from './fleet.js';
import { migrateCommand } from './migrate.js';
import { policyCommand } from './policy.js';
import { profilesCommand } from './profiles.js';
import { simCommand } from './sim.js';
import { usersCommand } from './users.js';
import { workerCommand } from './worker.js';

const program = new Command('fleetbrain')
  .description('Fleetbrain: policy-driven AI control plane for broadband CPE fleets')
  .showHelpAfterError();

devCommand(program);
apiCommand(program);
workerCommand(program);
migrateCommand(program);
executorCommand(program);
simCommand(program);
datamodelCommand(program);
policyCommand(program);
askCommand(program);
evalCommand(program);
fleetCommand(program);
usersCommand(program);
auditCommand(program);
profilesCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Expected failures are one line; anything else keeps its stack for a bug report.
  if (err instanceof ConfigError) process.stderr.write(`fleetbrain: configuration error: ${err.message}\n`);
  else if (err instanceof PolicyLoadError)
    process.stderr.write(`fleetbrain: policy bundle refused: ${err.message}\n`);
  else if (err instanceof ToolError) process.stderr.write(`fleetbrain: missing tool: ${err.message}\n`);
  else
    process.stderr.write(`fleetbrain: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
