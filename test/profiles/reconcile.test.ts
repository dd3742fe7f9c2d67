import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProfileActivities } from '../../activities/profiles.js';
import { listAudit } from '../../db/audit.js';
import { decisions, putProfile, setPrecedenceRules } from '../../db/profiles.js';
import { ProfileSpec } from '../../domain/profiles/profile.js';
import { createLogger } from '../../platform/logger.js';
import { modelByKey } from '../../sim/models.js';
import { decideUpdate } from '../../workflows/approval.js';
import { profileReconcile } from '../../workflows/profileReconcile.js';
import { proposeSignal, resolutionStateQuery } from '../../workflows/profileResolution.js';
import { alice, asProposer, bob } from '../approval/principals.js';
import { type CwmpHarness, inAMinute, startCwmpHarness } from '../executor/harness.js';
import { startTestWorker } from '../support/temporal.js';

/**
 * profileReconcile end to end: real PostgreSQL, the real Temporal dev server, the CWMP executor and
 * ACS, and simulated CPEs speaking CWMP. Devices are reset and upgraded through the executor itself.
 */

const replayDir = path.join(import.meta.dirname, '..', 'replay');
const SSID = 'Device.WiFi.SSID.1.SSID';
const INTERVAL = 'Device.ManagementServer.PeriodicInformInterval';
// Exists only on HGW-500 firmware 3.0.0 (sim/models.ts).
const TELEMETRY = 'Device.DeviceInfo.X_ACME_Telemetry';
const system = { id: 'test', kind: 'system' as const };

