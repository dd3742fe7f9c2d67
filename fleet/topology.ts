import { CsvError, parse as parseCsv } from 'csv-parse/sync';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { chunks, type DbOrTx } from './db.js';
import { DeviceId } from './devices.js';

/**
 * Topology from the operator's OSS: device → region, site, OLT, PON port, BNG, service tier, time zone.
 * The feed is authoritative for the devices it lists: a row replaces that device's whole topology (an
 * empty cell clears the value). Devices the feed does not list keep theirs.
 */

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const name = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine(
      (v) => ![...v].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === '\u007f'),
      'no control characters',
    );

export const TopologyRow = z.strictObject({
  deviceId: DeviceId,
  region: name(64),
  site: name(128).optional(),
  olt: name(128).optional(),
  ponPort: name(64).optional(),
  bng: name(128).optional(),
  serviceTier: name(64).optional(),
  timeZone: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .refine(validTimeZone, 'an IANA time zone such as "Europe/Berlin"')
    .optional(),
});
export type TopologyRow = z.infer<typeof TopologyRow>;

const COLUMNS = ['deviceId', 'region', 'site', 'olt', 'ponPort', 'bng', 'serviceTier', 'timeZone'] as const;
/** CSV headers may be snake_case (OSS exports) or camelCase. */
const HEADER_ALIASES: Record<string, (typeof COLUMNS)[number]> = Object.fromEntries(
  COLUMNS.flatMap((c) => [
    [c, c],
    [c.replace(/[A-Z]/g, (m) => `_${m.toLowerCase()}`), c],
  ]),
);
HEADER_ALIASES.device = 'deviceId';

export interface RowError {
  /** 1-based line in the file where the row starts (0 for the file as a whole). */
  line: number;
  field?: string;
  message: string;
}

export interface ParsedTopology {
  /** Data rows in the file, valid or not. */
  dataRows: number;
  rows: Array<{ line: number; row: TopologyRow }>;
  errors: RowError[];
}

/** Start line of each top-level element of a JSON array (strings and nesting are skipped). */
function jsonElementLines(text: string): number[] {
  const lines: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (expectElement && c !== ']') {
      lines.push(line);
      expectElement = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (c === '[' && depth === 1) expectElement = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectElement = true;
  }
  return lines;
}

function checkRow(raw: Record<string, unknown>, line: number, out: ParsedTopology): void {
  const r = TopologyRow.safeParse(raw);
  if (r.success) {
    out.rows.push({ line, row: r.data });
    return;
  }
  for (const issue of r.error.issues) {
    const field =
      issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.map(String).join('.') || undefined;
    out.errors.push({
      line,
      field,
      message: issue.code === 'unrecognized_keys' ? 'unknown column' : issue.message,
    });
  }
}

function parseCsvTopology(text: string, out: ParsedTopology): void {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parseCsv(text, {
      info: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
      relax_column_count: false,
    }) as unknown as typeof records;
  } catch (err) {
    if (err instanceof CsvError) {
      out.errors.push({
        line: (err as CsvError & { lines?: number }).lines ?? 0,
        message: `malformed CSV: ${err.message}`,
      });
      return;
    }
    throw err;
  }
  const [head, ...body] = records;
  if (!head) {
    out.errors.push({ line: 0, message: 'empty file' });
    return;
  }
  const cols = head.record.map((h) => HEADER_ALIASES[h] ?? HEADER_ALIASES[h.toLowerCase()]);
  head.record.forEach((h, i) => {
    if (!cols[i]) out.errors.push({ line: head.info.lines, field: h, message: 'unknown column' });
  });
  if (!cols.includes('deviceId'))
    out.errors.push({ line: head.info.lines, field: 'deviceId', message: 'missing column' });
  if (out.errors.length) return;
  out.dataRows = body.length;
  for (const { record, info } of body) {
    const raw: Record<string, unknown> = {};
    record.forEach((v, i) => {
      const c = cols[i];
      if (c && v !== '') raw[c] = v;
    });
    checkRow(raw, info.lines, out);
  }
}

function parseJsonTopology(text: string, out: ParsedTopology): void {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    out.errors.push({ line: 0, message: `malformed JSON: ${(err as Error).message}` });
    return;
  }
  if (!Array.isArray(doc)) {
    out.errors.push({ line: 0, message: 'expected a JSON array of rows' });
    return;
  }
  const lines = jsonElementLines(text);
  out.dataRows = doc.length;
  doc.forEach((el, i) => {
    const line = lines[i] ?? 0;
    if (typeof el !== 'object' || el === null || Array.isArray(el)) {
      out.errors.push({ line, message: 'expected an object' });
      return;
    }
    // null means "no value", like an empty CSV cell.
    const raw = Object.fromEntries(Object.entries(el).filter(([, v]) => v !== null));
    checkRow(raw, line, out);
  });
}

