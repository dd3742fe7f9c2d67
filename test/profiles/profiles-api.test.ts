import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { listAudit } from '../../db/audit.js';
import { upsertDevices } from '../../fleet/devices.js';
import { updateLastValues } from '../../fleet/parameters.js';
import { importTopology } from '../../fleet/topology.js';
import { createTestIdentity } from '../support/auth.js';
import { createTestDatabase } from '../support/db.js';
import { startTestWorker } from '../support/temporal.js';

type Who = Awaited<ReturnType<typeof createTestIdentity>>;

// Ten devices: d0..d4 in north, d5..d9 in south; d0..d1 premium tier.
const IDS = Array.from({ length: 10 }, (_, i) => `00D09E-HGW-D${i}`);
const SSID = 'Device.WiFi.SSID.1.SSID';
const CH = 'Device.WiFi.Radio.1.Channel';
const north = { field: 'region', op: 'eq', value: 'north' };
const all = { all: true };
const premium = { field: 'serviceTier', op: 'eq', value: 'premium' };

describe('profiles API (real PostgreSQL and Temporal)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Awaited<ReturnType<typeof startTestWorker>>;
  let server: Awaited<ReturnType<typeof buildServer>>;
  let ops: Who;
  let bob: Who;
  let viewer: Who;
  let planner: Who;
  let admin: Who;

  const call = async (
    who: Who,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: unknown,
  ) => {
    const r = await server.inject({ method, url, headers: who.headers, ...(payload ? { payload } : {}) });
    return {
      status: r.statusCode,
      body: r.json() as Record<string, unknown> & Array<Record<string, unknown>>,
    };
  };
  const create = (spec: Record<string, unknown>) =>
    call(ops, 'POST', '/profiles', { spec: { owner: 'netops', ...spec } });
  const effective = async (i: number) =>
    (await call(viewer, 'GET', `/devices/${IDS[i]}/effective-config`)).body as unknown as {
      fields: Array<{
        path: string;
        status: string;
        value?: unknown;
        owners: string[];
        overridden: Array<{ rule: string }>;
        drifted: boolean;
      }>;
    };
  const fieldOf = async (i: number, p: string) => (await effective(i)).fields.find((f) => f.path === p);

  beforeAll(async () => {
    db = await createTestDatabase();
    env = await startTestWorker({ db: db.db });
    server = await buildServer({
      db,
      temporal: { client: env.client, namespace: 'default', taskQueue: env.taskQueue },
      readiness: [],
      auth: {},
    });
    ops = await createTestIdentity(db.db, 'ops', ['operator']);
    bob = await createTestIdentity(db.db, 'bob', ['approver']);
    viewer = await createTestIdentity(db.db, 'vera', ['viewer']);
    planner = await createTestIdentity(db.db, 'planner', ['operator'], { kind: 'service' });
    admin = await createTestIdentity(db.db, 'root', ['admin']);
    await upsertDevices(
      db.db,
      IDS.map((id, i) => ({
        id,
        oui: '00D09E',
        serialNumber: `D${i}`,
        protocol: 'cwmp' as const,
        productClass: 'HGW',
        softwareVersion: '1.0',
      })),
    );
    await importTopology(
      db.db,
      `device_id,region,service_tier\n${IDS.map((id, i) => `${id},${i < 5 ? 'north' : 'south'},${i < 2 ? 'premium' : 'basic'}`).join('\n')}\n`,
    );
    await updateLastValues(
      db.db,
      IDS.map((id) => ({ deviceId: id, path: SSID, type: 'string', value: 'home' })),
    );
  }, 120_000);
  afterAll(async () => {
    await server?.close();
    await env?.stop();
    await db?.drop();
  });

  it('refuses bad input with a specific error and stores nothing', async () => {
    const bad = [
      [
        { name: 'x', selector: all, parameters: [{ path: 'Device..SSID', value: 'a' }] },
        'body.spec.parameters.0.path',
      ],
      [{ name: 'Upper', selector: all, parameters: [{ path: SSID, value: 'a' }] }, 'body.spec.name'],
      [{ name: 'conflicts', selector: all, parameters: [{ path: SSID, value: 'a' }] }, 'body.spec.name'],
      [
        {
          name: 'dup',
          selector: all,
          parameters: [
            { path: SSID, value: 'a' },
            { path: SSID, value: 'b' },
          ],
        },
        'body.spec.parameters',
      ],
      [
        {
          name: 'win',
          selector: all,
          parameters: [{ path: SSID, value: 'a' }],
          validFrom: '2026-02-01',
          validUntil: '2026-01-01',
        },
        'body.spec.validUntil',
      ],
    ] as const;
    for (const [spec, field] of bad) {
      const r = await create(spec);
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.field).toBe(field);
    }
    const sel = await create({
      name: 'badsel',
      selector: { field: 'nope', op: 'eq', value: 1 },
      parameters: [{ path: SSID, value: 'a' }],
    });
    expect(sel.status).toBe(400);
    expect(sel.body).toMatchObject({ code: 'invalid_selector', field: 'body.spec.selector' });
    expect((await call(viewer, 'GET', '/profiles')).body).toEqual([]);
    expect(
      (
        await call(viewer, 'POST', '/profiles', {
          spec: { name: 'v', owner: 'v', selector: all, parameters: [{ path: SSID, value: 'a' }] },
        })
      ).status,
    ).toBe(403);
  });

  it('stores profiles with history; a removed field is released', async () => {
    expect(
      (
        await create({
          name: 'base',
          selector: all,
          parameters: [
            { path: SSID, value: 'fleet' },
            { path: CH, value: 6 },
          ],
        })
      ).status,
    ).toBe(201);
    expect(
      (await create({ name: 'base', selector: all, parameters: [{ path: SSID, value: 'x' }] })).status,
    ).toBe(409);
    expect(await fieldOf(0, CH)).toMatchObject({
      status: 'owned',
      value: 6,
      owners: ['base'],
      drifted: true,
    });
    // Replace without CH: base releases it, nothing owns it any more.
    const upd = await call(ops, 'PUT', '/profiles/base', {
      spec: { name: 'base', owner: 'netops', selector: all, parameters: [{ path: SSID, value: 'fleet' }] },
      expectedVersion: 1,
    });
    expect(upd.status).toBe(200);
    expect(upd.body.version).toBe(2);
    expect(await fieldOf(0, CH)).toBeUndefined();
    const stale = await call(ops, 'PUT', '/profiles/base', {
      spec: { name: 'base', owner: 'netops', selector: all, parameters: [{ path: SSID, value: 'other' }] },
      expectedVersion: 1,
    });
    expect(stale).toMatchObject({ status: 409, body: { code: 'version_conflict' } });
    const hist = await call(viewer, 'GET', '/profiles/base/history');
    expect(hist.body.map((v) => [v.version, v.action])).toEqual([
      [1, 'created'],
      [2, 'updated'],
    ]);
    const audit = await listAudit(db.db, { subjectKind: 'profile', subjectId: 'base' });
    expect(audit.map((a) => a.action)).toEqual(['profile.created', 'profile.updated']);
    expect(audit[1]?.data).toMatchObject({ released: [CH] });
  });

  it('overlapping selectors: equal values share ownership, different values are resolved by each rule', async () => {
    // Equal value, overlapping (north ⊂ all): shared by both.
    await create({ name: 'north-ssid', selector: north, parameters: [{ path: SSID, value: 'fleet' }] });
    expect(await fieldOf(0, SSID)).toMatchObject({
      status: 'shared',
      value: 'fleet',
      owners: ['base', 'north-ssid'],
    });
    expect(await fieldOf(7, SSID)).toMatchObject({ status: 'owned', owners: ['base'] });
    // Different value, higher priority wins.
    await create({ name: 'ch-low', selector: all, priority: 0, parameters: [{ path: CH, value: 1 }] });
    await create({ name: 'ch-high', selector: all, priority: 5, parameters: [{ path: CH, value: 11 }] });
    expect(await fieldOf(0, CH)).toMatchObject({
      status: 'resolved',
      value: 11,
      owners: ['ch-high'],
      overridden: [{ rule: 'priority' }],
    });
    // Equal priority: the more specific selector (premium: 2 devices) beats all (10).
    await create({
      name: 'pw-all',
      selector: all,
      parameters: [{ path: 'Device.WiFi.Radio.1.TransmitPower', value: 80 }],
    });
    await create({
      name: 'pw-premium',
      selector: premium,
      parameters: [{ path: 'Device.WiFi.Radio.1.TransmitPower', value: 100 }],
    });
    expect(await fieldOf(0, 'Device.WiFi.Radio.1.TransmitPower')).toMatchObject({
      status: 'resolved',
      value: 100,
      overridden: [{ rule: 'specificity' }],
    });
    // Equal priority and selector: the newest wins.
    await create({
      name: 'ntp-old',
      selector: all,
      parameters: [{ path: 'Device.Time.NTPServer1', value: 'a.ntp' }],
    });
    await create({
      name: 'ntp-new',
      selector: all,
      parameters: [{ path: 'Device.Time.NTPServer1', value: 'b.ntp' }],
    });
    expect(await fieldOf(5, 'Device.Time.NTPServer1')).toMatchObject({
      status: 'resolved',
      value: 'b.ntp',
      overridden: [{ rule: 'newest' }],
    });
    // The order is configurable: newest first makes ch-low (created later than... no: ch-high is newer) win only by time.
    expect((await call(ops, 'PUT', '/profiles/precedence', { rules: ['newest'] })).status).toBe(403);
    expect(
      (await call(admin, 'PUT', '/profiles/precedence', { rules: ['specificity', 'newest', 'priority'] }))
        .status,
    ).toBe(200);
    // Same selector for ch-*: specificity ties, newest decides → ch-high (created second) still wins, by 'newest' now.
    expect(await fieldOf(0, CH)).toMatchObject({ value: 11, overridden: [{ rule: 'newest' }] });
    expect(
      (await call(admin, 'PUT', '/profiles/precedence', { rules: ['priority', 'priority'] })).status,
    ).toBe(400);
    await call(admin, 'PUT', '/profiles/precedence', { rules: ['priority', 'specificity', 'newest'] });
    // Fleet-wide, before anything is applied: which profiles, which paths, how many devices, which values.
    const c = await call(viewer, 'GET', '/profiles/conflicts');
    expect(c.status).toBe(200);
    const groups = c.body.groups as unknown as Array<{
      path: string;
      devices: number;
      status: string;
      claims: unknown[];
    }>;
    expect(groups.find((g) => g.path === CH)).toMatchObject({
      devices: 10,
      status: 'resolved',
      claims: expect.arrayContaining([
        { profileId: 'ch-low', value: 1 },
        { profileId: 'ch-high', value: 11 },
      ]),
    });
    expect(groups.find((g) => g.path === 'Device.WiFi.Radio.1.TransmitPower')?.devices).toBe(2);
    expect(groups.some((g) => g.path === SSID)).toBe(false); // equal values are no conflict
    // Planning a change stores nothing and shows the conflicts it would take part in, resolved.
    const plan = await call(viewer, 'POST', '/profiles/plan', {
      spec: {
        name: 'ch-mid',
        owner: 'netops',
        selector: all,
        priority: 5,
        parameters: [{ path: CH, value: 7 }],
      },
    });
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    expect(plan.body.groups).toEqual([
      expect.objectContaining({ path: CH, devices: 10, status: 'resolved', value: 7, owners: ['ch-mid'] }),
    ]);
    expect((await call(viewer, 'GET', '/profiles/ch-mid')).status).toBe(404);
  });

  it('escalates an unresolved conflict: the planner suggests with a rationale, a person approves; audited', async () => {
    await create({
      name: 'guest-a',
      selector: north,
      parameters: [{ path: 'Device.WiFi.SSID.2.SSID', value: 'guest-a' }],
    });
    await create({
      name: 'guest-b',
      selector: north,
      parameters: [{ path: 'Device.WiFi.SSID.2.SSID', value: 'guest-b' }],
    });
    await call(admin, 'PUT', '/profiles/precedence', { rules: ['priority'] });
    const c = await call(viewer, 'GET', '/profiles/conflicts');
    const g = (
      c.body.groups as unknown as Array<{
        path: string;
        status: string;
        escalation?: string;
        devices: number;
      }>
    ).find((x) => x.path === 'Device.WiFi.SSID.2.SSID');
    expect(g).toMatchObject({ status: 'conflict', devices: 5 });
    // Under 'priority' alone the equal-priority transmit power (2 devices) and NTP (10) fights are unresolved too.
    expect(c.body.unresolvedPairs).toBe(17);
    expect((await fieldOf(0, 'Device.WiFi.SSID.2.SSID'))?.value).toBeUndefined();
    const body = { path: 'Device.WiFi.SSID.2.SSID', profiles: ['guest-b', 'guest-a'], winner: 'guest-a' };
    // The planner must give a rationale; the winner must be a contender.
    expect((await call(planner, 'POST', '/profiles/conflicts/proposals', body)).status).toBe(422);
    expect(
      (
        await call(planner, 'POST', '/profiles/conflicts/proposals', {
          ...body,
          winner: 'base',
          rationale: 'r',
        })
      ).status,
    ).toBe(422);
    expect(
      (
        await call(planner, 'POST', '/profiles/conflicts/proposals', {
          ...body,
          profiles: ['guest-a', 'base'],
          rationale: 'r',
        })
      ).status,
    ).toBe(404);
    const p = await call(planner, 'POST', '/profiles/conflicts/proposals', {
      ...body,
      rationale: 'guest-a is the regional standard',
    });
    expect(p.status).toBe(200);
    expect(p.body).toMatchObject({ workflowId: g?.escalation, gate: 'resolution' });
    const url = `/approvals/${p.body.workflowId}/resolution`;
    await expect.poll(async () => (await call(viewer, 'GET', url)).status, { timeout: 15_000 }).toBe(200);
    // The planner can never approve.
    expect((await call(planner, 'POST', `${url}/approve`, { planHash: p.body.planHash })).status).toBe(403);
    const ok = await call(bob, 'POST', `${url}/approve`, { planHash: p.body.planHash });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    await expect
      .poll(async () => (await fieldOf(0, 'Device.WiFi.SSID.2.SSID'))?.status, { timeout: 15_000 })
      .toBe('decided');
    expect(await fieldOf(0, 'Device.WiFi.SSID.2.SSID')).toMatchObject({
      value: 'guest-a',
      owners: ['guest-a'],
    });
    const audit = await listAudit(db.db, { subjectKind: 'profile_field' });
    expect(audit[0]).toMatchObject({
      action: 'profile.conflict_decided',
      data: expect.objectContaining({
        winner: 'guest-a',
        approvers: ['bob'],
        rationale: 'guest-a is the regional standard',
      }),
    });
    // A profile joining the fight voids the decision: conflict again.
    await create({
      name: 'guest-c',
      selector: north,
      parameters: [{ path: 'Device.WiFi.SSID.2.SSID', value: 'guest-c' }],
    });
    expect((await fieldOf(0, 'Device.WiFi.SSID.2.SSID'))?.status).toBe('conflict');
    await call(ops, 'DELETE', '/profiles/guest-c');
    await call(admin, 'PUT', '/profiles/precedence', { rules: ['priority', 'specificity', 'newest'] });
  }, 60_000);

  it('a change request that fights a profile says so; a time-boxed override lets it stand', async () => {
    const change = {
      selector: { field: 'region', op: 'eq', value: 'south' },
      items: [{ path: SSID, value: 'event-wifi' }],
    };
    const f = await call(viewer, 'POST', '/profiles/check-change', change);
    expect(f.body).toMatchObject({
      targets: 5,
      fights: [{ path: SSID, value: 'event-wifi', effective: 'fleet', owners: ['base'], devices: 5 }],
    });
    const until = new Date(Date.now() + 86_400_000).toISOString();
    const tooLong = new Date(Date.now() + 40 * 86_400_000).toISOString();
    expect(
      (
        await call(ops, 'POST', '/profiles/overrides', {
          changeRequestId: 'CR-17',
          selector: change.selector,
          parameters: change.items,
          validUntil: tooLong,
        })
      ).body,
    ).toMatchObject({ code: 'invalid' });
    const o = await call(ops, 'POST', '/profiles/overrides', {
      changeRequestId: 'CR-17',
      selector: change.selector,
      parameters: change.items,
      validUntil: until,
    });
    expect(o.status, JSON.stringify(o.body)).toBe(201);
    expect(o.body).toMatchObject({
      id: 'override-cr-17',
      kind: 'override',
      changeRequestId: 'CR-17',
      priority: 1,
      validUntil: until,
    });
    expect((await call(viewer, 'POST', '/profiles/check-change', change)).body).toMatchObject({ fights: [] });
    expect(await fieldOf(7, SSID)).toMatchObject({ value: 'event-wifi', owners: ['override-cr-17'] });
    expect(await fieldOf(0, SSID)).toMatchObject({ value: 'fleet' });
    // Once it expires, the profile owns the field again.
    await db.pool.query(
      `update profiles set valid_from = now() - interval '2 days', valid_until = now() - interval '1 second' where id = 'override-cr-17'`,
    );
    expect(await fieldOf(7, SSID)).toMatchObject({ value: 'fleet', owners: ['base'] });
  });

  it('deletes with history kept; reconcile runs are listed; the OpenAPI document has the routes', async () => {
    expect((await call(ops, 'DELETE', '/profiles/north-ssid')).body).toEqual({
      id: 'north-ssid',
      version: 2,
    });
    expect((await call(viewer, 'GET', '/profiles/north-ssid')).status).toBe(404);
    expect((await call(viewer, 'GET', '/profiles/north-ssid/history')).body.map((v) => v.action)).toEqual([
      'created',
      'deleted',
    ]);
    expect(await fieldOf(0, SSID)).toMatchObject({ status: 'owned', owners: ['base'] });
    expect((await call(viewer, 'GET', '/profiles/reconcile')).body).toEqual([]);
    const doc = (await server.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, unknown>;
    };
    for (const p of [
      '/profiles',
      '/profiles/{id}',
      '/profiles/conflicts',
      '/devices/{deviceId}/effective-config',
      '/profiles/overrides',
      '/profiles/reconcile',
    ])
      expect(Object.keys(doc.paths)).toContain(p);
  });
});
