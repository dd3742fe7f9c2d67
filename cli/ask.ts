import type { Command } from 'commander';
import { connect } from '../db/client.js';
import { coreCatalog } from '../fleet/catalog.js';
import { runQuery } from '../fleet/query-compile.js';
import { ask } from '../planner/ask.js';
import { loadGazetteer } from '../planner/gazetteer.js';
import { createLlm, isUnavailable, llmSettingsFromEnv } from '../planner/llm.js';
import { loadConfig } from '../platform/config.js';
import { requireDatabaseUrl } from './shared.js';

/** `fleetbrain ask "<question>"`: a read-only answer with the DSL it ran and its plain-language reading. */
export function askCommand(program: Command): void {
  program
    .command('ask')
    .description('ask the fleet a question in plain language (read-only; shows the query it ran)')
    .argument(
      '<question>',
      'e.g. "how many ONTs on firmware 3.1 rebooted more than three times this week in Lyon?"',
    )
    .option(
      '--tz <zone>',
      'your IANA time zone for "today" / "this week"',
      Intl.DateTimeFormat().resolvedOptions().timeZone,
    )
    .option('--json', 'print the whole answer as JSON')
    .action(async (question: string, flags: { tz: string; json?: boolean }) => {
      const config = loadConfig();
      const llm = createLlm(llmSettingsFromEnv(config.env));
      if (isUnavailable(llm)) {
        process.stderr.write(`fleetbrain ask: planner unavailable: ${llm.reason}\n`);
        process.exitCode = 2;
        return;
      }
      const h = connect(requireDatabaseUrl(config), { max: 2, applicationName: 'fleetbrain-ask' });
      try {
        const catalog = coreCatalog();
        const now = new Date();
        const a = await ask(
          llm,
          {
            gazetteer: await loadGazetteer(h.db),
            timeZone: flags.tz,
            now,
            catalog,
            execute: (q) => runQuery(h.db, q, { now, catalog }),
          },
          question,
        );
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(a, null, 2)}\n`);
          return;
        }
        switch (a.kind) {
          case 'answer':
            process.stdout.write(
              `${a.description}\n\nquery:\n${JSON.stringify(a.query, null, 2)}\n\n${a.table}\n`,
            );
            break;
          case 'clarify':
            process.stdout.write(`Please clarify: ${a.question}\n`);
            break;
          case 'change_request':
            process.stdout.write(`${a.message}\n`);
            break;
          case 'invalid':
            process.stderr.write(`fleetbrain ask: could not translate the question: ${a.error}\n`);
            process.exitCode = 1;
            break;
          default:
            process.stderr.write(`fleetbrain ask: ${a.reason}\n`);
            process.exitCode = 2;
        }
      } finally {
        await h.close();
      }
    });
}
