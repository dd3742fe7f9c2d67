/**
 * The operator console in a real browser (Debian's Chromium, headless, through playwright-core)
 * against the real API listening on a port, over the real stack: PostgreSQL, the Temporal dev
 * server with a worker, the CWMP ACS and a small simulated CPE fleet. Sign in, approve a proposal as
 * a second user, ask a fleet question (an authored local model), watch a bad-image rollout halt and
 * roll back live, open a device whose reported strings are hostile, check the audit chain.
 * Screenshots of each page go to test-results/console/.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { upsertDevices } from '../../fleet/devices.js';
import { chromiumBin } from '../../platform/tools.js';
import { rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { approvalDemo } from '../../workflows/approvalDemo.js';
import { createTestIdentity } from '../support/auth.js';
import { startOidcProvider } from '../support/oidc-provider.js';
import { type AuthoredModel, startAuthoredModel } from '../support/authored-model.js';
import {
  type RolloutStack,
  serialCohort,
  startCwmpFleet,
  startRolloutStack,
  startRollout,
} from '../support/rollout-stack.js';

const MINUTE_MS = 1000;
const SHOTS = path.resolve('test-results/console');
const HOSTILE = '<img src=x onerror="window.__xss=1">';
const QUESTION = 'how many gateways per firmware version';

type Who = Awaited<ReturnType<typeof createTestIdentity>>;
let stack: RolloutStack;
let server: Awaited<ReturnType<typeof buildServer>>;
let model: AuthoredModel | undefined;
let browser: Browser;
let base: string;
let alice: Who; // operator + approver: proposes
let bob: Who; // approver + operator: the second pair of eyes
let root: Who; // admin: audit verification
const pageErrors: string[] = [];

/** The one AUTHORED model reply: it tests the console and route, not a model. */
const AUTHORED_REPLY = {
  kind: 'query',
  query: {
    where: { field: 'productClass', op: 'eq', value: 'HGW-500' },
    measure: 'count',
    groupBy: ['softwareVersion'],
  },
};

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  stack = await startRolloutStack({
    minuteMs: MINUTE_MS,
    makeFleet: (db) =>
      startCwmpFleet({
        databaseUrl: db.url,
        pool: db.pool,
        // CON000xx–CON001xx are the cohort; the other HGW-500s are its concurrent control group (same
        // stratum, not upgraded): silence is evidence of a brick only when the controls keep talking.
        groups: [{ serialPrefix: 'CON', count: 400, models: ['hgw500'], periodicIntervalS: 30 }],
        // The bad image bricks half of the devices that install it.
        outcomes: { 'hgw500@3.0.0': { success: 0.5, brick: 0.5 } },
        images: [
          { model: 'hgw500', version: '2.1.0', from: [] },
          { model: 'hgw500', version: '3.0.0', from: ['2.1.0'] },
          // A good image for the rollouts list and chart case.
          { model: 'hgw500', version: '2.2.0', from: ['2.1.0'] },
        ],
      }),
  });
  const m = await startAuthoredModel((q) => (q.includes(QUESTION) ? AUTHORED_REPLY : undefined));
  model = m;
  server = await buildServer({
    db: stack.db,
    temporal: { client: stack.client, namespace: 'default', taskQueue: stack.taskQueue },
    readiness: [],
    auth: {},
    llm: m.llm,
    // Only the read and control routes are used here; rollouts are started through Temporal below.
    rollouts: {
      prepare: () => Promise.reject(new Error('not used by this test')),
      decide: () => Promise.reject(new Error('not used by this test')),
      ssePollMs: 500,
    },
  });
  await server.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  alice = await createTestIdentity(stack.db.db, 'alice', ['operator', 'approver']);
  bob = await createTestIdentity(stack.db.db, 'bob', ['operator', 'approver']);
  root = await createTestIdentity(stack.db.db, 'root', ['admin']);
  // A device whose reported strings are markup: the console must show them as text.
  await upsertDevices(stack.db.db, [
    {
      id: 'HOSTILE-1',
      oui: '00D09E',
      serialNumber: 'HOSTILE1',
      protocol: 'cwmp',
      productClass: HOSTILE,
      modelName: HOSTILE,
      softwareVersion: '1.0',
      lastContactAt: new Date(),
      periodicInformIntervalS: 300,
    },
  ]);
  browser = await chromium.launch({
    executablePath: chromiumBin(),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await model?.close();
  await stack?.close();
}, 60_000);

