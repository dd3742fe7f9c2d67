import { hashJson } from './canonical-json.js';
import {
  type CatalogueEntry,
  type MaintenanceWindow,
  PolicyData,
  type RiskClass,
  type RiskClassCaps,
  RiskClass as RiskClassSchema,
} from './schema.js';

/**
 * The policy data document (data.policy_data) from table rows. Rows come from firmware_images,
 * maintenance_windows and policy_risk_caps; this module has no database code so it is testable alone.
 */

export interface FirmwareImageRow {
  version: string;
  models: string[];
  allowedFromVersions: string[];
  url: string;
  size: number;
  checksum: string;
  status: string;
}

export interface MaintenanceWindowRow {
  name: string;
  days: string[];
  startMinute: number;
  endMinute: number;
}

export interface RiskCapsRow {
  riskClass: string;
  maxCohortSize: number;
  maxFleetShare: number;
  maxTopologyShare: number;
  approvals: number;
  maxFirstWaveSize: number;
  minWaves: number;
  brickRateMin: number;
  brickRateMax: number;
  maintenanceWindowRequired: boolean;
}

export interface PolicyDataRows {
  firmwareImages: FirmwareImageRow[];
  maintenanceWindows: MaintenanceWindowRow[];
  riskCaps: RiskCapsRow[];
  plannerIds: string[];
}

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/** Throws (zod) on rows the policy could misread, e.g. a missing risk class or an unknown status. */
export function policyDataFromRows(rows: PolicyDataRows): PolicyData {
  const caps: Partial<Record<RiskClass, RiskClassCaps>> = {};
  for (const r of rows.riskCaps) {
    caps[RiskClassSchema.parse(r.riskClass)] = {
      max_cohort_size: r.maxCohortSize,
      max_fleet_share: r.maxFleetShare,
      max_topology_share: r.maxTopologyShare,
      approvals: r.approvals,
      max_first_wave_size: r.maxFirstWaveSize,
      min_waves: r.minWaves,
      brick_rate_min: r.brickRateMin,
      brick_rate_max: r.brickRateMax,
      maintenance_window_required: r.maintenanceWindowRequired,
    };
  }
  // Sorted so the document (and its hash) does not depend on row order.
  const catalogue = [...rows.firmwareImages].sort(byKey((r) => r.version)).map(
    (r): CatalogueEntry => ({
      version: r.version,
      models: [...r.models].sort(),
      allowed_from_versions: [...r.allowedFromVersions].sort(),
      url: r.url,
      size: r.size,
      checksum: r.checksum,
      status: r.status as CatalogueEntry['status'],
    }),
  );
  const windows = [...rows.maintenanceWindows].sort(byKey((r) => r.name)).map(
    (r): MaintenanceWindow => ({
      name: r.name,
      days: r.days as MaintenanceWindow['days'],
      start_minute: r.startMinute,
      end_minute: r.endMinute,
    }),
  );
  return PolicyData.parse({
    firmware_catalogue: catalogue,
    maintenance_windows: windows,
    risk_classes: caps,
    planner_ids: [...new Set(rows.plannerIds)].sort(),
  });
}

export function policyDataHash(data: PolicyData): string {
  return hashJson(data);
}

/** Seed rows for a fresh installation: conservative caps, a 01:00–05:00 local window every night. */
export const defaultRiskCaps: RiskCapsRow[] = [
  {
    riskClass: 'low',
    maxCohortSize: 1_000_000,
    maxFleetShare: 1,
    maxTopologyShare: 1,
    approvals: 0,
    maxFirstWaveSize: 5000,
    minWaves: 1,
    brickRateMin: 0.001,
    brickRateMax: 0.05,
    maintenanceWindowRequired: false,
  },
  {
    riskClass: 'medium',
    maxCohortSize: 200_000,
    maxFleetShare: 1,
    maxTopologyShare: 1,
    approvals: 1,
    maxFirstWaveSize: 1000,
    minWaves: 2,
    brickRateMin: 0.001,
    brickRateMax: 0.02,
    maintenanceWindowRequired: true,
  },
  {
    riskClass: 'high',
    maxCohortSize: 50_000,
    maxFleetShare: 1,
    maxTopologyShare: 0.5,
    approvals: 1,
    maxFirstWaveSize: 100,
    minWaves: 3,
    brickRateMin: 0.0005,
    brickRateMax: 0.01,
    maintenanceWindowRequired: true,
  },
  {
    riskClass: 'critical',
    maxCohortSize: 5000,
    maxFleetShare: 0.05,
    maxTopologyShare: 0.1,
    approvals: 2,
    maxFirstWaveSize: 10,
    minWaves: 4,
    brickRateMin: 0.0001,
    brickRateMax: 0.005,
    maintenanceWindowRequired: true,
  },
];

export const defaultMaintenanceWindows: MaintenanceWindowRow[] = [
  {
    name: 'nightly',
    days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
    startMinute: 60,
    endMinute: 300,
  },
];
