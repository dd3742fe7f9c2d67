/**
 * The inventory and topology fields a selector may name: the only place that maps a selector field to a
 * SQL column. Column names here are constants; nothing from a selector ever becomes an identifier.
 */

export type FieldKind = 'string' | 'version' | 'enum' | 'integer' | 'time' | 'tags';

export interface FieldDef {
  column: string;
  kind: FieldKind;
  /** Words used by the plain-language rendering. */
  label: string;
  group: 'inventory' | 'topology';
  values?: readonly string[];
}

export const FIELDS = {
  id: { column: 'id', kind: 'string', label: 'device id', group: 'inventory' },
  oui: { column: 'oui', kind: 'string', label: 'OUI', group: 'inventory' },
  manufacturer: { column: 'manufacturer', kind: 'string', label: 'manufacturer', group: 'inventory' },
  productClass: { column: 'product_class', kind: 'string', label: 'product class', group: 'inventory' },
  modelName: { column: 'model_name', kind: 'string', label: 'model name', group: 'inventory' },
  serialNumber: { column: 'serial_number', kind: 'string', label: 'serial number', group: 'inventory' },
  hardwareVersion: {
    column: 'hardware_version',
    kind: 'string',
    label: 'hardware version',
    group: 'inventory',
  },
  softwareVersion: {
    column: 'software_version',
    kind: 'version',
    label: 'firmware version',
    group: 'inventory',
  },
  protocol: {
    column: 'protocol',
    kind: 'enum',
    label: 'protocol',
    group: 'inventory',
    values: ['cwmp', 'usp'],
  },
  dataModelRoot: {
    column: 'data_model_root',
    kind: 'enum',
    label: 'data model root',
    group: 'inventory',
    values: ['Device.', 'InternetGatewayDevice.'],
  },
  lastContactAt: { column: 'last_contact_at', kind: 'time', label: 'last contact', group: 'inventory' },
  periodicInformIntervalS: {
    column: 'periodic_inform_interval_s',
    kind: 'integer',
    label: 'periodic inform interval (s)',
    group: 'inventory',
  },
  connectionRequestUrl: {
    column: 'connection_request_url',
    kind: 'string',
    label: 'connection request URL',
    group: 'inventory',
  },
  tags: { column: 'tags', kind: 'tags', label: 'tags', group: 'inventory' },
  region: { column: 'region', kind: 'string', label: 'region', group: 'topology' },
  site: { column: 'site', kind: 'string', label: 'site', group: 'topology' },
  olt: { column: 'olt', kind: 'string', label: 'OLT', group: 'topology' },
  ponPort: { column: 'pon_port', kind: 'string', label: 'PON port', group: 'topology' },
  bng: { column: 'bng', kind: 'string', label: 'BNG', group: 'topology' },
  serviceTier: { column: 'service_tier', kind: 'string', label: 'service tier', group: 'topology' },
  timeZone: { column: 'time_zone', kind: 'string', label: 'time zone', group: 'topology' },
} as const satisfies Record<string, FieldDef>;

export type FieldName = keyof typeof FIELDS;
export const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

export function isFieldName(name: string): name is FieldName {
  return Object.hasOwn(FIELDS, name);
}

/** Fields a per-stratum count may group by (low-cardinality ones). */
export const STRATUM_FIELDS = [
  'manufacturer',
  'productClass',
  'modelName',
  'hardwareVersion',
  'softwareVersion',
  'protocol',
  'region',
  'site',
  'olt',
  'bng',
  'serviceTier',
  'timeZone',
] as const satisfies readonly FieldName[];
export type StratumField = (typeof STRATUM_FIELDS)[number];
