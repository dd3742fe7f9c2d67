import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DbOrTx } from '../fleet/db.js';
import { type FixtureReply, startFixtureServer } from '../planner/fixture-server.js';
import { createLlm, isUnavailable } from '../planner/llm.js';
import { loadPolicyDecider } from '../planner/policy-gate.js';
import { type Report, type RunLabel, runFleetQuestions, runPlannerSuite } from './runner.js';
import { FixtureFile, FleetQuestionSuite, PlannerSuite } from './schema.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SUITES = ['fleet-questions', 'planner'] as const;
export type SuiteName = (typeof SUITES)[number];

export const FIXTURE_LABEL =
  'FIXTURE MODE: a test of the eval harness and pipeline against AUTHORED replies from a local server. These numbers say nothing about any model’s accuracy.';

export function suiteFile(name: SuiteName): string {
  return path.join(here, 'suites', `${name}.json`);
}
export function fixtureFile(name: SuiteName): string {
  return path.join(here, 'fixtures', `${name}.json`);
}

export function loadSuite(name: 'fleet-questions'): FleetQuestionSuite;
export function loadSuite(name: 'planner'): PlannerSuite;
export function loadSuite(name: SuiteName): FleetQuestionSuite | PlannerSuite {
  const json = JSON.parse(readFileSync(suiteFile(name), 'utf8'));
  return name === 'planner' ? PlannerSuite.parse(json) : FleetQuestionSuite.parse(json);
}

export class FixtureMiss extends Error {
  constructor(readonly keys: string[]) {
    super(`fixture mode: ${keys.length} request(s) had no authored fixture: ${keys.slice(0, 5).join(', ')}`);
    this.name = 'FixtureMiss';
  }
}

export interface SuiteRunOptions {
  suite: SuiteName;
  /** Live mode when set; fixture mode otherwise. */
  live?: { baseUrl: string; model: string; apiKey?: string };
  /** Fixture file override (fixture mode). */
  fixtures?: string;
  /** Seeded fixture-fleet database (fleet-questions only). */
  db?: DbOrTx;
  k?: number;
  onCase?: (id: string) => void;
}

/** Runs one suite; in fixture mode any request without an authored reply fails the run. */
export async function runSuite(opts: SuiteRunOptions): Promise<Report> {
  const date = new Date().toISOString();
  let server: Awaited<ReturnType<typeof startFixtureServer>> | undefined;
  let run: RunLabel;
  let llmSettings: { baseUrl: string; model: string; apiKey?: string };
  if (opts.live) {
    llmSettings = opts.live;
    run = {
      mode: 'live',
      model: opts.live.model,
      baseUrl: opts.live.baseUrl,
      date,
      label: `LIVE MODE: model ${opts.live.model} at ${opts.live.baseUrl}, run ${date}.`,
    };
  } else {
    const file = FixtureFile.parse(
      JSON.parse(readFileSync(opts.fixtures ?? fixtureFile(opts.suite), 'utf8')),
    );
    if (file.suite !== opts.suite)
      throw new Error(`fixture file is for suite ${file.suite}, not ${opts.suite}`);
    server = await startFixtureServer(new Map(Object.entries(file.replies) as Array<[string, FixtureReply]>));
    llmSettings = { baseUrl: server.baseUrl, model: 'authored-fixtures' };
    run = {
      mode: 'fixture',
      model: 'authored-fixtures',
      baseUrl: 'local fixture server',
      date,
      label: FIXTURE_LABEL,
    };
  }
  const llm = createLlm(llmSettings);
  if (isUnavailable(llm)) throw new Error(llm.reason);
  try {
    let report: Report;
    if (opts.suite === 'fleet-questions') {
      if (!opts.db) throw new Error('the fleet-questions suite needs a seeded fixture-fleet database');
      report = await runFleetQuestions(loadSuite('fleet-questions'), llm, opts.db, run, opts.onCase);
    } else {
      const policy = await loadPolicyDecider();
      try {
        report = await runPlannerSuite(loadSuite('planner'), llm, policy.decide, run, { k: opts.k ?? 1 });
      } finally {
        await policy.engine.close();
      }
    }
    if (server && server.misses.length > 0) throw new FixtureMiss([...server.misses]);
    return report;
  } finally {
    await server?.close();
  }
}
