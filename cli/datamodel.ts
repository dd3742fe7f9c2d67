import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadCompiledSchema, saveCompiledSchema } from '../datamodel/compiled.js';
import { diffSchemas, formatDrift } from '../datamodel/diff.js';
import { importDataModel } from '../datamodel/importer.js';
import type { CompiledSchema } from '../datamodel/types.js';
import { DataModelImportError } from '../datamodel/xml.js';

interface ImportFlags {
  out?: string;
  protocol?: 'cwmp' | 'usp';
  search?: string[];
}

/** A compiled schema (.json) is loaded as is; anything else is imported as Broadband Forum XML. */
function schemaFrom(file: string, search: string[] = []): CompiledSchema {
  if (file.endsWith('.json')) return loadCompiledSchema(file, { verify: true });
  return importDataModel(file, { searchPath: search });
}

function reportImportError(err: unknown): boolean {
  if (!(err instanceof DataModelImportError)) return false;
  process.stderr.write(`fleetbrain datamodel: import failed: ${err.message}\n`);
  process.exitCode = 1;
  return true;
}

export function datamodelCommand(program: Command): void {
  const dm = program.command('datamodel').description('TR-181 / TR-098 data models: import and drift diff');

  dm.command('import')
    .description(
      'import Broadband Forum data model XML (full, modular, vendor, device-type) into compiled schemas',
    )
    .argument('<xml...>', 'entry XML files; each is compiled separately with its <import> closure')
    .option('-o, --out <dir>', 'folder for the compiled JSON files', '.')
    .option('--protocol <cwmp|usp>', 'override the protocol flavour guessed from the spec')
    .option('--search <dir...>', 'extra folders to look for imported files in')
    .action((files: string[], flags: ImportFlags) => {
      if (flags.protocol && flags.protocol !== 'cwmp' && flags.protocol !== 'usp') {
        process.stderr.write(
          `fleetbrain datamodel: --protocol must be cwmp or usp, not ${JSON.stringify(flags.protocol)}\n`,
        );
        process.exitCode = 2;
        return;
      }
      const out = flags.out ?? '.';
      mkdirSync(out, { recursive: true });
      for (const f of files) {
        const started = performance.now();
        let schema: CompiledSchema;
        try {
          const opts: Parameters<typeof importDataModel>[1] = { searchPath: flags.search ?? [] };
          if (flags.protocol) opts.protocol = flags.protocol;
          schema = importDataModel(f, opts);
        } catch (err) {
          if (reportImportError(err)) return;
          throw err;
        }
        const target = path.join(out, `${path.basename(f).replace(/\.xml$/i, '')}.json`);
        saveCompiledSchema(target, schema);
        const objs = Object.values(schema.objects);
        console.log(
          `${path.basename(f)}: ${schema.model} (${schema.protocol}) ${objs.length} objects (${objs.filter((o) => o.table).length} tables), ` +
            `${Object.keys(schema.params).length} parameters, ${Object.keys(schema.commands).length} commands, ` +
            `${Object.keys(schema.events).length} events from ${schema.sources.length} file(s) in ${Math.round(performance.now() - started)} ms -> ${target}`,
        );
      }
    });

  dm.command('diff')
    .description('drift between two data models (XML or compiled JSON): added, removed, changed')
    .argument('<a>', 'the older model')
    .argument('<b>', 'the newer model')
    .option('--json', 'print JSON instead of text')
    .option('--search <dir...>', 'extra folders to look for imported files in')
    .action((a: string, b: string, flags: { json?: boolean; search?: string[] }) => {
      let sa: CompiledSchema;
      let sb: CompiledSchema;
      try {
        sa = schemaFrom(a, flags.search);
        sb = schemaFrom(b, flags.search);
      } catch (err) {
        if (reportImportError(err)) return;
        throw err;
      }
      const report = diffSchemas(sa, sb, { from: path.basename(a), to: path.basename(b) });
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatDrift(report));
    });
}
