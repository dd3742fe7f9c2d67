import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import type * as schema from '../db/schema/index.js';

/** A database or an open transaction: every fleet repository function accepts either. */
export type DbOrTx = PgDatabase<NodePgQueryResultHKT, typeof schema>;

/** Rows per multi-row INSERT: PostgreSQL allows 65 535 bind parameters per statement. */
export function chunks<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}
