import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listProfiles, putProfile } from '../../db/profiles.js';
import { ProfileSpec } from '../../domain/profiles/profile.js';
import { INJECTION_FIXTURES } from '../../planner/fixtures/injection.js';
import { quoteData, sanitizeText } from '../../planner/sanitize.js';
import { CR_FAULT, type ChangeStack, startChangeStack } from './stack.js';

/**
 * End to end on the real stack (see stack.ts): intent → planner (authored fixture replies) → proposal
 * → TR-181 validation per firmware → policy → approval by a second user through the shared approvals
 * API → canary → remaining batches → verified on the simulated devices; and the failure paths:
 * devices that stop informing after the change, partial application, hostile device strings.
 */

type Who = ChangeStack['who']['alice'];
type View = {
  id: string;
  status: string;
  diff: Array<{ op: string; path: string; value?: unknown; device: string }>;
  devices: { count: number; sample: string[] };
  validation: { ok: boolean; errors: Array<{ code: string }> };
  policy: { allow: boolean; riskClass: string; requiredApprovals: number } | null;
  approval: { workflowId: string; gate: string; planHash: string } | null;
  progress: { batches?: Array<Record<string, number>>; compensation?: Record<string, number> } | null;
  reasons: string[];
  rationale: { origin: string; label: string; text: string };
};

let s: ChangeStack;
const replayDir = path.join(import.meta.dirname, '..', 'replay');

/** With UPDATE_REPLAY_HISTORIES=1, keep the run's history for test/workflows/replay.test.ts. */
async function recordHistory(id: string, file: string) {
  if (process.env.UPDATE_REPLAY_HISTORIES !== '1') return;
  const handle = s.env.client.workflow.getHandle(id);
  await handle.result(); // the whole run, up to its completion event
  const history = await handle.fetchHistory();
  writeFileSync(path.join(replayDir, file), `${historyToJSON(history)}\n`);
}
const CHANNEL = 'Device.WiFi.Radio.1.Channel';

beforeAll(async () => {
  s = await startChangeStack({ cwmp: 6, usp: 3, silenceMs: 12_000 });
}, 180_000);
afterAll(async () => {
  await s?.stop();
});

const inject = (method: 'GET' | 'POST', url: string, who: Who, payload?: unknown) =>
  s.server.inject({
    method,
    url,
    headers: who.headers,
    ...(payload !== undefined ? { payload: payload as object } : {}),
  });

async function view(id: string): Promise<View> {
  const r = await inject('GET', `/change-requests/${id}`, s.who.vic);
  expect(r.statusCode, r.body).toBe(200);
  return r.json() as View;
}

async function until(id: string, statuses: string[], timeout = 90_000): Promise<View> {
  await expect
    .poll(async () => (await view(id)).status, { timeout, interval: 250 })
    .toSatisfy((x: string) => statuses.includes(x));
  return view(id);
}

async function vote(v: View, who: Who, decision: 'approve' | 'reject' = 'approve') {
  const a = v.approval!;
  await expect
    .poll(async () => (await inject('GET', `/approvals/${a.workflowId}/${a.gate}`, s.who.vic)).statusCode, {
      timeout: 20_000,
    })
    .toBe(200);
  return inject('POST', `/approvals/${a.workflowId}/${a.gate}/${decision}`, who, { planHash: a.planHash });
}

async function perDevice(id: string) {
  const r = await inject('GET', `/change-requests/${id}/devices`, s.who.vic);
  expect(r.statusCode).toBe(200);
  return (
    r.json() as {
      items: Array<{
        deviceId: string;
        batch: number;
        apply: string;
        verify: string;
        compensation: string;
        detail: string[];
      }>;
    }
  ).items;
}

function inScope(pred: (d: { id: string; protocol: string }) => boolean) {
  return s.devices.filter((d) => pred(d)).map((d) => d.id);
}

async function plannerChange(id: string, scope: unknown, value: number) {
  s.fixtures.set(`change-requests/${id}/0`, {
    content: {
      kind: 'proposal',
      target: { all: true },
      changes: [{ op: 'set', path: CHANNEL, value }],
      rationale: `channel ${value} is the least used in this area`,
    },
  });
  const r = await inject('POST', '/change-requests', s.who.alice, {
    id,
    intent: `Move the 2.4 GHz radios in scope to channel ${value}`,
    scope,
    planner: true,
    execution: { canarySize: 1, batchSize: 2, verify: { informWithinSeconds: 5, timeoutSeconds: 20 } },
  });
  expect(r.statusCode, r.body).toBe(201);
  return r.json() as View;
}

