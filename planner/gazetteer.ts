import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../fleet/db.js';
import type { Gazetteer } from './entities.js';

/** The names entity resolution may map to: distinct topology and inventory values of the fleet. */
export async function loadGazetteer(db: DbOrTx): Promise<Gazetteer> {
  const distinct = async (col: string) => {
    const r = await db.execute<{ v: string }>(
      sql`select distinct ${sql.raw(`"${col}"`)} as v from "devices" where ${sql.raw(`"${col}"`)} is not null order by 1 limit 10000`,
    );
    return r.rows.map((x) => x.v);
  };
  return {
    regions: await distinct('region'),
    sites: await distinct('site'),
    productClasses: await distinct('product_class'),
    modelNames: await distinct('model_name'),
    softwareVersions: await distinct('software_version'),
  };
}
