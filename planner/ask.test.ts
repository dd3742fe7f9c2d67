import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Query } from '../fleet/query.js';
import { ask, resolveDraft } from './ask.js';
import {
  fold,
  type Gazetteer,
  NeedsClarification,
  resolveFirmware,
  resolvePlace,
  windowSeconds,
} from './entities.js';
import { type FixtureServer, startFixtureServer } from './fixture-server.js';
import { createLlm, isUnavailable, type Llm } from './llm.js';

const g: Gazetteer = {
  regions: ['lyon', 'paris', 'saint-etienne'],
  sites: ['lyon-part-dieu', 'paris-nord', 'villeurbanne'],
  productClasses: ['HG8245', 'F660'],
  modelNames: ['EchoLife HG8245H'],
  softwareVersions: ['3.1.0', '3.1.4', '3.10.2', '3.2.1'],
};
// Wednesday 2026-11-25 15:00 in Paris (UTC+1).
const now = new Date('2026-11-25T14:00:00Z');

describe('entity resolution in code', () => {
  it('resolves places accent- and case-insensitively, to a region or a site', () => {
    expect(fold('Saint-Étienne')).toBe('saint etienne');
    expect(resolvePlace('Saint-Étienne', g)).toEqual({ field: 'region', value: 'saint-etienne' });
    expect(resolvePlace('Villeurbanne', g)).toEqual({ field: 'site', value: 'villeurbanne' });
    expect(resolvePlace('part dieu', g)).toEqual({ field: 'site', value: 'lyon-part-dieu' });
  });
  it('asks back for unknown places instead of guessing', () => {
    expect(() => resolvePlace('Grenoble', g)).toThrow(NeedsClarification);
  });
  it('turns "firmware 3.1" into 3.1 or 3.1.x, never 3.10', () => {
    const s = resolveFirmware('3.1', g);
    expect(s).toEqual({
      or: [
        { field: 'softwareVersion', op: 'eq', value: '3.1' },
        { field: 'softwareVersion', op: 'prefix', value: '3.1.' },
        { field: 'softwareVersion', op: 'prefix', value: '3.1-' },
      ],
    });
    expect(resolveFirmware('3.1.4', g)).toEqual({ field: 'softwareVersion', op: 'eq', value: '3.1.4' });
    expect(() => resolveFirmware('4.0', g)).toThrow(/No device runs firmware "4.0"/);
  });
  it('computes "this week" and "today" in the operator time zone', () => {
    expect(windowSeconds('today', now, 'Europe/Paris')).toBe(15 * 3600);
    expect(windowSeconds('today', now, 'America/New_York')).toBe(9 * 3600);
    expect(windowSeconds('this_week', now, 'Europe/Paris')).toBe(2 * 86_400 + 15 * 3600);
    expect(windowSeconds('last_7_days', now, 'Europe/Paris')).toBe(7 * 86_400);
  });
  it('rewrites a draft: mentions to conditions, windows to seconds', () => {
    const d = resolveDraft(
      {
        where: {
          and: [{ place: 'Lyon' }, { events: { kind: 'boot', window: 'this_week', op: 'gt', count: 3 } }],
        },
        measure: 'count',
      },
      { gazetteer: g, timeZone: 'Europe/Paris', now },
    );
    expect(d).toEqual({
      where: {
        and: [
          { field: 'region', op: 'eq', value: 'lyon' },
          { events: { kind: 'boot', op: 'gt', count: 3, withinSeconds: 2 * 86_400 + 15 * 3600 } },
        ],
      },
      measure: 'count',
    });
  });
});

// The model side below is AUTHORED FIXTURES over a local HTTP server: plumbing, not accuracy.
describe('ask (authored fixtures)', () => {
  let server: FixtureServer;
  let llm: Llm;
  const executed: Query[] = [];
  const deps = {
    gazetteer: g,
    timeZone: 'Europe/Paris',
    now,
    execute: async (q: Query) => {
      executed.push(q);
      return { rows: [{ key: { productClass: 'HG8245' }, value: 4 }], truncated: false };
    },
  };
  beforeAll(async () => {
    server = await startFixtureServer({
      'a/ok/0': {
        content: {
          kind: 'query',
          query: { where: { firmware: '3.1' }, measure: 'count', groupBy: ['productClass'] },
        },
      },
      'a/unknown-place/0': {
        content: { kind: 'query', query: { where: { place: 'Grenoble' }, measure: 'count' } },
      },
      'a/change/0': { content: { kind: 'change_request', summary: 'reboot devices in Lyon' } },
      'a/bad/0': {
        content: {
          kind: 'query',
          query: { where: { field: 'colour', op: 'eq', value: 'red' }, measure: 'count' },
        },
      },
      'a/bad/1': { content: { kind: 'clarify', question: 'Which field do you mean by colour?' } },
    });
    const made = createLlm({ baseUrl: server.baseUrl, model: 'fixture' });
    if (isUnavailable(made)) throw new Error('client');
    llm = made;
  });
  afterAll(() => server.close());

  it('answers with the DSL, its plain-language rendering and a table rendered by code', async () => {
    const r = await ask(llm, deps, 'how many devices on firmware 3.1 per model?', { suite: 'a', case: 'ok' });
    expect(r.kind).toBe('answer');
    if (r.kind !== 'answer') return;
    expect(r.description).toMatch(/^the number of devices, per product class, among devices where/);
    expect(r.table).toContain('| "HG8245" | 4 |');
  });
  it('asks back for an unknown place without running anything', async () => {
    const before = executed.length;
    const r = await ask(llm, deps, 'devices in Grenoble?', { suite: 'a', case: 'unknown-place' });
    expect(r).toMatchObject({ kind: 'clarify', by: 'resolver' });
    expect(executed.length).toBe(before);
  });
  it('answers a change request as such and runs nothing', async () => {
    const before = executed.length;
    const r = await ask(llm, deps, 'reboot all devices in Lyon', { suite: 'a', case: 'change' });
    expect(r.kind).toBe('change_request');
    expect(executed.length).toBe(before);
  });
  it('feeds an invalid DSL back before giving up', async () => {
    const r = await ask(llm, deps, 'red devices?', { suite: 'a', case: 'bad' });
    expect(r).toMatchObject({ kind: 'clarify', by: 'model', rounds: 2 });
    const second = server.requests.find((x) => x.key === 'a/bad/1');
    expect(String(second?.body.messages?.at(-1)?.content)).toMatch(/unknown field "colour"/);
  });
  it('without an endpoint says so', async () => {
    expect(await ask(createLlm({ model: 'm' }), deps, 'x')).toMatchObject({ kind: 'planner_unavailable' });
  });
});