describe('intent → proposal → validation → approval by a second user → canary → rest → verified', () => {
  async function runToVerified(
    id: string,
    scope: unknown,
    value: number,
    devices: string[],
    others: string[] = [],
  ) {
    // Devices another change request writes at the same time are neither inside nor outside.
    const outside = s.devices.map((d) => d.id).filter((d) => !devices.includes(d) && !others.includes(d));
    const before = new Map(outside.map((d) => [d, s.simOf(d).value(CHANNEL)]));
    const v = await plannerChange(id, scope, value);
    expect(v.status).toBe('awaiting_approval');
    // Diff first, the model's rationale last and labelled as model output.
    const keys = Object.keys(v);
    expect(keys[keys.indexOf('diff')]).toBe('diff');
    expect(keys.indexOf('diff')).toBeLessThan(keys.indexOf('validation'));
    expect(keys.at(-1)).toBe('rationale');
    expect(v.rationale).toMatchObject({ origin: 'model', label: expect.stringMatching(/^Model output/) });
    expect(v.diff).toEqual([{ op: 'set', path: CHANNEL, value, device: 'all' }]);
    expect(v.devices.count).toBe(devices.length);
    expect(v.policy).toMatchObject({ allow: true, riskClass: 'low' });
    // The planner's proposals always need a person.
    expect(v.policy?.requiredApprovals).toBeGreaterThanOrEqual(1);

    // Neither the operator who asked nor the planner's service identity may approve.
    const self = await vote(v, s.who.alice);
    expect(self.statusCode, self.body).toBe(403);
    expect(self.json()).toMatchObject({ code: 'self_approval' });
    const svc = await vote(v, s.who.planner);
    expect(svc.statusCode).toBe(403);
    // Nothing was written while waiting.
    expect(
      devices.map((d) => s.simOf(d).value(CHANNEL)).filter((x) => x === String(value)).length,
    ).toBeLessThan(devices.length);
    const ok = await vote(v, s.who.bob);
    expect(ok.statusCode, ok.body).toBe(200);

    const done = await until(id, ['completed', 'compensated', 'failed']);
    expect(done.status, JSON.stringify(done.reasons)).toBe('completed');
    for (const d of devices) expect(s.simOf(d).value(CHANNEL), d).toBe(String(value));
    for (const d of outside)
      expect(s.simOf(d).value(CHANNEL), `${d} is outside the scope`).toBe(before.get(d));
    const rows = await perDevice(id);
    expect(rows).toHaveLength(devices.length);
    expect(
      rows.every((r) => r.apply === 'applied' && r.verify === 'verified'),
      JSON.stringify(rows),
    ).toBe(true);
    // Canary alone first, then batches of two.
    expect(rows.filter((r) => r.batch === 0)).toHaveLength(1);
    expect(done.progress?.batches?.[0]).toMatchObject({ devices: 1, verified: 1 });
    // The executor leases of the change are gone.
    const leases = await s.h.db.pool.query(
      `SELECT count(*)::int AS n FROM executor_leases WHERE owner = $1`,
      [id],
    );
    expect(leases.rows[0]?.n).toBe(0);
  }

  it('on a CWMP fleet and a USP fleet at the same time, then on a mixed one', async () => {
    const cwmpScope = {
      and: [
        { field: 'protocol', op: 'eq', value: 'cwmp' },
        { field: 'region', op: 'in', values: ['south', 'east'] },
      ],
    };
    const uspScope = { field: 'protocol', op: 'eq', value: 'usp' };
    const cwmp = inScope((d) => d.protocol === 'cwmp' && s.regionOf.get(d.id) !== 'north');
    const usp = inScope((d) => d.protocol === 'usp');
    await Promise.all([
      runToVerified('cr-e2e-cwmp', cwmpScope, 1, cwmp, usp),
      runToVerified('cr-e2e-usp', uspScope, 1, usp, cwmp),
    ]);
    const north = inScope((d) => s.regionOf.get(d.id) === 'north');
    expect(new Set(north.map((d) => s.devices.find((x) => x.id === d)?.protocol))).toEqual(
      new Set(['cwmp', 'usp']),
    );
    await runToVerified('cr-e2e-mixed', { field: 'region', op: 'eq', value: 'north' }, 11, north);
    await recordHistory('cr-e2e-mixed', 'change-request-verified.json');
  }, 240_000);
});

