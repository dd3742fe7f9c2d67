import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AUDIT_GENESIS_HASH, auditEntryHash, checkLink } from './audit-chain.js';
import { canonicalJson, sha256Hex } from './hash.js';
import { planHash } from './plan-hash.js';

describe('canonical JSON and sha-256', () => {
  it('sorts keys at every level and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"x":2,"y":1}]},"b":1}',
    );
  });
  it('refuses values without a JSON form', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
  });
  it('matches node:crypto', () => {
    for (const s of ['', 'abc', 'ünïcödé ✓', 'x'.repeat(1000)]) {
      expect(sha256Hex(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
    }
  });
});

describe('plan hash', () => {
  const spec = { set: { 'Device.WiFi.SSID.1.SSID': 'home' } };
  it('ignores device order and duplicates, not the devices themselves', () => {
    const a = planHash({ spec, deviceIds: ['d2', 'd1'] });
    expect(planHash({ spec, deviceIds: ['d1', 'd2', 'd1'] })).toBe(a);
    expect(planHash({ spec, deviceIds: ['d1', 'd2', 'd3'] })).not.toBe(a);
    expect(planHash({ spec, deviceIds: ['d1'] })).not.toBe(a);
  });
  it('changes with any value of the spec', () => {
    const a = planHash({ spec, deviceIds: ['d1'] });
    expect(planHash({ spec: { set: { 'Device.WiFi.SSID.1.SSID': 'home2' } }, deviceIds: ['d1'] })).not.toBe(
      a,
    );
    expect(a).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('audit chain links', () => {
  const e1 = {
    seq: 1,
    at: '2026-01-01T00:00:00.000Z',
    actorId: 'alice',
    actorKind: 'user' as const,
    action: 'proposal.created',
    subjectKind: 'cr',
    subjectId: '1',
    data: { a: 1 },
    idempotencyKey: null,
    prevHash: AUDIT_GENESIS_HASH,
  };
  const h1 = auditEntryHash(e1);
  const e2 = { ...e1, seq: 2, action: 'approval.granted', prevHash: h1 };
  const h2 = auditEntryHash(e2);
  it('accepts an intact chain', () => {
    expect(checkLink(null, { ...e1, hash: h1 })).toBeNull();
    expect(checkLink({ seq: 1, hash: h1 }, { ...e2, hash: h2 })).toBeNull();
  });
  it('names the kind of break', () => {
    expect(checkLink(null, { ...e1, data: { a: 2 }, hash: h1 })?.kind).toBe('hash_mismatch');
    expect(checkLink(null, { ...e2, hash: h2 })?.kind).toBe('seq_gap');
    expect(checkLink({ seq: 1, hash: 'f'.repeat(64) }, { ...e2, hash: h2 })?.kind).toBe('prev_hash_mismatch');
  });
});
