import type { Command } from 'commander';
import { migrate } from '../db/migrate.js';
import { seedDefaults } from './seed.js';
import { loadConfig } from '../platform/config.js';
import { requireDatabaseUrl } from './shared.js';

export function migrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('apply pending database migrations (DATABASE_URL), serialised by an advisory lock')
    .action(async () => {
      const config = loadConfig();
      const url = requireDatabaseUrl(config);
      await migrate(url);
      await seedDefaults(url);
      console.log('migrations applied');
    });
}