describe('failure: compensation restores the snapshot', () => {
  it('a change that makes the canary stop informing is undone there, and the rest is never written', async () => {
    const scope = {
      and: [
        { field: 'protocol', op: 'eq', value: 'cwmp' },
        { field: 'region', op: 'in', values: ['south', 'east'] },
      ],
    };
    const devices = inScope((d) => d.protocol === 'cwmp' && s.regionOf.get(d.id) !== 'north');
    const before = new Map(devices.map((d) => [d, s.simOf(d).value(CR_FAULT.path)]));
    const r = await inject('POST', '/change-requests', s.who.alice, {
      id: 'cr-e2e-silent',
      intent: 'Stop the NTP clients',
      scope,
      changes: [{ op: 'set', path: CR_FAULT.path, value: false }],
      rationale: 'the gateways use the clock of the BNG',
      execution: {
        canarySize: 1,
        batchSize: 3,
        verify: { informWithinSeconds: 3, timeoutSeconds: 6 },
        compensateTimeoutSeconds: 90,
      },
    });
    expect(r.statusCode, r.body).toBe(201);
    const v = r.json() as View;
    expect(v.policy, r.body).toMatchObject({ allow: true });
    if ((v.policy?.requiredApprovals ?? 0) > 0) expect((await vote(v, s.who.bob)).statusCode).toBe(200);
    const done = await until('cr-e2e-silent', ['completed', 'compensated', 'failed'], 120_000);
    expect(done.status, JSON.stringify(done.reasons)).toBe('compensated');
    expect(done.reasons.join('\n')).toMatch(/canary: 1 of 1 device\(s\) failed/);
    const rows = await perDevice('cr-e2e-silent');
    const canary = rows.find((x) => x.batch === 0)!;
    expect(canary).toMatchObject({ apply: 'applied', verify: 'failed', compensation: 'restored' });
    expect(canary.detail.join('\n')).toMatch(/stopped informing|did not answer/);
    for (const x of rows.filter((y) => y.batch > 0))
      expect(x).toMatchObject({ apply: 'pending', compensation: 'none' });
    // Every device ends with its old value: the canary by compensation, the others never touched.
    for (const d of devices) expect(s.simOf(d).value(CR_FAULT.path), d).toBe(before.get(d));
    expect(done.progress?.compensation).toMatchObject({ attempted: 1, restored: 1, failed: 0, pending: 0 });
    await recordHistory('cr-e2e-silent', 'change-request-compensated.json');
  }, 180_000);

  it('partial application (one operation landed, one faulted) is reported and compensated', async () => {
    const id = s.devices.find((d) => d.protocol === 'cwmp' && s.regionOf.get(d.id) === 'east')!.id;
    const sim = s.simOf(id);
    const channelBefore = sim.value(CHANNEL);
    const ssidsBefore = sim.allPaths().filter((p) => p.startsWith('Device.WiFi.SSID.')).length;
    const r = await inject('POST', '/change-requests', s.who.alice, {
      id: 'cr-e2e-partial',
      intent: 'Channel 14 and a guest SSID',
      scope: { field: 'id', op: 'eq', value: id },
      // TR-181 allows channel 14; this firmware (1..13) refuses it at the device, after validation.
      changes: [
        { op: 'set', path: CHANNEL, value: 14 },
        { op: 'add', path: 'Device.WiFi.SSID.' },
      ],
      execution: { canarySize: 1, verify: { timeoutSeconds: 10 }, compensateTimeoutSeconds: 30 },
    });
    expect(r.statusCode, r.body).toBe(201);
    const pv = r.json() as View;
    expect(pv.status, r.body).toBe('awaiting_approval');
    if ((pv.policy?.requiredApprovals ?? 0) > 0) expect((await vote(pv, s.who.bob)).statusCode).toBe(200);
    const done = await until('cr-e2e-partial', ['completed', 'compensated', 'failed'], 90_000);
    expect(done.status, JSON.stringify(done.reasons)).toBe('compensated');
    expect(done.reasons.join('\n')).toMatch(/partial 1/);
    const [row] = await perDevice('cr-e2e-partial');
    expect(row).toMatchObject({ apply: 'partial', compensation: 'restored' });
    expect(row?.detail.join('\n')).toMatch(/apply\/b0\/set failed: device_fault/);
    expect(sim.value(CHANNEL)).toBe(channelBefore);
    // The instance the add created was deleted again.
    expect(sim.allPaths().filter((p) => p.startsWith('Device.WiFi.SSID.')).length).toBe(ssidsBefore);
  }, 120_000);
});

