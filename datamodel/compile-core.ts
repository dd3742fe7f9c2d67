/** Regenerates the shipped compiled core schemas: `node --import tsx datamodel/compile-core.ts`. */
import path from 'node:path';
import { CORE_SCHEMAS, saveCompiledSchema } from './compiled.js';
import { corpusDir } from './corpus.js';
import { importDataModel } from './importer.js';

for (const [name, out] of Object.entries(CORE_SCHEMAS)) {
  const entry = path.join(corpusDir(), 'modular-2-19-1', `${name}.xml`);
  const schema = importDataModel(entry);
  saveCompiledSchema(out, schema);
  console.log(
    `${name}: ${Object.keys(schema.objects).length} objects, ${Object.keys(schema.params).length} parameters -> ${path.relative(process.cwd(), out)}`,
  );
}
