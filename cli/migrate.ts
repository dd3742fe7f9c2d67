import type { Command } from 'commander';
import { migrate } from '../db/migrate.js';
import { loadConfig } from '../platform/config.js';
import { requireDatabaseUrl } from './shared.js';

export function migrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations (DATABASE_URL), serialised by an advisory lock')
    .action(async () => {
      const config = loadConfig();
      await migrate(requireDatabaseUrl(config));
      console.log('migrations applied');
    });
}
