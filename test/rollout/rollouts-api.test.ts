import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRolloutActivities } from '../../activities/rollout.js';
import { registerErrorHandling } from '../../api/errors.js';
import { rolloutRoutes } from '../../api/routes/rollouts.js';
import type { Principal } from '../../domain/approval/identity.js';
import { createLogger } from '../../platform/logger.js';
import { startTestWorker } from '../support/temporal.js';
import { FakeFleet, FastExecutorDouble, catalogue, makeCohort } from './doubles.js';

const MINUTE_MS = 40;
const operator: Principal = { id: 'u-alice', name: 'alice', kind: 'user', roles: ['operator'] };
const viewer: Principal = { id: 'u-vic', name: 'vic', kind: 'user', roles: ['viewer'] };

const spec = {
  name: 'api rollout',
  image: 'img-good',
  cohort: { all: true },
  waves: { kind: 'steps', steps: [{ percent: 10 }, { percent: 100 }] },
  gate: { theta: 0.05, hardCeilingBricked: 1000 },
  outcomeTimeoutMinutes: 5,
  soakMinutes: 0,
  minStratumSize: 10,
  approvals: { beforeStart: false },
};

describe('rollout API (server.inject; fast executor double behind the worker)', () => {
  let env: Awaited<ReturnType<typeof startTestWorker>>;
  let server: Awaited<ReturnType<typeof build>>;
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

  async function build() {
    const s = Fastify().withTypeProvider<ZodTypeProvider>();
    s.setValidatorCompiler(validatorCompiler);
    s.setSerializerCompiler(serializerCompiler);
    registerErrorHandling(s);
    // Stands in for the auth plugin: the caller is chosen by a header.
    s.decorateRequest('principal', null);
    s.addHook('onRequest', async (req) => {
      req.principal = req.headers['x-test-user'] === 'vic' ? viewer : operator;
    });
    const acts = createRolloutActivities({ logger: createLogger({ name: 'test', level: 'warn' }), ...deps });
    await s.register(rolloutRoutes, {
      temporal: env.client,
      taskQueue: env.taskQueue,
      prepare: (rolloutId, sp, seed) => acts.prepareRollout({ rolloutId, spec: sp, seed }),
      decide: async (sp) => ({
        allow: sp.image !== 'img-bad',
        requiredApprovals: 0,
        reasons: ['test policy'],
      }),
      timing: { minuteMs: MINUTE_MS, pollMs: MINUTE_MS * 2 },
      ssePollMs: 50,
    });
    await s.ready();
    return s;
  }

  beforeAll(async () => {
    env = await startTestWorker(deps);
    server = await build();
  });
  afterAll(async () => {
    await server?.close();
    await env?.stop();
  });

  it('dry run: devices per stratum and wave, schedule estimate, policy decision; nothing starts', async () => {
    const res = await server.inject({ method: 'POST', url: '/rollouts', payload: { id: 'ro-dry-1', spec } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.started).toBe(false);
    expect(body.plan.cohortSize).toBe(100);
    expect(body.plan.waves).toHaveLength(2);
    expect(body.plan.waves[0].perStratum).toEqual({ 'A|h1|1.0': 5, 'B|h1|1.0': 5 });
    expect(body.plan.schedule.totalMinutes).toBeGreaterThanOrEqual(10);
    expect(body.policy.allow).toBe(true);
    expect(executor.dispatches).toHaveLength(0);
  });

  it('rejects an invalid spec with 400 and a viewer with 403', async () => {
    const bad = await server.inject({
      method: 'POST',
      url: '/rollouts',
      payload: { id: 'ro-bad-spec', spec: { ...spec, gate: { theta: 2, hardCeilingBricked: 1 } } },
    });
    expect(bad.statusCode).toBe(400);
    const denied = await server.inject({
      method: 'POST',
      url: '/rollouts',
      headers: { 'x-test-user': 'vic' },
      payload: { id: 'ro-viewer', spec },
    });
    expect(denied.statusCode).toBe(403);
  });

  it('starts, answers controls idempotently, streams progress and reports', async () => {
    const id = `ro-api-${Date.now()}`;
    const res = await server.inject({
      method: 'POST',
      url: '/rollouts',
      payload: { id, spec, dryRun: false },
    });
    expect(res.statusCode).toBe(201);
    const again = await server.inject({
      method: 'POST',
      url: '/rollouts',
      payload: { id, spec, dryRun: false },
    });
    expect(again.statusCode).toBe(409);
    const c1 = await server.inject({
      method: 'POST',
      url: `/rollouts/${id}/control`,
      payload: { action: 'retry-failed', requestId: 'req-0001' },
    });
    const c2 = await server.inject({
      method: 'POST',
      url: `/rollouts/${id}/control`,
      payload: { action: 'retry-failed', requestId: 'req-0001' },
    });
    expect(c1.json()).toMatchObject({ duplicate: false, applied: true });
    expect(c2.json()).toMatchObject({ duplicate: true });
    const promote = await server.inject({
      method: 'POST',
      url: `/rollouts/${id}/control`,
      payload: { action: 'promote', requestId: 'req-0002' },
    });
    expect(promote.statusCode).toBe(422);
    // SSE: the stream ends when the rollout completes; the last event says so.
    const sse = await server.inject({ method: 'GET', url: `/rollouts/${id}/events` });
    expect(sse.headers['content-type']).toContain('text/event-stream');
    const events = sse.body.split('\n\n').filter((x) => x.startsWith('event: progress'));
    expect(events.length).toBeGreaterThan(1);
    const last = JSON.parse(events.at(-1)!.split('data: ')[1]!);
    expect(last.status).toBe('completed');
    const rep = await server.inject({ method: 'GET', url: `/rollouts/${id}/report` });
    expect(rep.statusCode).toBe(200);
    expect(rep.json()).toMatchObject({ status: 'completed', devices: { dispatched: 100, planned: 100 } });
    expect(rep.json().outcomes.success).toBe(100);
    const prog = await server.inject({
      method: 'GET',
      url: `/rollouts/${id}`,
      headers: { 'x-test-user': 'vic' },
    });
    expect(prog.json().waves).toHaveLength(2);
    const missing = await server.inject({ method: 'GET', url: '/rollouts/ro-nope-404' });
    expect(missing.statusCode).toBe(404);
  });
});
