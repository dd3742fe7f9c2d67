/**
 * The console's live rollout page in Chromium over the real stack (test/support/console-stack.ts):
 * an operator watches a bad-image rollout halt and roll back, without reloading the page (server-sent
 * events). Screenshots go to test-results/console/ beside the other console tests'.
 */
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rolloutSpecSchema } from '../../domain/rollout/spec.js';
import { type ConsoleStack, SHOTS, type Who, startConsoleStack } from '../support/console-stack.js';
import { serialCohort, startRollout } from '../support/rollout-stack.js';

const MINUTE_MS = 1000;
let c: ConsoleStack;
let alice: Who;
let bob: Who;

beforeAll(async () => {
  c = await startConsoleStack({
    minuteMs: MINUTE_MS,
    // CON000xx–CON001xx are the cohort; the other HGW-500s are its concurrent control group (same
    // stratum, not upgraded): silence is evidence of a brick only when the controls keep talking.
    serialPrefix: 'CON',
    count: 400,
    periodicIntervalS: 30,
    // The bad image bricks half of the devices that install it.
    outcomes: { 'hgw500@3.0.0': { success: 0.5, brick: 0.5 } },
    images: [
      { model: 'hgw500', version: '2.1.0', from: [] },
      { model: 'hgw500', version: '3.0.0', from: ['2.1.0'] },
    ],
  });
  alice = await c.identity('alice', ['operator', 'approver']);
  bob = await c.identity('bob', ['operator', 'approver']);
}, 300_000);

afterAll(async () => {
  await c?.close();
}, 60_000);

afterEach(() => {
  expect(c.pageErrors.splice(0)).toEqual([]);
});

describe('operator console in Chromium: a rollout halts', () => {
  it('watch a rollout halt on a bad image and roll back, live', async () => {
    const id = `console-bad-${Date.now()}`;
    const spec = rolloutSpecSchema.parse({
      name: 'console bad image',
      image: '3.0.0',
      cohort: serialCohort('HGW-500', ['CON00000', 'CON00001']),
      waves: { kind: 'steps', steps: [{ percent: 40 }, { percent: 100 }] },
      rateCaps: { perMinute: 1200 },
      // The backstop (3 bricks) halts even when a loaded machine slows the statistics down.
      gate: { theta: 0.01, hardCeilingBricked: 3, decisionDeadlineMinutes: 100_000 },
      outcomeTimeoutMinutes: 50,
      soakMinutes: 0,
      minStratumSize: 20,
      approvals: { beforeStart: false },
      notifications: [],
    });
    await startRollout(c.stack, id, spec, alice.principal.id);
    const page = await c.signedIn(bob);
    await page.goto(`${c.base}/console/#/rollouts`);
    await page
      .locator(`a[href="#/rollouts/${id}"]`)
      .or(page.locator('input[name=rollout-id]'))
      .first()
      .waitFor();
    await page.goto(`${c.base}/console/#/rollouts/${id}`);
    await page.waitForSelector('#waves');
    expect(await page.textContent('#live')).toContain('live');
    await page.screenshot({ path: path.join(SHOTS, '06-rollout-running.png'), fullPage: true });
    // No reload: the page follows the server-sent events until the rollout ends (bounded, generous).
    await page
      .locator('#rollout-status', { hasText: 'aborted' })
      .waitFor({ timeout: 300_000 })
      .finally(() => page.screenshot({ path: path.join(SHOTS, '07-rollout-final.png'), fullPage: true }));
    await page.waitForSelector('#rollback');
    expect(await page.textContent('#gate')).toContain('Halted strata');
    expect(await page.textContent('#waves')).toContain('halted');
    // The page shows the devices sent to the field (the bricks), not an empty rollback.
    expect(await page.textContent('#rollback')).toMatch(/CON\d{7}/);
    await page.context().close();
  }, 420_000);
});
