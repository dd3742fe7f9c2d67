/**
 * The operator console over the real stack, for browser tests: PostgreSQL, Temporal with a worker,
 * the CWMP ACS and a simulated HGW-500 fleet (test/support/rollout-stack.ts), the API listening on a
 * loopback port with the rollout read/control routes, and headless Chromium (playwright-core).
 * `signedIn` opens a fresh browser context signed in through the sign-in page; script errors on any
 * page are collected in `pageErrors` (a test fails on them).
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { buildServer } from '../../api/server.js';
import type { OutcomeTable } from '../../sim/device.js';
import { chromiumBin } from '../../platform/tools.js';
import { createTestIdentity } from './auth.js';
import type { Role } from '../../domain/approval/identity.js';
import { type RolloutStack, startCwmpFleet, startRolloutStack } from './rollout-stack.js';

export const SHOTS = path.resolve('test-results/console');

export type Who = Awaited<ReturnType<typeof createTestIdentity>>;

export interface ConsoleStack {
  stack: RolloutStack;
  server: Awaited<ReturnType<typeof buildServer>>;
  base: string;
  browser: Browser;
  pageErrors: string[];
  identity(name: string, roles: Role[]): Promise<Who>;
  signedIn(who: Who, shot?: string): Promise<Page>;
  close(): Promise<void>;
}

export async function startConsoleStack(opts: {
  minuteMs: number;
  /** CPEs of model hgw500 (serials `serialPrefix` + 7 digits), informing every `periodicIntervalS`. */
  serialPrefix: string;
  count: number;
  periodicIntervalS: number;
  outcomes: OutcomeTable;
  images: Array<{ model: string; version: string; from: string[] }>;
}): Promise<ConsoleStack> {
  mkdirSync(SHOTS, { recursive: true });
  const stack = await startRolloutStack({
    minuteMs: opts.minuteMs,
    makeFleet: (db) =>
      startCwmpFleet({
        databaseUrl: db.url,
        pool: db.pool,
        groups: [
          {
            serialPrefix: opts.serialPrefix,
            count: opts.count,
            models: ['hgw500'],
            periodicIntervalS: opts.periodicIntervalS,
          },
        ],
        outcomes: opts.outcomes,
        images: opts.images,
      }),
  });
  const server = await buildServer({
    db: stack.db,
    temporal: { client: stack.client, namespace: 'default', taskQueue: stack.taskQueue },
    readiness: [],
    auth: {},
    // Only the read and control routes are used; rollouts are started through Temporal.
    rollouts: {
      prepare: () => Promise.reject(new Error('not used by the console tests')),
      decide: () => Promise.reject(new Error('not used by the console tests')),
      ssePollMs: 500,
    },
  });
  await server.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  const browser = await chromium.launch({
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
  const pageErrors: string[] = [];
  return {
    stack,
    server,
    base,
    browser,
    pageErrors,
    identity: (name, roles) => createTestIdentity(stack.db.db, name, roles),
    async signedIn(who, shot) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await ctx.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${base}/console`);
      await page.waitForSelector('#signin-form');
      await page.fill('input[name=token]', who.token);
      if (shot) await page.screenshot({ path: path.join(SHOTS, shot) });
      await page.click('#signin-form button[type=submit]');
      await page.waitForSelector('#inbox');
      expect(await page.textContent('#who')).toContain(who.principal.name);
      return page;
    },
    async close() {
      await browser.close();
      await server.close();
      await stack.close();
    },
  };
}
