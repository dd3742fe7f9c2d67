/**
 * GET /rollouts (paged, filtered by state, live state from the workflows) and the gate figures the
 * rollout page charts (brick rate per stratum with its band, θ, the control group), through the
 * whole app (real auth, PostgreSQL, the Temporal dev server and a worker; the fleet and executor
 * behind the worker are the fast doubles of test/rollout).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRolloutActivities } from '../../activities/rollout.js';
import { buildServer } from '../../api/server.js';
import { createLogger } from '../../platform/logger.js';
import { FakeFleet, FastExecutorDouble, catalogue, makeCohort } from '../rollout/doubles.js';
import { createTestIdentity } from '../support/auth.js';
import { createTestDatabase } from '../support/db.js';
import { startTestWorker } from '../support/temporal.js';

const MINUTE_MS = 40;
const RUN = Date.now().toString(36);
const spec = (over: Record<string, unknown> = {}) => ({
  name: 'list rollout',
  image: 'img-good',
  cohort: { all: true },
  waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 100 }] },
  gate: { theta: 0.05, hardCeilingBricked: 1000 },
  outcomeTimeoutMinutes: 5,
  soakMinutes: 0,
  minStratumSize: 10,
  approvals: { beforeStart: false },
  ...over,
});

type Who = Awaited<ReturnType<typeof createTestIdentity>>;
type Item = { id: string; state: string; execution: string; devices: unknown; startedAt: string };
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Awaited<ReturnType<typeof startTestWorker>>;
let server: Awaited<ReturnType<typeof buildServer>>;
let alice: Who;
let vic: Who;
let nobody: Who;
const ids = { done: `ls-done-${RUN}`, paused: `ls-paused-${RUN}`, waiting: `ls-wait-${RUN}` };

beforeAll(async () => {
  db = await createTestDatabase();
  const executor = new FastExecutorDouble();
  const fleet = new FakeFleet(
    makeCohort(50),
    executor,
    { 'img-good': { version: '2.0', behaviour: () => 'ok' } },
    MINUTE_MS,
  );
  const deps = {
    rolloutExecutor: executor,
    rolloutFleet: fleet,
    rolloutImages: async (id: string) => catalogue[id],
    rolloutMinuteMs: MINUTE_MS,
  };
  env = await startTestWorker({ ...deps, db: db.db });
  const acts = createRolloutActivities({ logger: createLogger({ name: 'test', level: 'warn' }), ...deps });
  server = await buildServer({
    db,
    temporal: { client: env.client, namespace: 'default', taskQueue: env.taskQueue },
    readiness: [],
    auth: {},
    hardening: { rateLimitPerMin: false },
    rollouts: {
      prepare: (rolloutId, sp, seed) => acts.prepareRollout({ rolloutId, spec: sp, seed }),
      // The rollout named "needs approval" waits for one approval before it starts.
      decide: async (sp) => ({
        allow: true,
        requiredApprovals: sp.name === 'needs approval' ? 1 : 0,
        reasons: ['test policy'],
      }),
      timing: { minuteMs: MINUTE_MS, pollMs: MINUTE_MS * 2 },
      egress: { allowCidrs: ['127.0.0.1/32'] },
    },
  });
  alice = await createTestIdentity(db.db, 'alice', ['operator']);
  vic = await createTestIdentity(db.db, 'vic', ['viewer']);
  nobody = await createTestIdentity(db.db, 'nobody', []);
  const start = async (id: string, sp: Record<string, unknown>) => {
    const res = await server.inject({
      method: 'POST',
      url: '/rollouts',
      headers: alice.headers,
      payload: { id, spec: sp, dryRun: false },
    });
    expect(res.statusCode, res.body).toBe(201);
  };
  await start(ids.done, spec());
  // A long soak keeps this one running until it is paused.
  await start(ids.paused, spec({ soakMinutes: 1000, outcomeTimeoutMinutes: 1200 }));
  await start(ids.waiting, spec({ name: 'needs approval', approvals: { beforeStart: true } }));
  const paused = await server.inject({
    method: 'POST',
    url: `/rollouts/${ids.paused}/control`,
    headers: alice.headers,
    payload: { action: 'pause', requestId: `pause-${RUN}` },
  });
  expect(paused.json()).toMatchObject({ applied: true });
  await env.client.workflow.getHandle(ids.done).result();
}, 180_000);

afterAll(async () => {
  await server?.close();
  for (const id of [ids.paused, ids.waiting])
    await env?.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => undefined);
  await env?.stop();
  await db?.drop();
});

async function list(query: string, who: Who = vic): Promise<{ items: Item[]; nextCursor: string | null }> {
  const res = await server.inject({ url: `/rollouts${query}`, headers: who.headers });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

describe('GET /rollouts', () => {
  it('lists this deployment’s rollouts with their live state', async () => {
    // Temporal's visibility store is eventually consistent: wait until all three are listed.
    await expect
      .poll(async () => (await list('?limit=100')).items.map((i) => `${i.id}:${i.state}`).sort(), {
        timeout: 30_000,
        interval: 300,
      })
      .toEqual([`${ids.done}:completed`, `${ids.paused}:paused`, `${ids.waiting}:awaiting-approval`].sort());
    const { items } = await list('?limit=100');
    const done = items.find((i) => i.id === ids.done);
    expect(done).toMatchObject({ execution: 'completed', devices: { dispatched: 100, planned: 100 } });
    expect(new Date(done?.startedAt ?? 0).getTime()).toBeGreaterThan(Date.now() - 600_000);
  });

  it('filters by state', async () => {
    expect((await list('?state=paused')).items.map((i) => i.id)).toEqual([ids.paused]);
    expect((await list('?state=completed')).items.map((i) => i.id)).toEqual([ids.done]);
    expect((await list('?state=awaiting-approval')).items.map((i) => i.id)).toEqual([ids.waiting]);
    expect((await list('?state=aborted')).items).toEqual([]);
  });

  it('pages with an opaque cursor: every rollout once, then no cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const page = await list(`?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.items.length).toBeLessThanOrEqual(1);
      seen.push(...page.items.map((x) => x.id));
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(cursor).toBeNull();
    expect(seen.sort()).toEqual(Object.values(ids).sort());
  });

  it('refuses a forged cursor and unknown parameters (400), needs a token (401) and a role (403)', async () => {
    for (const cursor of [
      'AAAA',
      Buffer.from(JSON.stringify({ t: 'Zm9yZ2Vk', s: 0, m: 'x'.repeat(43) })).toString('base64url'),
    ]) {
      const res = await server.inject({ url: `/rollouts?cursor=${cursor}`, headers: vic.headers });
      expect(res.statusCode, cursor).toBe(400);
      expect(res.json()).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
    }
    const unknown = await server.inject({ url: '/rollouts?owner=alice', headers: vic.headers });
    expect(unknown.statusCode).toBe(400);
    const badState = await server.inject({ url: '/rollouts?state=exploded', headers: vic.headers });
    expect(badState.statusCode).toBe(400);
    expect((await server.inject({ url: '/rollouts' })).statusCode).toBe(401);
    expect((await server.inject({ url: '/rollouts', headers: nobody.headers })).statusCode).toBe(403);
  });

  it('is in the OpenAPI document with its query and response schemas', async () => {
    const doc = (await server.inject({ url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { parameters?: Array<{ name: string }>; responses: object }>>;
    };
    const op = doc.paths['/rollouts']?.get;
    expect(op?.parameters?.map((p) => p.name).sort()).toEqual(['cursor', 'limit', 'state']);
    expect(Object.keys(op?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400']));
  });
});

describe('rollout detail: what the chart draws', () => {
  it('each stratum’s brick rate with its band, θ and the control group', async () => {
    const res = await server.inject({ url: `/rollouts/${ids.done}`, headers: vic.headers });
    expect(res.statusCode).toBe(200);
    const gate = res.json().lastGate as {
      theta: number;
      familyWiseFalseAbortRate: number;
      perStratum: Array<{
        concluded: number;
        bricks: number;
        rate: number;
        band: { lower: number; upper: number; confidence: number };
        controlRate: number;
        controlObserved: number;
        abortBoundary: number;
      }>;
    };
    expect(gate.theta).toBe(0.05);
    expect(gate.perStratum.length).toBe(2);
    for (const s of gate.perStratum) {
      expect(s.concluded).toBeGreaterThan(0);
      expect(s.rate).toBe(s.bricks / s.concluded);
      expect(s.band.lower).toBeLessThanOrEqual(s.rate);
      expect(s.band.upper).toBeGreaterThan(s.rate);
      expect(s.band.upper).toBeLessThan(1);
      expect(s.band.confidence).toBeCloseTo(1 - gate.familyWiseFalseAbortRate, 10);
      expect(s.controlRate).toBeGreaterThanOrEqual(0);
      expect(Number.isInteger(s.controlObserved)).toBe(true);
      expect(s.abortBoundary).toBeGreaterThanOrEqual(gate.theta);
    }
  });
});
