import { createHash } from 'node:crypto';
import { z } from 'zod';
import { serializeSchema } from './compiled.js';
import type { ChangeInput, CompiledSchema, ItemResult, ValidationReport } from './types.js';
import { type ValidateOptions, validatorFor } from './validator.js';

/** What identifies a firmware's data model: (OUI or manufacturer, product class or model, software version). */
export const DeviceKey = z.object({
  oui: z.string().min(1),
  productClass: z.string().min(1),
  softwareVersion: z.string().min(1),
});
export type DeviceKey = z.infer<typeof DeviceKey>;

export const RegistryEntry = z.object({
  key: DeviceKey,
  schemaId: z.string(),
  /** how the schema was obtained */
  origin: z.enum(['xml', 'gpn', 'gsdm', 'manual']),
  registeredAt: z.string(),
});
export type RegistryEntry = z.infer<typeof RegistryEntry>;

/**
 * Persistence seam: the in-memory store below, or the PostgreSQL one (executor/schema-store.ts) that
 * all processes share. `getSchema` throws on a stored schema it cannot trust (corrupt, wrong hash).
 */
export interface SchemaStore {
  listEntries(): Promise<RegistryEntry[]>;
  getEntry(key: DeviceKey): Promise<RegistryEntry | undefined>;
  putEntry(entry: RegistryEntry): Promise<void>;
  getSchema(schemaId: string): Promise<CompiledSchema | undefined>;
  putSchema(schemaId: string, schema: CompiledSchema): Promise<void>;
}

export class MemorySchemaStore implements SchemaStore {
  private readonly entries = new Map<string, RegistryEntry>();
  private readonly schemas = new Map<string, CompiledSchema>();
  async listEntries(): Promise<RegistryEntry[]> {
    return [...this.entries.values()];
  }
  async getEntry(key: DeviceKey): Promise<RegistryEntry | undefined> {
    return this.entries.get(keyString(key));
  }
  async putEntry(entry: RegistryEntry): Promise<void> {
    this.entries.set(keyString(entry.key), entry);
  }
  async getSchema(schemaId: string): Promise<CompiledSchema | undefined> {
    return this.schemas.get(schemaId);
  }
  async putSchema(schemaId: string, schema: CompiledSchema): Promise<void> {
    this.schemas.set(schemaId, schema);
  }
}

function keyString(k: DeviceKey): string {
  return `${k.oui}\u0000${k.productClass}\u0000${k.softwareVersion}`;
}

/** Content address of a schema: identical trees share one stored schema. */
export function schemaId(schema: CompiledSchema): string {
  return `sha256:${createHash('sha256').update(serializeSchema(schema)).digest('hex').slice(0, 32)}`;
}

/** Compares firmware versions by numeric and textual runs ("1.10.2" > "1.9.9", "2.0b3" > "2.0b"). */
export function compareVersions(a: string, b: string): number {
  const ta = a.match(/\d+|[^\d.\-_]+/g) ?? [];
  const tb = b.match(/\d+|[^\d.\-_]+/g) ?? [];
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = Number(x) - Number(y);
      if (d !== 0) return d;
    } else if (x !== y) return nx ? 1 : ny ? -1 : x < y ? -1 : 1;
  }
  return 0;
}

export type Resolution =
  | { match: 'exact'; entry: RegistryEntry; schema: CompiledSchema }
  | { match: 'fallback'; entry: RegistryEntry; schema: CompiledSchema; requested: DeviceKey }
  | { match: 'none'; requested: DeviceKey };

/**
 * In-memory registry of (OUI, product class, software version) → compiled schema. Exact matches
 * authorise writes; a nearest-version fallback (same OUI and product class) may be read but never
 * authorises a write; no schema fails every write closed.
 */
export interface RegistryOptions {
  /**
   * A lookup without an exact match re-reads that key from the store at most this often (ms): a
   * shared store may have gained the schema from another process (the executor discovers trees).
   * 0 disables it (the in-memory default store has nothing new to offer).
   */
  reloadEveryMs?: number;
  /** Where a failed background reload is reported; the key then stays unknown (fails closed). */
  onReloadError?: (err: unknown, key: DeviceKey) => void;
}

export class SchemaRegistry {
  private readonly entries = new Map<string, RegistryEntry>();
  private readonly schemas = new Map<string, CompiledSchema>();
  private readonly lastReload = new Map<string, number>();
  private readonly reloadEveryMs: number;

  constructor(
    private readonly store: SchemaStore = new MemorySchemaStore(),
    private readonly opts: RegistryOptions = {},
  ) {
    this.reloadEveryMs = opts.reloadEveryMs ?? (store instanceof MemorySchemaStore ? 0 : 5_000);
  }

  /**
   * Loads all entries (and their schemas) from the store. All or nothing: a schema the store cannot
   * return (missing, corrupt) throws, naming the firmware, and nothing of this load is registered.
   */
  async load(): Promise<void> {
    const entries: RegistryEntry[] = [];
    const schemas = new Map<string, CompiledSchema>();
    for (const e of await this.store.listEntries()) {
      const s = schemas.get(e.schemaId) ?? (await this.schemaOf(e));
      schemas.set(e.schemaId, s);
      entries.push(e);
    }
    for (const e of entries) this.entries.set(keyString(e.key), e);
    for (const [id, s] of schemas) this.schemas.set(id, s);
  }