describe('profileReconcile with the CWMP executor and simulated CPEs', () => {
  let h: CwmpHarness;
  let env: Awaited<ReturnType<typeof startTestWorker>>;
  const dev = (i: number) => h.fleet.devices[i]!;
  const id = (i: number) => dev(i).agent.device.id;
  const value = (i: number, p: string) => dev(i).agent.device.value(p);
  let runs = 0;

  async function reconcile(extra: { record?: string } = {}) {
    const handle = await env.client.workflow.start(profileReconcile, {
      taskQueue: env.taskQueue,
      workflowId: `reconcile-${Date.now()}-${runs++}`,
      args: [{ trigger: 'manual', pollMs: 200, deadlineMs: 60_000 }],
    });
    const r = await handle.result();
    if (extra.record && process.env.UPDATE_REPLAY_HISTORIES === '1')
      writeFileSync(path.join(replayDir, extra.record), `${historyToJSON(await handle.fetchHistory())}\n`);
    return r;
  }

  async function profile(spec: Record<string, unknown>, mode: 'create' | 'update' = 'create') {
    return putProfile(h.db.db, ProfileSpec.parse({ owner: 'netops', ...spec }), system, { mode });
  }

  /** One operation through the executor, waited for until done. */
  async function operate(
    i: number,
    step: string,
    operation: Parameters<typeof h.executor.submit>[0]['operation'],
  ) {
    const ref = { scope: 'test-ops', step };
    const out = await h.executor.submit({
      ref,
      devices: [id(i)],
      operation,
      deadline: inAMinute(),
      owner: 'test-ops',
    });
    expect(out[0]?.outcome, JSON.stringify(out)).toBe('queued');
    await h.waitFor(ref, (s) => s[0]?.state === 'done', 20_000);
    await h.executor.releaseLeases('test-ops');
  }

  /** Waits until the device has informed with `event` after `since` (its reboot session is stored). */
  async function waitForEvent(i: number, kind: string, since: Date) {
    const end = Date.now() + 20_000;
    for (;;) {
      const r = await h.db.pool.query(
        `select 1 from device_events where device_id = $1 and kind = $2 and at > $3`,
        [id(i), kind, since],
      );
      if (r.rowCount) return;
      if (Date.now() > end) throw new Error(`no ${kind} event from ${id(i)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  beforeAll(async () => {
    h = await startCwmpHarness({
      fleet: { count: 3, models: ['hgw500'], periodicIntervalS: 3600, seed: 11 },
    });
    // First contact: inventory, discovery of firmware 2.1.0, last known values.
    for (let i = 0; i < 3; i++) expect((await h.fleet.runSession(dev(i)))?.outcome).toBe('ok');
    env = await startTestWorker({
      db: h.db.db,
      profileExecutors: { cwmp: h.executor },
      profileGate: h.gate,
    });
    await profile({
      name: 'base',
      selector: { all: true },
      parameters: [
        { path: SSID, value: 'fleet-2g' },
        // Equal to the default of firmware 2.1.0: no write needed until a firmware changes the default.
        { path: INTERVAL, value: 3600 },
      ],
    });
    await profile({
      name: 'telemetry',
      selector: { all: true },
      parameters: [{ path: TELEMETRY, value: 'on' }],
    });
  }, 120_000);

  afterAll(async () => {
    await env?.stop();
    await h?.stop();
  });

  it('converges drifted devices in batches and is idempotent', async () => {
    // A run reads BOOTSTRAP events older than its settle margin (2 s); on a fast machine the first run
    // would otherwise start before the first-contact events are old enough and leave them to the next.
    const last = await h.db.pool.query<{ ms: number }>(
      `select extract(epoch from now() - max(at)) * 1000 as ms from device_events where kind = 'bootstrap'`,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, 2_200 - Number(last.rows[0]?.ms ?? 0))));
    const r = await reconcile({ record: 'profile-reconcile-converge.json' });
    expect(r.phase).toBe('done');
    // All three sent BOOTSTRAP at first contact: provisioned in full, once each.
    expect(r.submitted).toMatchObject({ devices: 3, bootstrapped: 3, sent: 3, rejected: 0, unresolved: 0 });
    // The telemetry value is invalid on 2.1.0: never claimed, never sent.
    expect(r.submitted?.invalid).toBe(3);
    expect(r.progress).toMatchObject({ total: 3, done: 3, open: 0 });
    for (let i = 0; i < 3; i++) {
      expect(value(i, SSID)).toBe('fleet-2g');
      expect(value(i, TELEMETRY)).toBeUndefined();
    }
    // Nothing drifted any more: the next run sends nothing.
    const again = await reconcile();
    expect(again.submitted).toMatchObject({ drifted: 0, bootstrapped: 0, sent: 0 });
    // A retried submission of the same run (same scope/step/device/operation) queues nothing new.
    const acts = createProfileActivities({
      logger: createLogger({ name: 'test', level: 'warn' }),
      db: h.db.db,
      profileExecutors: { cwmp: h.executor },
      profileGate: h.gate,
    });
    await h.db.pool.query(`update device_parameters set value = 'drifted' where path = $1`, [SSID]);
    const a = await acts.reconcileProfiles({ runId: 'retried-run', trigger: 'manual', deadlineMs: 1_000 });
    const b = await acts.reconcileProfiles({ runId: 'retried-run', trigger: 'manual', deadlineMs: 1_000 });
    await h.executor.cancel({ scope: 'profile-reconcile/retried-run', step: a.steps[0]!.step });
    await acts.finishReconcile({ runId: 'retried-run', status: 'completed', counts: {} });
    expect(a).toMatchObject({ drifted: 3, sent: 3, existing: 0 });
    // Devices whose task already ran in between are no longer drifted; the others are `existing`.
    expect(b.sent).toBe(0);
    expect(b.existing).toBe(b.drifted);
    expect(b.steps).toEqual(a.steps);
    await h.db.pool.query(`update device_parameters set value = 'fleet-2g' where path = $1`, [SSID]);
  }, 120_000);

  it('provisions a factory-reset device again (BOOTSTRAP)', async () => {
    const since = new Date();
    await operate(0, 'reset', { kind: 'factoryReset' });
    await waitForEvent(0, 'bootstrap', since);
    expect(value(0, SSID)).toBe('home-2g');
    await new Promise((r) => setTimeout(r, 2_500)); // past the event-settle margin of the cursor
    const run = reconcile();
    // After a reset the device reports no connection-request URL: it takes its task at its next inform.
    await new Promise((r) => setTimeout(r, 1_500));
    await h.fleet.runSession(dev(0));
    const r = await run;
    expect(r.submitted).toMatchObject({ bootstrapped: 1, drifted: 0, sent: 1 });
    expect(r.progress).toMatchObject({ done: 1 });
    expect(value(0, SSID)).toBe('fleet-2g');
  }, 120_000);

  it('converges drift after a firmware upgrade changed a default; the value invalid on 2.1.0 applies on 3.0.0', async () => {
    const img = h.fleet.imageInfo(modelByKey('hgw500'), '3.0.0');
    const since = new Date();
    await operate(1, 'upgrade', { kind: 'download', url: img.url, version: '3.0.0', fileSize: img.size });
    await waitForEvent(1, 'boot', since);
    // The upgrade's session reported the new default (1800) for a value the base profile owns.
    const end = Date.now() + 20_000;
    while (h.gate.match({ oui: '00A0C9', productClass: 'HGW-500', softwareVersion: '3.0.0' }) !== 'exact') {
      if (Date.now() > end) throw new Error('3.0.0 never discovered');
      await h.fleet.runSession(dev(1));
    }
    expect(value(1, INTERVAL)).toBe('1800');
    const r = await reconcile();
    expect(r.submitted).toMatchObject({ drifted: 1, sent: 1, rejected: 0 });
    expect(r.submitted?.invalid).toBe(2); // telemetry still invalid on the two 2.1.0 devices
    expect(value(1, INTERVAL)).toBe('3600');
    expect(value(1, TELEMETRY)).toBe('on');
    expect(value(1, SSID)).toBe('fleet-2g');
  }, 120_000);

  it('escalates a conflict no rule resolves to a person, and applies the approved resolution', async () => {
    await setPrecedenceRules(h.db.db, ['priority'], system);
    await profile({
      name: 'ssid5-a',
      selector: { all: true },
      parameters: [{ path: 'Device.WiFi.SSID.2.SSID', value: 'ssid5-a' }],
    });
    await profile({
      name: 'ssid5-b',
      selector: { all: true },
      parameters: [{ path: 'Device.WiFi.SSID.2.SSID', value: 'ssid5-b' }],
    });
    const r = await reconcile({ record: 'profile-reconcile-escalate.json' });
    expect(r.submitted?.unresolved).toBe(3);
    expect(r.submitted?.escalations).toHaveLength(1);
    const wf = r.submitted!.escalations[0]!.workflowId;
    expect(r.escalated).toEqual([wf]);
    for (let i = 0; i < 3; i++) expect(value(i, 'Device.WiFi.SSID.2.SSID')).toBe('home-5g');
    const res = env.client.workflow.getHandle(wf);
    // A winner outside the fight is refused (and said so); the proposer cannot approve their own proposal.
    await res.signal(proposeSignal, { proposalId: 'p-1', winner: 'base', proposer: asProposer(alice) });
    await res.signal(proposeSignal, {
      proposalId: 'p-2',
      winner: 'ssid5-b',
      rationale: '5 GHz naming standard',
      proposer: asProposer(alice),
    });
    const st = await res.query(resolutionStateQuery);
    expect(st.refused).toEqual([
      { proposalId: 'p-1', reason: expect.stringContaining('not one of the contenders') },
    ]);
    expect(st.status).toBe('awaiting-approval');
    const planHash = st.planHash as string;
    await expect(
      res.executeUpdate(decideUpdate, {
        args: [{ approvalId: 'vote-alice-1', approver: alice, decision: 'approve', planHash }],
      }),
    ).rejects.toThrow();
    await res.executeUpdate(decideUpdate, {
      args: [{ approvalId: 'vote-bob-1', approver: bob, decision: 'approve', planHash }],
    });
    expect((await res.result()).status).toBe('decided');
    if (process.env.UPDATE_REPLAY_HISTORIES === '1')
      writeFileSync(
        path.join(replayDir, 'profile-resolution-decided.json'),
        `${historyToJSON(await res.fetchHistory())}\n`,
      );
    expect(await res.query(resolutionStateQuery)).toMatchObject({ status: 'decided', approvers: ['bob'] });
    expect(await decisions(h.db.db)).toEqual([
      expect.objectContaining({ path: 'Device.WiFi.SSID.2.SSID', winner: 'ssid5-b', decidedBy: 'bob' }),
    ]);
    const audit = await listAudit(h.db.db, { limit: 1000 });
    expect(audit.some((e) => e.action === 'profile.conflict_decided')).toBe(true);
    const after = await reconcile();
    expect(after.submitted).toMatchObject({ unresolved: 0, drifted: 3, sent: 3 });
    for (let i = 0; i < 3; i++) expect(value(i, 'Device.WiFi.SSID.2.SSID')).toBe('ssid5-b');
    // The run audits the resolution it applied, with what decided it.
    const settled = (
      await listAudit(h.db.db, { subjectKind: 'profile_reconcile', subjectId: after.submitted!.runId })
    ).find((e) => e.action === 'profile.conflicts_settled');
    expect(settled?.data).toMatchObject({
      resolutions: [
        expect.objectContaining({
          path: 'Device.WiFi.SSID.2.SSID',
          status: 'decided',
          owners: ['ssid5-b'],
          devices: 3,
        }),
      ],
    });
    await setPrecedenceRules(h.db.db, ['priority', 'specificity', 'newest'], system);
  }, 180_000);
});
