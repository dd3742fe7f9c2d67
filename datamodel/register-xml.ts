import { type ImportOptions, importDataModel } from './importer.js';
import type { DeviceKey, RegistryEntry, SchemaRegistry } from './registry.js';

/**
 * Imports an XML model and registers it for a device key. The import completes (or throws) before
 * anything touches the registry, so a malformed file never leaves a half-imported schema behind.
 */
export function registerFromXml(
  registry: SchemaRegistry,
  key: DeviceKey,
  file: string,
  opts?: ImportOptions,
): Promise<RegistryEntry> {
  const schema = importDataModel(file, opts);
  return registry.register(key, schema, 'xml');
}
