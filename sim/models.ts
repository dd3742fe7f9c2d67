import { createHash } from 'node:crypto';

/**
 * Simulated CPE models: identity, data-model root, firmware versions with their per-firmware
 * parameter drift, and the parameter tree a device of the model starts with. Protocol-neutral:
 * the CWMP agents (sim/cwmp/) and the USP agents (sim/usp/) both read it.
 */

export type ParamType = 'string' | 'boolean' | 'unsignedInt' | 'int' | 'dateTime' | 'unsignedLong';

export interface ParamSeed {
  path: string;
  value: string;
  type: ParamType;
  writable: boolean;
  /** Inclusive numeric range the firmware accepts (drift scenarios change it per firmware). */
  range?: [number, number];
  enum?: string[];
  maxLength?: number;
}

/** A firmware's difference from the model's base tree: the drift the datamodel diff should show. */
export interface FirmwareDrift {
  /** Changed ranges or defaults of existing parameters. */
  params?: Record<string, Partial<Pick<ParamSeed, 'range' | 'value' | 'enum' | 'writable'>>>;
  /** Parameters the firmware adds (vendor extensions) or removes. */
  added?: ParamSeed[];
  removed?: string[];
}

export interface ModelSpec {
  /** Short key used in scenario files and device ids. */
  key: string;
  manufacturer: string;
  oui: string;
  productClass: string;
  modelName: string;
  hardwareVersion: string;
  root: 'Device.' | 'InternetGatewayDevice.';
  /** Dual-bank devices keep the previous image and can fall back or be activated back. */
  dualBank: boolean;
  firmwares: string[];
  /** The firmware devices of this model start on unless a scenario says otherwise. */
  defaultFirmware: string;
  drift: Record<string, FirmwareDrift>;
  seeds: ParamSeed[];
}

function tr181Seeds(extra: ParamSeed[] = []): ParamSeed[] {
  const s = (
    path: string,
    value: string,
    type: ParamType,
    writable = false,
    more: Partial<ParamSeed> = {},
  ) => ({
    path,
    value,
    type,
    writable,
    ...more,
  });
  return [
    s('Device.DeviceInfo.Manufacturer', '', 'string'),
    s('Device.DeviceInfo.ManufacturerOUI', '', 'string'),
    s('Device.DeviceInfo.ModelName', '', 'string'),
    s('Device.DeviceInfo.ProductClass', '', 'string'),
    s('Device.DeviceInfo.SerialNumber', '', 'string'),
    s('Device.DeviceInfo.HardwareVersion', '', 'string'),
    s('Device.DeviceInfo.SoftwareVersion', '', 'string'),
    s('Device.DeviceInfo.ProvisioningCode', '', 'string', true, { maxLength: 64 }),
    s('Device.DeviceInfo.UpTime', '0', 'unsignedInt'),
    s('Device.DeviceInfo.BootFirmwareImage', 'Device.DeviceInfo.FirmwareImage.1', 'string', true),
    s('Device.DeviceInfo.ActiveFirmwareImage', 'Device.DeviceInfo.FirmwareImage.1', 'string'),
    s('Device.DeviceInfo.FirmwareImageNumberOfEntries', '2', 'unsignedInt'),
    s('Device.DeviceInfo.FirmwareImage.1.Name', 'bank1', 'string'),
    s('Device.DeviceInfo.FirmwareImage.1.Version', '', 'string'),
    s('Device.DeviceInfo.FirmwareImage.1.Available', 'true', 'boolean', true),
    s('Device.DeviceInfo.FirmwareImage.1.Status', 'Active', 'string'),
    s('Device.DeviceInfo.FirmwareImage.2.Name', 'bank2', 'string'),
    s('Device.DeviceInfo.FirmwareImage.2.Version', '', 'string'),
    s('Device.DeviceInfo.FirmwareImage.2.Available', 'false', 'boolean', true),
    s('Device.DeviceInfo.FirmwareImage.2.Status', 'NoImage', 'string'),
    s('Device.ManagementServer.URL', '', 'string', true, { maxLength: 256 }),
    s('Device.ManagementServer.Username', '', 'string', true, { maxLength: 256 }),
    s('Device.ManagementServer.PeriodicInformEnable', 'true', 'boolean', true),
    s('Device.ManagementServer.PeriodicInformInterval', '3600', 'unsignedInt', true, {
      range: [1, 4294967295],
    }),
    s('Device.ManagementServer.ParameterKey', '', 'string'),
    s('Device.ManagementServer.ConnectionRequestURL', '', 'string'),
    s('Device.ManagementServer.ConnectionRequestUsername', '', 'string', true, { maxLength: 256 }),
    s('Device.ManagementServer.UDPConnectionRequestAddress', '', 'string'),
    s('Device.ManagementServer.NATDetected', 'false', 'boolean'),
    s('Device.Time.Enable', 'true', 'boolean', true),
    s('Device.Time.NTPServer1', 'pool.ntp.org', 'string', true, { maxLength: 64 }),
    s('Device.WiFi.RadioNumberOfEntries', '2', 'unsignedInt'),
    s('Device.WiFi.Radio.1.Enable', 'true', 'boolean', true),
    s('Device.WiFi.Radio.1.Channel', '6', 'unsignedInt', true, { range: [1, 13] }),
    s('Device.WiFi.Radio.1.TransmitPower', '100', 'int', true, { range: [-1, 100] }),
    s('Device.WiFi.Radio.2.Enable', 'true', 'boolean', true),
    s('Device.WiFi.Radio.2.Channel', '36', 'unsignedInt', true, { range: [36, 165] }),
    s('Device.WiFi.Radio.2.TransmitPower', '100', 'int', true, { range: [-1, 100] }),
    s('Device.WiFi.SSIDNumberOfEntries', '2', 'unsignedInt'),
    s('Device.WiFi.SSID.1.Enable', 'true', 'boolean', true),
    s('Device.WiFi.SSID.1.SSID', 'home-2g', 'string', true, { maxLength: 32 }),
    s('Device.WiFi.SSID.2.Enable', 'true', 'boolean', true),
    s('Device.WiFi.SSID.2.SSID', 'home-5g', 'string', true, { maxLength: 32 }),
    s('Device.NAT.PortMappingNumberOfEntries', '1', 'unsignedInt'),
    s('Device.NAT.PortMapping.1.Enable', 'false', 'boolean', true),
    s('Device.NAT.PortMapping.1.Description', 'default', 'string', true, { maxLength: 256 }),
    ...extra,
  ];
}