  /**
   * Re-reads one firmware's entry from the store, at most once per `reloadEveryMs` per key (unless
   * `force`). Returns whether an exact schema is known afterwards; throws (registering nothing) when
   * the stored schema is missing or corrupt.
   */
  async reload(key: DeviceKey, opts: { force?: boolean } = {}): Promise<boolean> {
    const k = keyString(key);
    const now = Date.now();
    const last = this.lastReload.get(k);
    if (!opts.force && last !== undefined && now - last < this.reloadEveryMs) return this.entries.has(k);
    this.lastReload.set(k, now);
    const e = await this.store.getEntry(key);
    if (!e) return this.entries.has(k);
    const s = await this.schemaOf(e);
    this.schemas.set(e.schemaId, s);
    this.entries.set(k, e);
    return true;
  }

  /** Awaits a (throttled) reload of every key that has no exact schema here; for async callers. */
  async ensure(keys: Iterable<DeviceKey>): Promise<void> {
    const seen = new Set<string>();
    for (const key of keys) {
      const k = keyString(key);
      if (seen.has(k) || this.entries.has(k) || this.reloadEveryMs <= 0) continue;
      seen.add(k);
      await this.reload(key);
    }
  }

  private async schemaOf(e: RegistryEntry): Promise<CompiledSchema> {
    const who = `${e.key.oui}/${e.key.productClass}/${e.key.softwareVersion}`;
    let s: CompiledSchema | undefined;
    try {
      s = await this.store.getSchema(e.schemaId);
    } catch (err) {
      throw new Error(`data model ${e.schemaId} of ${who} cannot be loaded: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (!s) throw new Error(`data model ${e.schemaId} of ${who} is registered but missing from the store`);
    return s;
  }

  /** Starts a throttled background reload after a lookup without an exact match. */
  private reloadInBackground(key: DeviceKey): void {
    if (this.reloadEveryMs <= 0) return;
    const last = this.lastReload.get(keyString(key));
    if (last !== undefined && Date.now() - last < this.reloadEveryMs) return;
    this.reload(key).catch((err) => this.opts.onReloadError?.(err, key));
  }

  /** Registers a complete schema. Callers pass only fully imported schemas (imports throw on error). */
  async register(
    key: DeviceKey,
    schema: CompiledSchema,
    origin: RegistryEntry['origin'] = 'xml',
  ): Promise<RegistryEntry> {
    const k = DeviceKey.parse(key);
    const id = schemaId(schema);
    const entry: RegistryEntry = { key: k, schemaId: id, origin, registeredAt: new Date().toISOString() };
    await this.store.putSchema(id, schema);
    await this.store.putEntry(entry);
    this.schemas.set(id, schema);
    this.entries.set(keyString(k), entry);
    return entry;
  }

  list(): RegistryEntry[] {
    return [...this.entries.values()];
  }

  resolve(key: DeviceKey): Resolution {
    const exact = this.entries.get(keyString(key));
    if (exact) {
      const schema = this.schemas.get(exact.schemaId);
      if (schema) return { match: 'exact', entry: exact, schema };
    }
    // Sync callers get today's answer; the next lookup sees what another process registered since.
    this.reloadInBackground(key);
    let best: { e: RegistryEntry; below: boolean } | undefined;
    for (const e of this.entries.values()) {
      if (e.key.oui !== key.oui || e.key.productClass !== key.productClass) continue;
      const below = compareVersions(e.key.softwareVersion, key.softwareVersion) < 0;
      // nearest older version first (the device usually upgraded from it), else nearest newer
      const better =
        !best ||
        (below && !best.below) ||
        (below === best.below &&
          (below
            ? compareVersions(e.key.softwareVersion, best.e.key.softwareVersion) > 0
            : compareVersions(e.key.softwareVersion, best.e.key.softwareVersion) < 0));
      if (better) best = { e, below };
    }
    if (best) {
      const schema = this.schemas.get(best.e.schemaId);
      if (schema) return { match: 'fallback', entry: best.e, schema, requested: key };
    }
    return { match: 'none', requested: key };
  }

  /** Validates write items for a device; fallback and missing schemas fail every write item. */
  validateForDevice(key: DeviceKey, items: readonly ChangeInput[], opts?: ValidateOptions): ValidationReport {
    const r = this.resolve(key);
    const who = `${key.oui}/${key.productClass}/${key.softwareVersion}`;
    if (r.match === 'none') {
      const results: ItemResult[] = items.map((it, index) => ({
        index,
        path: it.path,
        ok: false,
        code: 'no_schema',
        fault: null,
        message: `no data model registered for ${who}: discover its tree (GetParameterNames / GetSupportedDM) before writing`,
        secured: false,
      }));
      return { ok: items.length === 0, schemaMatch: 'none', results, invalid: results.length };
    }
    const base = validatorFor(r.schema).validate(items, opts);
    if (r.match === 'exact') return { ...base, schemaMatch: 'exact', schemaId: r.entry.schemaId };
    const from = r.entry.key.softwareVersion;
    const results: ItemResult[] = base.results.map((res) => ({
      ...res,
      ok: false,
      code: 'fallback_schema',
      fault: null,
      fallbackCode: res.code,
      message: `only a fallback data model (software ${from}) is known for ${who}; it never authorises a write (against it: ${res.message})`,
    }));
    return {
      ok: items.length === 0,
      schemaMatch: 'fallback',
      schemaId: r.entry.schemaId,
      results,
      invalid: results.length,
    };
  }
}
