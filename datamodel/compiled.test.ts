import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CORE_SCHEMAS, loadCompiledSchema, loadCoreSchema, serializeSchema } from './compiled.js';
import { corpusDir } from './corpus.js';
import { importDataModel } from './importer.js';
import { CompiledSchema } from './types.js';

describe('shipped compiled core schemas', () => {
  it.each(Object.keys(CORE_SCHEMAS) as Array<keyof typeof CORE_SCHEMAS>)(
    '%s is what the importer produces today, and passes the zod schema',
    (name) => {
      const shipped = loadCoreSchema(name);
      const fresh = importDataModel(path.join(corpusDir(), 'modular-2-19-1', `${name}.xml`));
      expect(serializeSchema(shipped)).toBe(serializeSchema(fresh));
      expect(() => CompiledSchema.parse(shipped)).not.toThrow();
      expect(() => loadCompiledSchema(CORE_SCHEMAS[name], { verify: true })).not.toThrow();
    },
  );

  it('carries no description text', () => {
    const text = serializeSchema(loadCoreSchema('tr-181-2-19-1-cwmp'));
    expect(text).not.toContain('description');
    expect(text).not.toContain('{{');
  });
});
