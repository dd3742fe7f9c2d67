import { and, desc, eq, sql } from 'drizzle-orm';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { deviceEvents, deviceParameters, devices } from '../../db/schema/fleet.js';
import { coreCatalog, type ParameterCatalog } from '../../fleet/catalog.js';
import { describeSelector } from '../../fleet/describe.js';
import { STRATUM_FIELDS } from '../../fleet/fields.js';
import { countByStrata, readOnly, selectDevices, selectorQuery } from '../../fleet/resolve.js';
import { parseSelector, type Selector, SelectorError } from '../../fleet/selector.js';
import { requireRole } from '../auth/guards.js';
import { boundedRead, errorBody, HttpError } from '../errors.js';

const selectorDoc =
  'Fleet selector (JSON): an object with one of all | and | or | not | field | param | lastContact | events, ' +
  'e.g. {"and":[{"field":"productClass","op":"eq","value":"HG8245"},{"field":"softwareVersion","op":"versionLt","value":"3.0"}]}';

const selectRequest = z.object({
  selector: z.unknown().meta({ description: selectorDoc }),
  sampleSize: z.number().int().min(0).max(1000).default(10),
  /** Per-stratum counts grouped by these fields (largest strata first). */
  strata: z.array(z.enum(STRATUM_FIELDS)).max(4).default([]),
  /** Evaluate relative conditions as of this time (default now); resolution is reproducible with it. */
  asOf: z.iso.datetime({ offset: true }).optional(),
});

const selectResponse = z
  .object({
    count: z.number().int(),
    /** sha-256 over the sorted matching device ids joined by "\n"; approvals bind to it. */
    deviceSetHash: z.string(),
    description: z.string(),
    asOf: z.string(),
    sample: z.array(z.string()),
    strata: z.array(
      z.object({ stratum: z.record(z.string(), z.string().nullable()), count: z.number().int() }),
    ),
  })
  .meta({ id: 'FleetSelection' });

const deviceSummary = z
  .object({
    id: z.string(),
    manufacturer: z.string().nullable(),
    productClass: z.string().nullable(),
    modelName: z.string().nullable(),
    softwareVersion: z.string().nullable(),
    protocol: z.string(),
    region: z.string().nullable(),
    olt: z.string().nullable(),
    ponPort: z.string().nullable(),
    lastContactAt: z.string().nullable(),
    tags: z.array(z.string()),
  })
  .meta({ id: 'DeviceSummary' });

const deviceDetail = deviceSummary
  .extend({
    oui: z.string(),
    serialNumber: z.string(),
    hardwareVersion: z.string().nullable(),
    dataModelRoot: z.string(),
    periodicInformIntervalS: z.number().int().nullable(),
    connectionRequestUrl: z.string().nullable(),
    topology: z.object({
      region: z.string().nullable(),
      site: z.string().nullable(),
      olt: z.string().nullable(),
      ponPort: z.string().nullable(),
      bng: z.string().nullable(),
      serviceTier: z.string().nullable(),
      timeZone: z.string().nullable(),
      updatedAt: z.string().nullable(),
    }),
    parameters: z.array(
      z.object({ path: z.string(), type: z.string(), value: z.string(), updatedAt: z.string() }),
    ),
    recentEvents: z.array(
      z.object({
        id: z.number().int(),
        at: z.string(),
        kind: z.string(),
        payload: z.record(z.string(), z.unknown()),
      }),
    ),
  })
  .meta({ id: 'DeviceDetail' });

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** Parses a selector from a request, mapping errors to 400 with the offending part named. */
function selectorFrom(input: unknown, catalog: ParameterCatalog, where: string): Selector {
  try {
    return parseSelector(input, { catalog });
  } catch (err) {
    if (err instanceof SelectorError) {
      const field = err.path ? `${where}.${err.path}` : where;
      throw new HttpError(400, 'invalid_selector', `${field}: ${err.reason}`, field);
    }
    throw err;
  }
}

const bounded = <T>(fn: () => Promise<T>) =>
  boundedRead(fn, 'selector_timeout', 'the selector took too long to evaluate; narrow it');

