import { validate } from '../datamodel/validator.js';
import type { CompiledSchema } from '../datamodel/types.js';
import type { Selector } from '../fleet/selector.js';
import { policyTimes } from '../policies/local-time.js';
import type { PolicyDecision, PolicyInput } from '../policies/schema.js';
import { allChanges, type ChangeOp, type Proposal } from './proposal.js';

/**
 * The deterministic gate a proposal passes before anyone is asked to approve it: the target resolved
 * in code, every change validated against the data model of each device's firmware (no exact schema
 * ⇒ fail closed), then one policy decision over the whole change. The planner's repair loop feeds the
 * errors back; the change-request workflow runs the same check again before anything is written.
 */

export interface TargetDevice {
  id: string;
  oui: string;
  productClass: string;
  softwareVersion: string;
  timeZone?: string;
  region?: string;
}

export interface CheckPorts {
  /** Devices the selector resolves to (read-only), and the fleet size. */
  resolve(
    selector: Selector,
  ): Promise<{ devices: TargetDevice[]; fleetSize: number; regionTotals?: Record<string, number> }>;
  /** The exact data model for a firmware, or undefined (then every write fails closed). */
  schemaFor(key: { oui: string; productClass: string; softwareVersion: string }): CompiledSchema | undefined;
  decide(input: PolicyInput): Promise<PolicyDecision>;
  now?: () => Date;
}

export interface CheckError {
  stage: 'target' | 'validation' | 'policy';
  code: string;
  message: string;
  path?: string;
}

export interface CheckResult {
  ok: boolean;
  deviceCount: number;
  errors: CheckError[];
  decision?: PolicyDecision;
  policyInput?: PolicyInput;
}

const groupKey = (d: TargetDevice) => `${d.oui}\u0000${d.productClass}\u0000${d.softwareVersion}`;

function policyChange(p: Proposal): PolicyInput['change'] {
  const ops = allChanges(p).map((c) => c.change);
  const params = ops.flatMap((c) => (c.op === 'set' ? [{ path: c.path, value: c.value }] : []));
  const add = ops.flatMap((c) => (c.op === 'add' ? [c.path] : []));
  const del = ops.flatMap((c) => (c.op === 'delete' ? [c.path] : []));
  return {
    kind: 'parameters',
    ...(params.length ? { parameters: params } : {}),
    ...(add.length ? { add_objects: add } : {}),
    ...(del.length ? { delete_objects: del } : {}),
  };
}

export async function checkProposal(p: Proposal, ports: CheckPorts): Promise<CheckResult> {
  const errors: CheckError[] = [];
  const { devices, fleetSize, regionTotals } = await ports.resolve(p.effectiveTarget);
  const inTarget = new Set(devices.map((d) => d.id));
  p.perDevice.forEach((d, i) => {
    if (!inTarget.has(d.deviceId)) {
      errors.push({
        stage: 'target',
        code: 'outside_target',
        message: `perDevice[${i}] names a device outside the scope and target`,
        path: `perDevice[${i}]`,
      });
    }
  });
  if (devices.length === 0) {
    errors.push({ stage: 'target', code: 'empty_target', message: 'the scope and target match no device' });
  }

  const groups = new Map<string, TargetDevice[]>();
  for (const d of devices) {
    const g = groups.get(groupKey(d));
    if (g) g.push(d);
    else groups.set(groupKey(d), [d]);
  }
  let unknownModels = 0;
  const seen = new Set<string>();
  for (const members of groups.values()) {
    const first = members[0] as TargetDevice;
    const schema = ports.schemaFor(first);
    const label = `${first.productClass} ${first.softwareVersion}`;
    if (!schema) {
      unknownModels += members.length;
      errors.push({
        stage: 'validation',
        code: 'no_schema',
        message: `no data model is registered for ${label}: writes fail closed until its tree is discovered`,
      });
      continue;
    }
    const ids = new Set(members.map((m) => m.id));
    const items: ChangeOp[] = allChanges(p)
      .filter((c) => c.deviceId === undefined || ids.has(c.deviceId))
      .map((c) => c.change);
    const report = validate(schema, items);
    for (const r of report.results) {
      const key = `${r.path}\u0000${r.code}`;
      if (r.ok || seen.has(key)) continue;
      seen.add(key);
      errors.push({ stage: 'validation', code: r.code, message: `${r.message} (on ${label})`, path: r.path });
    }
  }
  const validationErrors = errors.filter((e) => e.stage !== 'policy').length;

  const byZone = new Map<string, number>();
  const byRegion = new Map<string, number>();
  for (const d of devices) {
    byZone.set(d.timeZone ?? 'UTC', (byZone.get(d.timeZone ?? 'UTC') ?? 0) + 1);
    if (d.region) byRegion.set(d.region, (byRegion.get(d.region) ?? 0) + 1);
  }
  const input: PolicyInput = {
    action: 'propose',
    actor: p.proposer,
    proposer: p.proposer,
    change: policyChange(p),
    cohort: {
      size: devices.length,
      fleet_size: Math.max(1, fleetSize),
      strata: [...groups.entries()].map(([k, m]) => ({ key: k.replaceAll('\u0000', '/'), count: m.length })),
      // Without totals a share cannot be computed; an element is listed only with its real total.
      topology: [...byRegion.entries()].flatMap(([id, count]) =>
        regionTotals?.[id] === undefined ? [] : [{ kind: 'region', id, count, total: regionTotals[id] }],
      ),
    },
    devices: [...groups.values()].map((m) => ({
      vendor: m[0]?.oui,
      model: m[0]?.productClass as string,
      firmware_version: m[0]?.softwareVersion as string,
      count: m.length,
    })),
    validation: {
      ok: validationErrors === 0,
      errors: validationErrors,
      unknown_models: unknownModels,
      fallback_schema: false,
    },
    ...(p.requestedRiskClass ? { requested_risk_class: p.requestedRiskClass } : {}),
    times: policyTimes(
      ports.now?.() ?? new Date(),
      [...byZone.entries()].map(([time_zone, device_count]) => ({ time_zone, device_count })),
    ),
  };
  const decision = await ports.decide(input);
  for (const d of decision.deny) {
    errors.push({ stage: 'policy', code: d.code, message: d.message, ...(d.path ? { path: d.path } : {}) });
  }
  return {
    ok: errors.length === 0 && decision.allow,
    deviceCount: devices.length,
    errors,
    decision,
    policyInput: input,
  };
}