function tr098Seeds(): ParamSeed[] {
  const s = (
    path: string,
    value: string,
    type: ParamType,
    writable = false,
    more: Partial<ParamSeed> = {},
  ) => ({
    path,
    value,
    type,
    writable,
    ...more,
  });
  const r = 'InternetGatewayDevice.';
  return [
    s(`${r}DeviceInfo.Manufacturer`, '', 'string'),
    s(`${r}DeviceInfo.ManufacturerOUI`, '', 'string'),
    s(`${r}DeviceInfo.ModelName`, '', 'string'),
    s(`${r}DeviceInfo.ProductClass`, '', 'string'),
    s(`${r}DeviceInfo.SerialNumber`, '', 'string'),
    s(`${r}DeviceInfo.HardwareVersion`, '', 'string'),
    s(`${r}DeviceInfo.SoftwareVersion`, '', 'string'),
    s(`${r}DeviceInfo.ProvisioningCode`, '', 'string', true, { maxLength: 64 }),
    s(`${r}DeviceInfo.UpTime`, '0', 'unsignedInt'),
    s(`${r}ManagementServer.URL`, '', 'string', true),
    s(`${r}ManagementServer.PeriodicInformEnable`, 'true', 'boolean', true),
    s(`${r}ManagementServer.PeriodicInformInterval`, '3600', 'unsignedInt', true, { range: [1, 4294967295] }),
    s(`${r}ManagementServer.ParameterKey`, '', 'string'),
    s(`${r}ManagementServer.ConnectionRequestURL`, '', 'string'),
    s(`${r}ManagementServer.ConnectionRequestUsername`, '', 'string', true),
    s(`${r}ManagementServer.UDPConnectionRequestAddress`, '', 'string'),
    s(`${r}LANDevice.1.WLANConfiguration.1.Enable`, 'true', 'boolean', true),
    s(`${r}LANDevice.1.WLANConfiguration.1.SSID`, 'legacy', 'string', true, { maxLength: 32 }),
    s(`${r}LANDevice.1.WLANConfiguration.1.Channel`, '11', 'unsignedInt', true, { range: [1, 13] }),
    s(`${r}WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress`, '0.0.0.0', 'string'),
    s(`${r}Layer3Forwarding.ForwardingNumberOfEntries`, '1', 'unsignedInt'),
    s(`${r}Layer3Forwarding.Forwarding.1.Enable`, 'false', 'boolean', true),
  ];
}