export const fleetRoutes: FastifyPluginAsyncZod<{ db: Db; catalog?: ParameterCatalog }> = async (
  app,
  opts,
) => {
  const { db } = opts;
  const catalog = opts.catalog ?? coreCatalog();

  app.post(
    '/fleet/select',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['fleet'],
        summary:
          'Resolve a selector: count, device-set hash, sample, per-stratum counts, plain-language reading',
        body: selectRequest,
        response: { 200: selectResponse, 400: errorBody, 401: errorBody, 403: errorBody, 422: errorBody },
      },
    },
    async (req) => {
      const selector = selectorFrom(req.body.selector, catalog, 'selector');
      const now = req.body.asOf ? new Date(req.body.asOf) : new Date();
      const o = { now, catalog };
      return bounded(async () => {
        const sel = await selectDevices(db, selector, { ...o, sampleSize: req.body.sampleSize });
        const strata = await countByStrata(db, selector, req.body.strata, o);
        return {
          count: sel.count,
          deviceSetHash: sel.hash,
          description: describeSelector(selector),
          asOf: now.toISOString(),
          sample: sel.sample,
          strata,
        };
      });
    },
  );

  app.get(
    '/fleet/devices',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['fleet'],
        summary: 'Devices in id order, optionally matching a selector; page with `after`',
        querystring: z.object({
          selector: z
            .string()
            .max(16_384)
            .optional()
            .meta({ description: `${selectorDoc} (URL-encoded JSON)` }),
          after: z.string().max(256).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: {
          200: z.object({ items: z.array(deviceSummary), next: z.string().nullable() }),
          400: errorBody,
          401: errorBody,
          403: errorBody,
          422: errorBody,
        },
      },
    },
    async (req) => {
      let raw: unknown = { all: true };
      if (req.query.selector !== undefined) {
        try {
          raw = JSON.parse(req.query.selector);
        } catch {
          throw new HttpError(400, 'invalid_selector', 'selector: not valid JSON', 'selector');
        }
      }
      const selector = selectorFrom(raw, catalog, 'selector');
      const { after, limit } = req.query;
      const rows = await bounded(() =>
        readOnly(db, 10_000, async (tx) => {
          const ids = selectorQuery(selector, { catalog });
          const r = await tx.execute<{
            id: string;
            manufacturer: string | null;
            product_class: string | null;
            model_name: string | null;
            software_version: string | null;
            protocol: string;
            region: string | null;
            olt: string | null;
            pon_port: string | null;
            last_contact_at: Date | string | null;
            tags: string[];
          }>(sql`select d.id, d.manufacturer, d.product_class, d.model_name, d.software_version, d.protocol,
                   d.region, d.olt, d.pon_port, d.last_contact_at, d.tags
                 from devices d where d.id in (${ids}) ${after !== undefined ? sql`and d.id > ${after}` : sql``}
                 order by d.id limit ${limit + 1}`);
          return r.rows;
        }),
      );
      const page = rows.slice(0, limit);
      return {
        items: page.map((d) => ({
          id: d.id,
          manufacturer: d.manufacturer,
          productClass: d.product_class,
          modelName: d.model_name,
          softwareVersion: d.software_version,
          protocol: d.protocol,
          region: d.region,
          olt: d.olt,
          ponPort: d.pon_port,
          lastContactAt: d.last_contact_at === null ? null : new Date(d.last_contact_at).toISOString(),
          tags: d.tags,
        })),
        next: rows.length > limit ? (page[page.length - 1]?.id ?? null) : null,
      };
    },
  );

  app.get(
    '/fleet/devices/:id',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['fleet'],
        summary: 'One device: inventory, topology, last known parameter values and recent events',
        params: z.object({ id: z.string().min(1).max(256) }),
        querystring: z.object({
          events: z.coerce.number().int().min(0).max(500).default(50),
          parameterPrefix: z.string().max(512).optional(),
        }),
        response: { 200: deviceDetail, 401: errorBody, 403: errorBody, 404: errorBody },
      },
    },
    async (req) => {
      const [d] = await db.select().from(devices).where(eq(devices.id, req.params.id));
      if (!d) throw new HttpError(404, 'not_found', `no device ${req.params.id}`, 'id');
      const prefix = req.query.parameterPrefix;
      const params = await db
        .select()
        .from(deviceParameters)
        .where(
          and(
            eq(deviceParameters.deviceId, d.id),
            prefix ? sql`starts_with(${deviceParameters.path}, ${prefix})` : undefined,
          ),
        )
        .orderBy(deviceParameters.path)
        .limit(5000);
      const events = await db
        .select()
        .from(deviceEvents)
        .where(eq(deviceEvents.deviceId, d.id))
        .orderBy(desc(deviceEvents.at), desc(deviceEvents.id))
        .limit(req.query.events);
      return {
        id: d.id,
        oui: d.oui,
        serialNumber: d.serialNumber,
        manufacturer: d.manufacturer,
        productClass: d.productClass,
        modelName: d.modelName,
        hardwareVersion: d.hardwareVersion,
        softwareVersion: d.softwareVersion,
        protocol: d.protocol,
        dataModelRoot: d.dataModelRoot,
        periodicInformIntervalS: d.periodicInformIntervalS,
        connectionRequestUrl: d.connectionRequestUrl,
        region: d.region,
        olt: d.olt,
        ponPort: d.ponPort,
        lastContactAt: iso(d.lastContactAt),
        tags: d.tags,
        topology: {
          region: d.region,
          site: d.site,
          olt: d.olt,
          ponPort: d.ponPort,
          bng: d.bng,
          serviceTier: d.serviceTier,
          timeZone: d.timeZone,
          updatedAt: iso(d.topologyUpdatedAt),
        },
        parameters: params.map((p) => ({
          path: p.path,
          type: p.type,
          value: p.value,
          updatedAt: p.updatedAt.toISOString(),
        })),
        recentEvents: events.map((e) => ({
          id: e.id,
          at: e.at.toISOString(),
          kind: e.kind,
          payload: e.payload,
        })),
      };
    },
  );
};
