import { describe, expect, it } from 'vitest';
import {
  defaultMaintenanceWindows,
  defaultRiskCaps,
  type PolicyDataRows,
  policyDataFromRows,
  policyDataHash,
} from './policy-data.js';

const rows: PolicyDataRows = {
  firmwareImages: [
    {
      version: '2.0',
      models: ['B', 'A'],
      allowedFromVersions: ['1.9', '1.8'],
      url: 'https://fw/2.0',
      size: 10,
      checksum: 'sha256:aa',
      status: 'approved',
    },
    {
      version: '1.9',
      models: ['A'],
      allowedFromVersions: [],
      url: 'https://fw/1.9',
      size: 9,
      checksum: 'sha256:bb',
      status: 'deprecated',
    },
  ],
  maintenanceWindows: defaultMaintenanceWindows,
  riskCaps: defaultRiskCaps,
  plannerIds: ['svc-planner', 'svc-planner'],
};

describe('policy data document from table rows', () => {
  it('maps rows to the document the Rego reads', () => {
    const doc = policyDataFromRows(rows);
    expect(doc.firmware_catalogue.map((e) => e.version)).toEqual(['1.9', '2.0']);
    expect(doc.firmware_catalogue[1]).toMatchObject({
      models: ['A', 'B'],
      allowed_from_versions: ['1.8', '1.9'],
    });
    expect(doc.risk_classes.critical.approvals).toBe(2);
    expect(doc.maintenance_windows[0]).toMatchObject({ name: 'nightly', start_minute: 60, end_minute: 300 });
    expect(doc.planner_ids).toEqual(['svc-planner']);
  });

  it('hashes the same whatever the row order, and differently when a row changes', () => {
    const a = policyDataHash(policyDataFromRows(rows));
    const shuffled = {
      ...rows,
      firmwareImages: [...rows.firmwareImages].reverse(),
      riskCaps: [...rows.riskCaps].reverse(),
    };
    expect(policyDataHash(policyDataFromRows(shuffled))).toBe(a);
    const revoked = {
      ...rows,
      firmwareImages: rows.firmwareImages.map((r) => (r.version === '2.0' ? { ...r, status: 'revoked' } : r)),
    };
    expect(policyDataHash(policyDataFromRows(revoked))).not.toBe(a);
  });

  it('refuses a document the policy could misread', () => {
    expect(() => policyDataFromRows({ ...rows, riskCaps: defaultRiskCaps.slice(0, 3) })).toThrow(/critical/);
    expect(() =>
      policyDataFromRows({ ...rows, firmwareImages: [{ ...rows.firmwareImages[0]!, status: 'maybe' }] }),
    ).toThrow(/status/);
    expect(() =>
      policyDataFromRows({
        ...rows,
        riskCaps: [...defaultRiskCaps, { ...defaultRiskCaps[0]!, riskClass: 'extreme' }],
      }),
    ).toThrow();
  });
});