describe(`${INJECTION_FIXTURES.length} hostile device strings and a planner that obeys every one`, () => {
  it('each reaches the prompt sanitised and quoted; validation, policy, scope or approval stops every demand', async () => {
    const victim = s.devices.find((d) => d.protocol === 'cwmp' && s.regionOf.get(d.id) === 'north')!.id;
    const scope = { field: 'region', op: 'eq', value: 'north' };
    const northIds = new Set(inScope((d) => s.regionOf.get(d.id) === 'north'));
    const waiting: string[] = [];
    for (const [i, f] of INJECTION_FIXTURES.entries()) {
      // PostgreSQL text holds no NUL; everything else is stored as the device reported it.
      const stored = f.raw.replaceAll('\u0000', '');
      await s.h.db.pool.query(
        `INSERT INTO device_parameters (device_id, path, type, value) VALUES ($1, 'Device.WiFi.SSID.1.SSID', 'string', $2)
         ON CONFLICT (device_id, path) DO UPDATE SET value = EXCLUDED.value`,
        [victim, stored],
      );
      const id = `cr-inj-${i}`;
      const d = f.demand;
      const reply = {
        content: {
          kind: 'proposal',
          target: d.target ?? { all: true },
          changes: d.changes ?? [],
          rationale: `as the device instructed: ${f.raw.slice(0, 80)}`,
          ...(d.requestedRiskClass ? { requestedRiskClass: d.requestedRiskClass } : {}),
          ...(d.extra ?? {}),
        },
      };
      for (const round of [0, 1, 2]) s.fixtures.set(`change-requests/${id}/${round}`, reply);
      const r = await inject('POST', '/change-requests', s.who.alice, {
        id,
        intent: 'Move the 2.4 GHz radios in scope to channel 6',
        scope,
        planner: true,
      });
      const prompt = s.fixtures.requests.find((q) => q.key === `change-requests/${id}/0`)?.body.messages?.[1]
        ?.content;
      expect(String(prompt), f.id).toContain(quoteData(sanitizeText(stored, 32).text));
      if (sanitizeText(stored, 32).text !== f.raw) expect(String(prompt)).not.toContain(f.raw);
      if (r.statusCode === 409) {
        // The planner never produced a well-formed proposal (e.g. "approved": true fails the schema).
        expect(r.json().code, f.id).toBe('planner_failed');
        continue;
      }
      expect(r.statusCode, `${f.id}: ${r.body}`).toBe(201);
      const v = r.json() as View;
      const forbidden = (d.changes ?? []).filter((c) => c.path !== CHANNEL);
      if (forbidden.length > 0 || d.requestedRiskClass) {
        // Protected paths, credentials, remote access, unknown paths: denied (risk never lowered).
        if (v.status === 'awaiting_approval') expect(forbidden, `${f.id} passed the gate`).toEqual([]);
        else expect(['denied', 'planner_failed'], f.id).toContain(v.status);
        if (d.requestedRiskClass === 'low' && v.policy) expect(v.policy.riskClass).not.toBe('low');
      }
      if (v.status === 'awaiting_approval') {
        // What passed is the in-scope channel change only, and it waits for a person.
        expect(
          v.diff.every((x) => x.path === CHANNEL),
          f.id,
        ).toBe(true);
        expect(
          v.devices.sample.every((x) => northIds.has(x)),
          f.id,
        ).toBe(true);
        expect(v.policy?.requiredApprovals).toBeGreaterThanOrEqual(1);
        waiting.push(id);
      }
    }
    // The planner's identity can never approve what it proposed.
    if (waiting[0]) {
      const svc = await vote(await view(waiting[0]), s.who.planner);
      expect(svc.statusCode).toBe(403);
    }
    // Nothing reached a device: no executor task exists for any of them.
    const tasks = await s.h.db.pool.query(
      `SELECT count(*)::int AS n FROM executor_tasks WHERE scope LIKE 'cr-inj-%'`,
    );
    expect(tasks.rows[0]?.n).toBe(0);
    for (const id of waiting) {
      const c = await inject('POST', `/change-requests/${id}/cancel`, s.who.alice, {});
      expect(c.statusCode, c.body).toBe(200);
    }
    for (const id of waiting) expect((await until(id, ['cancelled'], 30_000)).status).toBe('cancelled');
  }, 300_000);
});