export const MODELS: ModelSpec[] = [
  {
    key: 'hgw500',
    manufacturer: 'Acme Networks',
    oui: '00A0C9',
    productClass: 'HGW-500',
    modelName: 'HGW-500',
    hardwareVersion: 'r2',
    root: 'Device.',
    dualBank: true,
    firmwares: ['2.1.0', '2.2.0', '3.0.0'],
    defaultFirmware: '2.1.0',
    drift: {
      // 3.0.0 narrows the 2.4 GHz channel range and changes the default interval (a drift scenario).
      '3.0.0': {
        params: {
          'Device.WiFi.Radio.1.Channel': { range: [1, 11] },
          'Device.ManagementServer.PeriodicInformInterval': { value: '1800' },
        },
        added: [{ path: 'Device.DeviceInfo.X_ACME_Telemetry', value: 'off', type: 'string', writable: true }],
      },
    },
    seeds: tr181Seeds(),
  },
  {
    key: 'ontx1',
    manufacturer: 'Borealis',
    oui: '3C9066',
    productClass: 'ONT-X1',
    modelName: 'ONT-X1',
    hardwareVersion: 'A',
    root: 'Device.',
    dualBank: true,
    firmwares: ['1.4.2', '1.5.0'],
    defaultFirmware: '1.4.2',
    drift: {
      '1.5.0': { params: { 'Device.WiFi.Radio.1.TransmitPower': { range: [0, 100] } } },
    },
    seeds: tr181Seeds([
      { path: 'Device.Optical.Interface.1.Status', value: 'Up', type: 'string', writable: false },
      {
        path: 'Device.Optical.Interface.1.OpticalSignalLevel',
        value: '-18500',
        type: 'int',
        writable: false,
      },
    ]),
  },
  {
    key: 'gw98',
    manufacturer: 'OldCo',
    oui: '001E58',
    productClass: 'GW98',
    modelName: 'Legacy GW98',
    hardwareVersion: '1',
    root: 'InternetGatewayDevice.',
    dualBank: false,
    firmwares: ['5.0.1', '5.0.2'],
    defaultFirmware: '5.0.1',
    drift: {},
    seeds: tr098Seeds(),
  },
];

export function modelByKey(key: string): ModelSpec {
  const m = MODELS.find((x) => x.key === key);
  if (!m) throw new Error(`unknown simulated model "${key}" (known: ${MODELS.map((x) => x.key).join(', ')})`);
  return m;
}

/** The parameter tree of a model on a given firmware, with the firmware's drift applied. */
export function treeFor(model: ModelSpec, firmware: string): Map<string, ParamSeed> {
  const tree = new Map<string, ParamSeed>(model.seeds.map((p) => [p.path, { ...p }]));
  const drift = model.drift[firmware];
  if (drift) {
    for (const [path, change] of Object.entries(drift.params ?? {})) {
      const cur = tree.get(path);
      if (cur) tree.set(path, { ...cur, ...change });
    }
    for (const p of drift.added ?? []) tree.set(p.path, { ...p });
    for (const p of drift.removed ?? []) tree.delete(p);
  }
  return tree;
}

/** Image file served by the simulator's file server: a small header naming model and version. */
export function imageBytes(model: ModelSpec, version: string, size = 4096): Buffer {
  const header = Buffer.from(`FBIMG\n${model.productClass}\n${version}\n`);
  const buf = Buffer.alloc(Math.max(size, header.length), 0x5a);
  header.copy(buf);
  return buf;
}

export function imageFileName(model: ModelSpec, version: string): string {
  return `${model.key}-${version}.img`;
}

export function sha256Hex(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Parse an image header; null when the bytes are not a simulator image (corrupt download). */
export function parseImage(buf: Buffer): { productClass: string; version: string } | null {
  const text = buf.subarray(0, 128).toString('latin1');
  const m = /^FBIMG\n([^\n]+)\n([^\n]+)\n/.exec(text);
  return m ? { productClass: m[1]!, version: m[2]! } : null;
}
