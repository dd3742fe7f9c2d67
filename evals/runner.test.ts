import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../test/support/db.js';
import { seedFixtureFleet } from './fixture-fleet.js';
import { writeReport } from './report.js';
import { FIXTURE_LABEL, FixtureMiss, fixtureFile, loadSuite, runSuite } from './run-suite.js';
import type { Proportion } from './wilson.js';

/**
 * The eval runner in FIXTURE MODE: the replies are authored (evals/fixtures/*.json), so this checks
 * the harness (suites load, gold queries run, scoring, reports, misses fail), never a model's accuracy.
 */

let h: Awaited<ReturnType<typeof createTestDatabase>>;
const out = mkdtempSync(path.join(os.tmpdir(), 'fb-evals-'));

beforeAll(async () => {
  h = await createTestDatabase();
  await seedFixtureFleet(h.db);
});
afterAll(async () => {
  await h?.drop();
  rmSync(out, { recursive: true, force: true });
});

const prop = (v: unknown) => v as Proportion;

describe('suite files', () => {
  it('hold the counts the issue asks for', () => {
    const fq = loadSuite('fleet-questions');
    expect(fq.cases.length).toBeGreaterThanOrEqual(200);
    expect(new Set(fq.cases.map((c) => c.id)).size).toBe(fq.cases.length);
    const pl = loadSuite('planner');
    expect(pl.cases.filter((c) => c.injection).length).toBeGreaterThanOrEqual(50);
  });
});

describe('fleet-questions in fixture mode', () => {
  it('runs every case, scores it and writes JSON and Markdown reports', async () => {
    const suite = loadSuite('fleet-questions');
    const fixtures = JSON.parse(readFileSync(fixtureFile('fleet-questions'), 'utf8')).replies as Record<
      string,
      { content: { kind: string; query?: unknown } }
    >;
    const r = await runSuite({ suite: 'fleet-questions', db: h.db });
    expect(r.run.mode).toBe('fixture');
    expect(r.run.label).toBe(FIXTURE_LABEL);
    expect(r.counts.cases).toBe(suite.cases.length);
    // Scores follow from the authored replies: a case whose reply is its gold query must be correct.
    const byId = new Map(r.cases.map((c) => [c.id, c]));
    for (const c of suite.cases) {
      const reply = fixtures[`fleet-questions/${c.id}/0`]?.content;
      if (
        c.expect.kind === 'answer' &&
        JSON.stringify(reply) === JSON.stringify({ kind: 'query', query: c.expect.query })
      ) {
        expect(byId.get(c.id)?.correct, c.id).toBe(true);
      }
    }
    // The authored deviations: two wrong queries and a needless clarification are wrong; the invalid
    // DSL is repaired in round 1; a vague question guessed and a change request read are caught.
    for (const id of [
      'devices-per-protocol',
      'count-place-lyon',
      'uptime-above-500000',
      'clarify-vague-5',
      'change-request-10',
    ])
      expect(byId.get(id)?.correct, id).toBe(false);
    expect(byId.get('oldest-versions')?.correct).toBe(true);
    const acc = prop(r.metrics.execution_accuracy);
    expect(acc.n - acc.successes).toBe(3);
    expect(prop(r.metrics.clarification_recall).n - prop(r.metrics.clarification_recall).successes).toBe(1);
    expect(
      prop(r.metrics.clarification_precision).n - prop(r.metrics.clarification_precision).successes,
    ).toBe(1);
    expect(r.counts.change_requests_run_as_reads).toBe(1);
    expect(r.metrics.unsafe_statements_executed).toBe(0);
    expect(acc.low).toBeLessThan(acc.rate as number);
    const files = writeReport(r, out);
    expect(existsSync(files.json)).toBe(true);
    const md = readFileSync(files.md, 'utf8');
    expect(md).toContain(FIXTURE_LABEL);
    expect(md).toMatch(/\| execution_accuracy \| \d+\.\d % \| \d+ \/ \d+ \|/);
  });

  it('fails when a request has no authored fixture', async () => {
    const f = JSON.parse(readFileSync(fixtureFile('fleet-questions'), 'utf8'));
    delete f.replies['fleet-questions/usp-lyon/0'];
    const file = path.join(out, 'missing.json');
    writeFileSync(file, JSON.stringify(f));
    await expect(runSuite({ suite: 'fleet-questions', db: h.db, fixtures: file })).rejects.toThrow(
      FixtureMiss,
    );
  });
});

describe('planner suite in fixture mode (scripted adversary for injections)', () => {
  it('stops every injection: zero gate escapes; scores and report produced', async () => {
    const r = await runSuite({ suite: 'planner', k: 2 });
    expect(r.metrics.gate_escapes).toBe(0);
    expect(r.counts.injection_cases).toBeGreaterThanOrEqual(50);
    const rows = new Map(r.cases.map((c) => [c.id, c]));
    expect(rows.get('wifi-channel-11')).toMatchObject({ got: 'proposed', pass: true });
    expect(rows.get('repair-range')).toMatchObject({
      got: 'proposed',
      rounds: 'check_failed > passed',
      pass: true,
    });
    expect(rows.get('acs-move-denied')).toMatchObject({ got: 'abstained', pass: true });
    expect(rows.get('channel-plan-tool')).toMatchObject({ got: 'proposed', pass: true });
    for (const c of r.cases.filter((x) => x.injection)) expect(c.escape, String(c.id)).toBe(false);
    expect(prop(r.metrics['pass^2']).n).toBe(r.counts.cases);
    const files = writeReport(r, out);
    expect(readFileSync(files.md, 'utf8')).toContain('gate_escapes | 0');
  });
});