/** A fresh browser context (its own sessionStorage) signed in through the sign-in page. */
async function signedIn(who: Who, shot?: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  // Script errors in the console (CSP violations included) fail the test after it (afterEach).
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${base}/console`);
  await page.waitForSelector('#signin-form');
  await page.fill('input[name=token]', who.token);
  if (shot) await page.screenshot({ path: path.join(SHOTS, shot) });
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#inbox');
  expect(await page.textContent('#who')).toContain(who.principal.name);
  return page;
}

afterEach(() => {
  expect(pageErrors.splice(0)).toEqual([]);
});

describe('operator console in Chromium', () => {
  it('refuses a wrong token and keeps a good one for the tab only', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${base}/console/`);
    await page.fill('input[name=token]', 'fbt_not-a-real-token');
    await page.click('#signin-form button[type=submit]');
    await page.waitForSelector('.error');
    expect(await page.textContent('.error')).toContain('unknown, revoked or expired');
    expect(await page.evaluate("sessionStorage.getItem('fleetbrain.token')")).toBeNull();
    await ctx.close();
    const ok = await signedIn(alice, '01-sign-in.png');
    expect(await ok.evaluate("sessionStorage.getItem('fleetbrain.token')")).toBe(alice.token);
    expect(await ok.evaluate('localStorage.length')).toBe(0);
    await ok.context().close();
  });

  it('signs in through the organisation’s OIDC provider (authorization code + PKCE)', async () => {
    // The callback URL names the API's port, so the port is chosen first.
    const port = await new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const redirectUrl = `http://127.0.0.1:${port}/auth/oidc/callback`;
    const provider = await startOidcProvider({ redirectUris: [redirectUrl] });
    const withOidc = await buildServer({
      db: stack.db,
      temporal: { client: stack.client, namespace: 'default', taskQueue: stack.taskQueue },
      readiness: [],
      auth: {
        oidc: {
          issuer: provider.issuer,
          clientId: provider.clientId,
          clientSecret: provider.clientSecret,
          redirectUrl,
        },
      },
    });
    await withOidc.listen({ port, host: '127.0.0.1' });
    try {
      await createTestIdentity(stack.db.db, 'olga', ['viewer'], { oidcSubject: 'olga@idp' });
      provider.loginAs = 'olga@idp';
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`http://127.0.0.1:${port}/console/`);
      await page.waitForSelector('#oidc-signin');
      await page.screenshot({ path: path.join(SHOTS, '01b-sign-in-oidc.png') });
      await page.click('#oidc-signin');
      await page.waitForSelector('#inbox');
      expect(await page.textContent('#who')).toContain('olga');
      // The token left the address bar and lives in this tab's sessionStorage only.
      expect(page.url()).not.toContain('signed-in');
      expect(await page.evaluate("sessionStorage.getItem('fleetbrain.token')")).toMatch(/^fbt_/);
      expect(await page.evaluate('localStorage.length')).toBe(0);
      await ctx.close();
    } finally {
      await withOidc.close();
      await provider.close();
    }
  }, 60_000);

  it('a second user approves a proposal; the proposer cannot', async () => {
    const workflowId = `console-demo-${randomUUID()}`;
    const handle = await stack.client.workflow.start(approvalDemo, {
      taskQueue: stack.taskQueue,
      workflowId,
      args: [
        {
          proposer: { id: alice.principal.id, name: alice.principal.name, kind: alice.principal.kind },
          plan: { spec: { firmware: '3.0.0' }, deviceIds: ['cpe-1', 'cpe-2'] },
          requiredApprovals: 1,
          windowMs: 120_000,
        },
      ],
    });
    // The inbox row is written by an activity.
    await expect
      .poll(
        async () =>
          (await server.inject({ url: `/approvals/${workflowId}/plan`, headers: bob.headers })).statusCode,
        {
          timeout: 30_000,
        },
      )
      .toBe(200);

    const proposer = await signedIn(alice);
    await proposer.goto(`${base}/console/#/approvals/${workflowId}/plan`);
    await proposer.waitForSelector('#four-eyes');
    expect(await proposer.locator('#approve').count()).toBe(0);
    expect(await proposer.textContent('main')).toContain('someone else must approve it');
    await proposer.context().close();

    const page = await signedIn(bob);
    const link = page.locator(`#inbox a[href="#/approvals/${workflowId}/plan"]`);
    await link.waitFor();
    await page.screenshot({ path: path.join(SHOTS, '02-approvals-inbox.png') });
    await link.click();
    await page.waitForSelector('#decide');
    // The four-eyes rules and the subject come before the decision.
    const order = await page.evaluate<string[]>(
      "[...document.querySelectorAll('main section')].map((s) => s.id).filter(Boolean)",
    );
    expect(order.indexOf('four-eyes')).toBeLessThan(order.indexOf('diff'));
    expect(order.indexOf('diff')).toBeLessThan(order.indexOf('decide'));
    await page.fill('textarea[name=comment]', 'looks right');
    await page.click('#approve');
    await page.waitForSelector('#decision-result .ok');
    expect(await page.textContent('#decision-result')).toContain('Status approved');
    await page.screenshot({ path: path.join(SHOTS, '03-approval-approved.png') });
    await handle.result();
    await page.context().close();
  }, 90_000);

  it('asks a fleet question and shows the DSL beside the rows', async () => {
    const page = await signedIn(bob);
    await page.goto(`${base}/console/#/fleet`);
    await page.fill('input[name=question]', QUESTION);
    await page.click('#ask-form button[type=submit]');
    await page.waitForSelector('#answer-rows');
    expect(await page.textContent('#dsl')).toContain('"softwareVersion"');
    expect(await page.textContent('#dsl')).toContain('Translated by the model');
    expect(await page.textContent('#answer-rows')).toContain('2.1.0');
    await page.screenshot({ path: path.join(SHOTS, '04-fleet-question.png'), fullPage: true });
    await page.context().close();
  }, 60_000);

  it('shows hostile device-reported strings as text, never as markup', async () => {
    const page = await signedIn(bob);
    await page.goto(`${base}/console/#/devices/HOSTILE-1`);
    await page.waitForSelector('#inventory');
    expect(await page.textContent('#inventory')).toContain(HOSTILE);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    await page.screenshot({ path: path.join(SHOTS, '05-device.png'), fullPage: true });
    await page.context().close();
  });

  // The live bad-image halt page returns with the rollout fix (test in commit 1b8abab): on the real
  // stack the bricked CPEs are classified "unknown" and the rollout completes.

  it('lists rollouts with their live state and charts a rollout’s brick rate against θ and its control group', async () => {
    const id = `console-good-${Date.now()}`;
    const spec = rolloutSpecSchema.parse({
      name: 'console good image',
      image: '2.2.0',
      // Serial numbers are CON + 7 digits: CON0000000–CON0000039, 40 of the 400.
      cohort: serialCohort('HGW-500', ['CON000000', 'CON000001', 'CON000002', 'CON000003']),
      waves: { kind: 'steps', steps: [{ percent: 50 }, { percent: 100 }] },
      rateCaps: { perMinute: 1200 },
      gate: { theta: 0.02, hardCeilingBricked: 30, decisionDeadlineMinutes: 100_000 },
      // 40 spec minutes (40 s here): longer than the controls' 30-s inform interval.
      outcomeTimeoutMinutes: 40,
      // The control group is the cohort's not-yet-dispatched half, so it exists only while the first
      // wave runs: the soak keeps that wave open past a full outcome window (a good image's devices
      // would otherwise succeed within seconds and the last wave leaves no control to chart).
      soakMinutes: 75,
      minStratumSize: 20,
      approvals: { beforeStart: false },
      notifications: [],
    });
    const handle = await startRollout(stack, id, spec, alice.principal.id);
    try {
      const page = await signedIn(bob);
      await page.goto(`${base}/console/#/rollouts`);
      // Temporal's visibility is eventually consistent; the list page refreshes itself (no reload here).
      const row = page.locator('#rollouts tr', { has: page.locator(`a[href="#/rollouts/${id}"]`) });
      await row.waitFor({ timeout: 60_000 });
      expect(await page.textContent('#list-live')).toContain('live');
      await page.screenshot({ path: path.join(SHOTS, '06-rollouts-list.png'), fullPage: true });
      // Live state: pause through the API and watch the badge change on the open page.
      const paused = await server.inject({
        method: 'POST',
        url: `/rollouts/${id}/control`,
        headers: alice.headers,
        payload: { action: 'pause', requestId: `pause-${id}` },
      });
      expect(paused.statusCode, paused.body).toBe(200);
      await row.locator('[data-state=paused]').waitFor({ timeout: 30_000 });
      await page.selectOption('#state-filter', 'paused');
      await page.locator(`#rollouts a[href="#/rollouts/${id}"]`).waitFor();
      await page.selectOption('#state-filter', 'completed');
      await page.locator('#rollout-list', { hasText: 'No rollouts completed' }).waitFor();
      await page.goto(`${base}/console/#/rollouts`);
      await page.click(`#rollouts a[href="#/rollouts/${id}"]`);
      await page.waitForSelector('#waves');
      const resumed = await server.inject({
        method: 'POST',
        url: `/rollouts/${id}/control`,
        headers: alice.headers,
        payload: { action: 'resume', requestId: `resume-${id}` },
      });
      expect(resumed.statusCode, resumed.body).toBe(200);
      // Once a full outcome window has passed the gate has a control group to compare with.
      await page.locator('#brick-chart .control').first().waitFor({ state: 'attached', timeout: 150_000 });
      const chart = page.locator('#brick-chart');
      expect(await chart.getAttribute('role')).toBe('img');
      expect(await page.textContent('#brick-chart-title')).toContain('against θ');
      expect(await page.textContent('#brick-chart-desc')).toContain('θ 2.0 %');
      expect(await page.locator('#brick-chart .theta').count()).toBe(1);
      expect(await page.locator('#brick-chart .band').count()).toBeGreaterThan(0);
      expect(await page.textContent('#chart-legend')).toMatch(/control group.*θ/s);
      // The text alternative carries the same figures as the API.
      const api = (await server.inject({ url: `/rollouts/${id}`, headers: bob.headers })).json() as {
        lastGate: { perStratum: Array<{ stratum: string; controlObserved: number }> };
      };
      const withControl = api.lastGate.perStratum.find((s) => s.controlObserved > 0);
      expect(withControl).toBeDefined();
      const altRow = page.locator('#brick-table tr', { hasText: withControl?.stratum ?? '?' });
      expect(await altRow.textContent()).toMatch(/of \d+/);
      expect(await altRow.textContent()).toContain('2.0 %');
      await page.screenshot({ path: path.join(SHOTS, '07-rollout-chart.png'), fullPage: true });
      await page.context().close();
    } finally {
      await handle.terminate('console test over').catch(() => undefined);
    }
  }, 300_000);

  it('shows the audit log with its chain verification', async () => {
    const page = await signedIn(root);
    await page.goto(`${base}/console/#/audit`);
    await page.waitForSelector('#chain-status p');
    expect(await page.textContent('#chain-status')).toContain('Chain verified');
    await page.screenshot({ path: path.join(SHOTS, '08-audit.png'), fullPage: true });
    await page.context().close();
  });
});