/** Parses and validates a topology file (JSON when it starts with "[", else CSV); reports duplicates. */
export function parseTopology(text: string, format?: 'csv' | 'json'): ParsedTopology {
  const out: ParsedTopology = { dataRows: 0, rows: [], errors: [] };
  const fmt = format ?? (text.trimStart().startsWith('[') ? 'json' : 'csv');
  if (fmt === 'json') parseJsonTopology(text, out);
  else parseCsvTopology(text, out);
  // A device listed twice is ambiguous: every later occurrence is an error and neither row is applied.
  const first = new Map<string, number>();
  const duplicated = new Set<string>();
  for (const { line, row } of out.rows) {
    const at = first.get(row.deviceId);
    if (at === undefined) first.set(row.deviceId, line);
    else {
      duplicated.add(row.deviceId);
      out.errors.push({
        line,
        field: 'deviceId',
        message: `duplicate device ${row.deviceId} (first on line ${at})`,
      });
    }
  }
  out.rows = out.rows.filter(({ row }) => !duplicated.has(row.deviceId));
  out.errors.sort((a, b) => a.line - b.line);
  return out;
}

export interface ImportResult {
  /** Data rows in the file. */
  rows: number;
  /** Rows written (0 when any row was invalid and `partial` was not set). */
  applied: number;
  /** Applied rows that changed a device's topology (a re-import of the same file changes none). */
  changed: number;
  errors: RowError[];
  dryRun: boolean;
}

/**
 * Validates and applies a topology file in one transaction. Any invalid row (bad value, unknown
 * column, duplicate device, device not in the inventory) means nothing is applied, unless `partial`,
 * which applies the valid rows and reports the rest.
 */
export async function importTopology(
  db: DbOrTx,
  text: string,
  opts: { format?: 'csv' | 'json'; partial?: boolean; dryRun?: boolean; now?: Date } = {},
): Promise<ImportResult> {
  const parsed = parseTopology(text, opts.format);
  const result: ImportResult = {
    rows: parsed.dataRows,
    applied: 0,
    changed: 0,
    errors: parsed.errors,
    dryRun: !!opts.dryRun,
  };
  if (
    parsed.errors.some(
      (e) => e.line === 0 || e.message === 'unknown column' || e.message === 'missing column',
    )
  ) {
    return result;
  }
  class Rollback extends Error {}
  try {
    await db.transaction(async (tx) => {
      // Locked in key order across all chunks, as every writer of devices locks (db/schema/fleet.ts).
      const ids = parsed.rows.map((r) => r.row.deviceId).sort();
      const known = new Set<string>();
      for (const batch of chunks(ids, 10_000)) {
        const r = await tx.execute<{ id: string }>(
          sql`select id from devices where id = any(${sql.param(batch)}::text[]) order by id for update`,
        );
        for (const x of r.rows) known.add(x.id);
      }
      const unknown = parsed.rows.filter((r) => !known.has(r.row.deviceId));
      for (const u of unknown) {
        result.errors.push({ line: u.line, field: 'deviceId', message: `unknown device ${u.row.deviceId}` });
      }
      result.errors.sort((a, b) => a.line - b.line);
      const valid = parsed.rows.filter((r) => known.has(r.row.deviceId));
      if (result.errors.length > 0 && !opts.partial) throw new Rollback();
      const now = (opts.now ?? new Date()).toISOString();
      for (const batch of chunks(valid, 1_000)) {
        const values = sql.join(
          batch.map(
            ({ row: r }) =>
              sql`(${r.deviceId}, ${r.region}, ${r.site ?? null}, ${r.olt ?? null}, ${r.ponPort ?? null}, ${r.bng ?? null}, ${r.serviceTier ?? null}, ${r.timeZone ?? null})`,
          ),
          sql`, `,
        );
        const upd = await tx.execute(sql`
          update devices d set region = v.region, site = v.site, olt = v.olt, pon_port = v.pon_port, bng = v.bng,
            service_tier = v.service_tier, time_zone = v.time_zone, topology_updated_at = ${now}::timestamptz,
            updated_at = ${now}::timestamptz
          from (values ${values}) as v(id, region, site, olt, pon_port, bng, service_tier, time_zone)
          where d.id = v.id::text and (d.region, d.site, d.olt, d.pon_port, d.bng, d.service_tier, d.time_zone)
            is distinct from (v.region::text, v.site::text, v.olt::text, v.pon_port::text, v.bng::text,
                              v.service_tier::text, v.time_zone::text)`);
        result.changed += upd.rowCount ?? 0;
      }
      result.applied = valid.length;
      if (opts.dryRun) throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
    if (!opts.dryRun || (result.errors.length > 0 && !opts.partial)) {
      result.applied = 0;
      result.changed = 0;
    }
  }
  return result;
}
