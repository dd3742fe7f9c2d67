import { describe, expect, it } from 'vitest';
import { rolloutSpecSchema } from './spec.js';

const minimal = {
  name: 'fw 2.0 to HG8245',
  image: 'hg8245-2.0',
  cohort: { model: 'HG8245' },
  waves: { kind: 'exponential', basePercent: 1, factor: 3 },
  gate: { theta: 0.005, hardCeilingBricked: 200 },
};

describe('rolloutSpecSchema', () => {
  it('fills defaults that describe a cautious rollout', () => {
    const s = rolloutSpecSchema.parse(minimal);
    expect(s.rateCaps.perMinute).toBe(1000);
    expect(s.gate.confidence).toBe(0.95);
    expect(s.outcomeTimeoutMinutes).toBe(60);
    expect(s.approvals.beforeStart).toBe(true);
    expect(s.waves.firstWaveStages).toBe(1);
    expect(s.cohort).toEqual({ model: 'HG8245' });
  });

  it('accepts windows, caps, approvals and webhooks', () => {
    const s = rolloutSpecSchema.parse({
      ...minimal,
      waves: { kind: 'steps', steps: [{ count: 50 }, { percent: 10 }, { percent: 100 }], firstWaveStages: 2 },
      rateCaps: { perMinute: 200, perWave: 5000, perTopologyElement: { level: 'ponPort', max: 4 } },
      maintenanceWindows: [{ days: ['sat', 'sun'], start: '01:00', end: '05:00' }],
      approvals: { beforeStart: true, beforeWaveAbove: 10_000, beforeLastWave: true },
      notifications: [
        { url: 'https://ops.example.net/hooks/rollouts', events: ['halt', 'pause', 'complete'] },
      ],
    });
    expect(s.rateCaps.perTopologyElement?.max).toBe(4);
  });

  it('rejects bad input with the offending field', () => {
    const bad = (patch: Record<string, unknown>) => rolloutSpecSchema.safeParse({ ...minimal, ...patch });
    const r1 = bad({ gate: { theta: 0.7, hardCeilingBricked: 1 } });
    expect(r1.success).toBe(false);
    expect(r1.error?.issues[0]?.path).toEqual(['gate', 'theta']);
    expect(bad({ maintenanceWindows: [{ start: '25:00', end: '02:00' }] }).success).toBe(false);
    expect(bad({ notifications: [{ url: 'ftp://x', events: ['halt'] }] }).success).toBe(false);
    expect(bad({ waves: { kind: 'steps', steps: [] } }).success).toBe(false);
    expect(bad({ surprise: true }).success).toBe(false);
  });
});
