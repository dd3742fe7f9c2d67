import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Db } from '../../db/client.js';
import { coreCatalog, type ParameterCatalog } from '../../fleet/catalog.js';
import { describeQuery, parseQuery, type Query, QueryError } from '../../fleet/query.js';
import { type QueryResult, runQuery } from '../../fleet/query-compile.js';
import { ask } from '../../planner/ask.js';
import type { Gazetteer } from '../../planner/entities.js';
import { loadGazetteer } from '../../planner/gazetteer.js';
import { isUnavailable, type Llm, type PlannerUnavailable } from '../../planner/llm.js';
import { requireRole } from '../auth/guards.js';
import { boundedRead, errorBody, HttpError } from '../errors.js';

/**
 * Fleet questions: `POST /fleet/query` runs the query DSL as given; `POST /fleet/ask` translates a
 * plain-language question with the planner's model and runs the result. Both are read-only by
 * construction (fleet/query-compile.ts) and answer with the DSL, its plain-language reading and rows.
 */

const timeZone = z
  .string()
  .min(1)
  .max(64)
  .refine(
    (tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    },
    { message: 'not an IANA time zone (e.g. "Europe/Paris")' },
  );

const queryDoc =
  'Fleet query (JSON): {"where": <selector>, "measure": "count" | {"share": <selector>} | {"avg"|"min"|"max": "<numeric parameter path>"} | ' +
  '{"events": {"kind", "withinSeconds"}}, "groupBy": [...], "having": {"op", "value"}, "orderBy": {"by": "value"|"key", "dir"}, "limit": n}';

const queryRequest = z.strictObject({
  query: z.unknown().meta({ description: queryDoc }),
  /** Evaluate relative windows as of this time (default now), so an answer is reproducible. */
  asOf: z.iso.datetime({ offset: true }).optional(),
});

const askRequest = z.strictObject({
  question: z.string().trim().min(3).max(1000),
  /** The operator's IANA time zone, for "today" and "this week" (default UTC). */
  timeZone: timeZone.default('UTC'),
});

const resultRows = z.object({
  rows: z.array(z.object({ key: z.record(z.string(), z.string().nullable()), value: z.number().nullable() })),
  /** More rows matched than the row cap; the first ones are shown. */
  truncated: z.boolean(),
});

const usage = z.object({ promptTokens: z.number().int(), completionTokens: z.number().int() });

const queryAnswer = z
  .object({
    query: z.record(z.string(), z.unknown()),
    description: z.string(),
    asOf: z.string(),
    result: resultRows,
  })
  .meta({ id: 'FleetQueryAnswer' });

const askAnswer = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('answer'),
      query: z.record(z.string(), z.unknown()),
      description: z.string(),
      result: resultRows,
      /** Markdown table rendered by code; device-reported strings quoted. */
      table: z.string(),
      model: z.string(),
      usage,
      latencyMs: z.number(),
      rounds: z.number().int(),
    }),
    z.object({
      kind: z.literal('clarify'),
      question: z.string(),
      by: z.enum(['model', 'resolver']),
      model: z.string(),
      usage,
      latencyMs: z.number(),
      rounds: z.number().int(),
    }),
    z.object({
      kind: z.literal('change_request'),
      message: z.string(),
      model: z.string(),
      usage,
      latencyMs: z.number(),
      rounds: z.number().int(),
    }),
    z.object({
      kind: z.literal('invalid'),
      error: z.string(),
      model: z.string(),
      usage,
      latencyMs: z.number(),
      rounds: z.number().int(),
    }),
  ])
  .meta({ id: 'FleetAskAnswer', description: 'answers written by code from a model-translated query' });

/** The query as JSON for the response: selectors and measures are plain data already. */
const asJson = (q: Query) => JSON.parse(JSON.stringify(q)) as Record<string, unknown>;

export interface FleetQuestionRoutesOptions {
  db: Db;
  /** The planner's model; questions answer 503 naming why when it is unavailable. */
  llm: Llm | PlannerUnavailable;
  catalog?: ParameterCatalog;
  /** How long the names used for entity resolution are reused (default 60 s). */
  gazetteerTtlMs?: number;
}

export const fleetQuestionRoutes: FastifyPluginAsyncZod<FleetQuestionRoutesOptions> = async (app, opts) => {
  const { db, llm } = opts;
  const catalog = opts.catalog ?? coreCatalog();
  const ttl = opts.gazetteerTtlMs ?? 60_000;
  // Distinct topology names over the whole fleet are costly on a million devices: reuse them briefly.
  let cached: { at: number; value: Promise<Gazetteer> } | undefined;
  const gazetteer = () => {
    if (!cached || Date.now() - cached.at > ttl) {
      const value = loadGazetteer(db);
      cached = { at: Date.now(), value };
      value.catch(() => {
        cached = undefined;
      });
    }
    return cached.value;
  };
  const execute = (now: Date) => (q: Query) =>
    boundedRead(
      () => runQuery(db, q, { now, catalog }),
      'query_timeout',
      'the query took too long; narrow it',
    );

  app.post(
    '/fleet/query',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['fleet'],
        summary: 'Run a fleet query (read-only): aggregations, grouping, having, ordering, event windows',
        body: queryRequest,
        response: { 200: queryAnswer, 400: errorBody, 401: errorBody, 403: errorBody, 422: errorBody },
      },
    },
    async (req) => {
      let q: Query;
      try {
        q = parseQuery(req.body.query, { catalog });
      } catch (err) {
        if (err instanceof QueryError) {
          const field = err.path ? `query.${err.path}` : 'query';
          throw new HttpError(400, 'invalid_query', `${field}: ${err.reason}`, field);
        }
        throw err;
      }
      const now = req.body.asOf ? new Date(req.body.asOf) : new Date();
      const result: QueryResult = await execute(now)(q);
      return { query: asJson(q), description: describeQuery(q), asOf: now.toISOString(), result };
    },
  );

  app.post(
    '/fleet/ask',
    {
      preHandler: requireRole('viewer'),
      schema: {
        tags: ['fleet'],
        summary:
          'Ask the fleet in plain language: the model proposes a query, code resolves names, validates and runs it read-only',
        body: askRequest,
        response: {
          200: askAnswer,
          400: errorBody,
          401: errorBody,
          403: errorBody,
          422: errorBody,
          503: errorBody,
        },
      },
    },
    async (req) => {
      if (isUnavailable(llm)) throw new HttpError(503, 'planner_unavailable', llm.reason);
      const now = new Date();
      const a = await ask(
        llm,
        { gazetteer: await gazetteer(), timeZone: req.body.timeZone, now, catalog, execute: execute(now) },
        req.body.question,
      );
      if (a.kind === 'planner_unavailable') throw new HttpError(503, 'planner_unavailable', a.reason);
      req.log.info(
        { kind: a.kind, rounds: a.rounds, latencyMs: a.latencyMs, tokens: a.usage },
        'fleet question answered',
      );
      if (a.kind === 'answer') return { ...a, query: asJson(a.query), model: llm.model };
      return { ...a, model: llm.model };
    },
  );
};
