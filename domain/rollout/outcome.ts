/**
 * Per-device outcome of an upgrade, from the device's own events and the fleet's health.
 * Shared by the gate activities and the benchmark so both mean the same thing by "brick".
 */

export type DeviceEvent =
  | { kind: 'inform'; at: number; softwareVersion?: string; eventCodes?: readonly string[] }
  | { kind: 'boot'; at: number; softwareVersion?: string }
  | { kind: 'transfer-complete'; at: number; faultCode: number };

export interface HealthSample {
  at: number;
  healthy: boolean;
}

export interface FleetHealth {
  samples: readonly HealthSample[];
  /** A gap between health rows longer than this reads as unhealthy. */
  maxStalenessMs: number;
}

export interface OutcomeParams {
  /** When the device counts as dispatched: the outcome deadline runs from here. */
  dispatchedAt: number;
  /**
   * When its batch started going out (≤ dispatchedAt): events from here count, so a device that
   * answered before a long, paced batch finished is not taken for silent. Default dispatchedAt.
   */
  sentFrom?: number;
  now: number;
  targetVersion: string;
  previousVersion: string;
  /** Download + reboot + the CPE's session-retry backoff. */
  outcomeTimeoutMs: number;
  soakMs: number;
  bootLoopBoots: number;
}

export type Outcome =
  | 'success'
  | 'degraded'
  | 'reverted'
  | 'transfer-failure'
  | 'brick'
  | 'unknown'
  | 'pending';

export interface Classified {
  outcome: Outcome;
  /** When the outcome became final (absent while pending). */
  at?: number;
  reason: string;
}

/** True when every moment of [from, to] is covered by a fresh, healthy health row. */
export function healthyThroughout(health: FleetHealth, from: number, to: number): boolean {
  const rows = [...health.samples].sort((a, b) => a.at - b.at);
  let coveredUntil = Number.NEGATIVE_INFINITY;
  for (const r of rows) {
    if (r.at > to) break;
    if (r.at + health.maxStalenessMs < from) continue;
    if (!r.healthy) return false;
    // A row vouches for [at, at + staleness]; anything between rows is a gap.
    if (r.at > Math.max(coveredUntil, from)) return false;
    coveredUntil = Math.max(coveredUntil, r.at + health.maxStalenessMs);
  }
  return coveredUntil >= to;
}

function versionOf(e: DeviceEvent): string | undefined {
  return e.kind === 'transfer-complete' ? undefined : e.softwareVersion;
}

export function classifyOutcome(
  events: readonly DeviceEvent[],
  health: FleetHealth,
  p: OutcomeParams,
): Classified {
  const since = Math.min(p.sentFrom ?? p.dispatchedAt, p.dispatchedAt);
  const evs = events.filter((e) => e.at >= since && e.at <= p.now).sort((a, b) => a.at - b.at);
  const deadline = p.dispatchedAt + p.outcomeTimeoutMs;

  const upEvent = evs.find((e) => versionOf(e) === p.targetVersion);
  if (upEvent) {
    const soakEnd = upEvent.at + p.soakMs;
    const later = evs.filter((e) => e.at >= upEvent.at);
    const fellBack = later.find((e) => versionOf(e) === p.previousVersion);
    if (fellBack)
      return {
        outcome: 'reverted',
        at: fellBack.at,
        reason: 'ran the target, then reported the previous image',
      };
    const boots = later.filter((e) => e.kind === 'boot' && e.at <= soakEnd);
    if (boots.length >= p.bootLoopBoots) {
      const nth = boots[p.bootLoopBoots - 1]!;
      return {
        outcome: 'degraded',
        at: nth.at,
        reason: `${boots.length} BOOT events within the soak (boot loop)`,
      };
    }
    if (p.now >= soakEnd)
      return { outcome: 'success', at: soakEnd, reason: 'on the target and up through the soak' };
    return { outcome: 'pending', reason: 'on the target, soaking' };
  }

  const fault = evs.find((e) => e.kind === 'transfer-complete' && e.faultCode !== 0);
  if (fault) {
    const onOld = evs.filter((e) => e.at >= fault.at && versionOf(e) !== undefined);
    const last = onOld.at(-1);
    if (!last || versionOf(last) === p.previousVersion) {
      return {
        outcome: 'transfer-failure',
        at: fault.at,
        reason: `TransferComplete fault ${(fault as { faultCode: number }).faultCode}; still on the old image`,
      };
    }
  }

  const bootOld = evs.find((e) => e.kind === 'boot' && e.softwareVersion === p.previousVersion);
  if (bootOld)
    return { outcome: 'reverted', at: bootOld.at, reason: 'rebooted and came back on the previous image' };

  if (p.now < deadline) return { outcome: 'pending', reason: 'waiting for the device' };
  if (!healthyThroughout(health, p.dispatchedAt, deadline)) {
    return { outcome: 'unknown', at: deadline, reason: 'infrastructure unhealthy during the outcome window' };
  }
  // Informs on the previous image after dispatch are expected: the session that delivers the
  // Download (connection request, next periodic inform) opens with one. Only a third version is odd.
  const other = evs.find((e) => {
    const v = versionOf(e);
    return v !== undefined && v !== p.previousVersion;
  });
  if (other)
    return { outcome: 'unknown', at: deadline, reason: `reported unexpected version ${versionOf(other)}` };
  // Still talking on the old image in the second half of the window: the device is alive and the
  // image was never applied (Download not delivered yet) — not a brick, and not the image's fault.
  const last = evs.at(-1);
  if (last && last.at > deadline - p.outcomeTimeoutMs / 2)
    return {
      outcome: 'unknown',
      at: deadline,
      reason: 'still reporting the previous image late in the outcome window (image not applied)',
    };
  return { outcome: 'brick', at: deadline, reason: 'not back by the outcome timeout' };
}
