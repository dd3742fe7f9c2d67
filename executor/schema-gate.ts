import { loadCoreSchema } from '../datamodel/compiled.js';
import { schemaFromParameterNames } from '../datamodel/discovered.js';
import { toSchemaPath } from '../datamodel/paths.js';
import type { DeviceKey, SchemaRegistry } from '../datamodel/registry.js';
import type { ChangeInput, CompiledSchema } from '../datamodel/types.js';
import { type Operation, type TaskFault, WRITE_KINDS } from './executor.js';

/**
 * The executor's view of the data-model registry: every write needs an exact schema for the device's
 * (OUI, product class, software version) and must validate against it; otherwise it fails closed with
 * a fault that says why. Discovery (GetParameterNames / GetSupportedDM) registers missing schemas.
 */
export interface SchemaGate {
  match(key: DeviceKey): 'exact' | 'fallback' | 'none';
  /** null when the operation may be sent; a fault (schema_unknown / validation) otherwise. */
  checkWrite(key: DeviceKey, op: Operation): TaskFault | null;
  /** xsd type for a value on the wire (`xsd:unsignedInt`, …), from the device's schema. */
  xsdType(key: DeviceKey, path: string): string | undefined;
  /** Build and register a schema from a GetParameterNames result; returns whether it registered. */
  registerDiscovered(key: DeviceKey, names: Array<{ path: string; writable: boolean }>): Promise<boolean>;
}

function itemsOf(op: Operation): ChangeInput[] {
  switch (op.kind) {
    case 'setValues':
      return op.values.map((v) => ({ op: 'set' as const, path: v.path, value: v.value }));
    case 'addObject':
      return [{ op: 'add', path: op.path }];
    case 'deleteObject':
      return [{ op: 'delete', path: op.path }];
    default:
      return [];
  }
}

let coreCwmp: CompiledSchema | null = null;
function reference(root: string): CompiledSchema | undefined {
  if (root !== 'Device.') return undefined;
  coreCwmp ??= loadCoreSchema('tr-181-2-19-1-cwmp');
  return coreCwmp;
}

export function createSchemaGate(registry: SchemaRegistry): SchemaGate {
  const who = (k: DeviceKey) => `${k.oui}/${k.productClass}/${k.softwareVersion}`;
  return {
    match(key) {
      return registry.resolve(key).match;
    },
    checkWrite(key, op) {
      if (!WRITE_KINDS.has(op.kind)) return null;
      const r = registry.resolve(key);
      if (r.match !== 'exact') {
        return {
          reason: 'schema_unknown',
          message:
            r.match === 'none'
              ? `no data model is known for ${who(key)}: writes stay refused until its tree was discovered (GetParameterNames)`
              : `only a fallback data model (software ${r.entry.key.softwareVersion}) is known for ${who(key)}; it never authorises a write — discover the tree first`,
        };
      }
      const items = itemsOf(op);
      if (items.length === 0) return null;
      const report = registry.validateForDevice(key, items);
      if (report.ok) return null;
      const bad = report.results.filter((x) => !x.ok);
      return {
        reason: 'validation',
        code: 9003,
        message: `${bad.length} item(s) refused by the data model of ${who(key)}`,
        parameters: bad.map((x) => ({ path: x.path, code: x.fault ?? 9007, message: x.message })),
      };
    },
    xsdType(key, path) {
      const r = registry.resolve(key);
      if (r.match !== 'exact') return undefined;
      const sp = toSchemaPath(path);
      const def = sp ? r.schema.params[sp] : undefined;
      return def ? `xsd:${def.t.base}` : undefined;
    },
    async registerDiscovered(key, names) {
      const rows = names
        .filter((n) => n.path.length > 0)
        .map((n) => ({ name: n.path, writable: n.writable }));
      if (rows.length === 0) return false;
      const root = rows[0]!.name.slice(0, rows[0]!.name.indexOf('.') + 1);
      const schema = schemaFromParameterNames(rows, { reference: reference(root) });
      await registry.register(key, schema, 'gpn');
      return true;
    },
  };
}