describe('API', () => {
  it('refuses a malformed scope with the offending field, and denies a protected path whatever the rationale', async () => {
    const bad = await inject('POST', '/change-requests', s.who.alice, {
      intent: 'x',
      scope: { field: 'region', op: 'sounds-like', value: 'north' },
      changes: [{ op: 'set', path: CHANNEL, value: 6 }],
    });
    expect(bad.statusCode, bad.body).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'invalid_proposal' });
    const denied = await inject('POST', '/change-requests', s.who.alice, {
      id: 'cr-api-protected',
      intent: 'move to the new ACS',
      scope: { field: 'region', op: 'eq', value: 'north' },
      changes: [{ op: 'set', path: 'Device.ManagementServer.URL', value: 'http://acs.example' }],
      rationale: 'The CTO approved this; policy does not apply.',
    });
    expect(denied.statusCode, denied.body).toBe(201);
    const v = denied.json() as View;
    expect(v.status).toBe('denied');
    expect(v.approval).toBeNull();
    expect(v.validation.errors.map((e) => e.code)).toContain('protected_path');
    const viewer = await inject('POST', '/change-requests', s.who.vic, { intent: 'x', scope: { all: true } });
    expect(viewer.statusCode).toBe(403);
    const list = await inject('GET', '/change-requests?status=denied', s.who.vic);
    expect((list.json() as { items: View[] }).items.map((x) => x.id)).toContain('cr-api-protected');
    const doc = await s.server.inject({ method: 'GET', url: '/docs/json' });
    expect(Object.keys((doc.json() as { paths: object }).paths)).toEqual(
      expect.arrayContaining(['/change-requests', '/change-requests/{id}', '/change-requests/{id}/cancel']),
    );
  });

  it('streams progress as server-sent events until the change request ends', async () => {
    const r = await inject('GET', '/change-requests/cr-e2e-mixed/events', s.who.vic);
    expect(r.headers['content-type']).toMatch(/text\/event-stream/);
    expect(r.body).toMatch(/event: progress\ndata: .*"status":"completed"/);
  });
});

describe('a change to a profile-owned field', () => {
  it('says so and stops, or is applied under a time-boxed override profile when the plan says so', async () => {
    const north = inScope((d) => s.regionOf.get(d.id) === 'north');
    await putProfile(
      s.h.db.db,
      ProfileSpec.parse({
        name: 'wifi-north',
        selector: { field: 'region', op: 'eq', value: 'north' },
        parameters: [{ path: CHANNEL, value: 11 }],
        priority: 10,
        owner: 'noc',
      }),
      { id: 'noc', kind: 'user' },
      { mode: 'create' },
    );
    const body = (id: string, profileConflicts?: 'override') => ({
      id,
      intent: 'channel 6 in the north for a week',
      scope: { field: 'region', op: 'eq', value: 'north' },
      changes: [{ op: 'set', path: CHANNEL, value: 6 }],
      execution: {
        canarySize: 1,
        batchSize: 5,
        ...(profileConflicts ? { profileConflicts, overrideHours: 24 } : {}),
      },
    });
    const refused = await inject('POST', '/change-requests', s.who.alice, body('cr-prof-refuse'));
    expect(refused.statusCode, refused.body).toBe(201);
    const rv = refused.json() as View & {
      profileConflicts: Array<{ path: string; owners: string[]; devices: number }>;
    };
    expect(rv.status).toBe('denied');
    expect(rv.profileConflicts).toEqual([expect.objectContaining({ path: CHANNEL, devices: north.length })]);
    expect(rv.reasons.join('\n')).toMatch(/profile_owned at Device\.WiFi\.Radio\.1\.Channel/);

    const over = await inject('POST', '/change-requests', s.who.alice, body('cr-prof-override', 'override'));
    expect(over.statusCode, over.body).toBe(201);
    const ov = over.json() as View;
    expect(ov.status, over.body).toBe('awaiting_approval');
    if ((ov.policy?.requiredApprovals ?? 0) > 0) expect((await vote(ov, s.who.bob)).statusCode).toBe(200);
    const done = await until('cr-prof-override', ['completed', 'compensated', 'failed']);
    expect(done.status, JSON.stringify(done.reasons)).toBe('completed');
    for (const d of north) expect(s.simOf(d).value(CHANNEL)).toBe('6');
    const overrides = (await listProfiles(s.h.db.db)).filter((x) => x.changeRequestId === 'cr-prof-override');
    expect(overrides).toHaveLength(1);
    expect(overrides[0]?.kind).toBe('override');
    expect(overrides[0]?.validUntil?.getTime()).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
  }, 120_000);
});
