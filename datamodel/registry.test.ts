import { describe, expect, it } from 'vitest';
import { loadCoreSchema } from './compiled.js';
import { type ParameterInfo, schemaFromParameterNames, schemaFromSupportedDM } from './discovered.js';
import { compareVersions, MemorySchemaStore, SchemaRegistry } from './registry.js';
import { validate } from './validator.js';

const core = loadCoreSchema('tr-181-2-19-1-cwmp');
const key = (softwareVersion: string) => ({ oui: '00D09E', productClass: 'HGW-500', softwareVersion });
const write = [
  { path: 'Device.ManagementServer.PeriodicInformInterval', value: '600' },
  { path: 'Device.ManagementServer.PeriodicInformInterval', value: '0' },
];

// What a CPE answers to GetParameterNames("Device.", false): concrete paths with instance numbers.
const gpn: ParameterInfo[] = [
  { name: 'Device.', writable: false },
  { name: 'Device.DeviceInfo.', writable: false },
  { name: 'Device.DeviceInfo.SoftwareVersion', writable: false },
  { name: 'Device.DeviceInfo.ProvisioningCode', writable: true },
  { name: 'Device.ManagementServer.', writable: false },
  { name: 'Device.ManagementServer.PeriodicInformInterval', writable: true },
  { name: 'Device.WiFi.SSID.', writable: true },
  { name: 'Device.WiFi.SSID.1.', writable: true },
  { name: 'Device.WiFi.SSID.1.SSID', writable: true },
  { name: 'Device.WiFi.SSID.1.BSSID', writable: false },
  { name: 'Device.WiFi.SSID.2.', writable: true },
  { name: 'Device.WiFi.SSID.2.SSID', writable: true },
  { name: 'Device.X_VENDOR_Led.', writable: false },
  { name: 'Device.X_VENDOR_Led.Brightness', writable: true },
];

describe('registry', () => {
  it('exact match authorises writes and validates normally', async () => {
    const r = new SchemaRegistry();
    await r.register(key('2.0.1'), core);
    const rep = r.validateForDevice(key('2.0.1'), write);
    expect(rep.schemaMatch).toBe('exact');
    expect(rep.results.map((x) => x.code)).toEqual(['ok', 'range']);
  });

  it('a nearest-version fallback is readable but every write against it fails', async () => {
    const r = new SchemaRegistry();
    await r.register(key('2.0.1'), core);
    await r.register(key('1.9.0'), core);
    await r.register(key('3.0.0'), core);
    const res = r.resolve(key('2.0.5'));
    expect(res.match).toBe('fallback');
    if (res.match === 'fallback') expect(res.entry.key.softwareVersion).toBe('2.0.1');
    // only newer versions known: the nearest newer one
    const r2 = new SchemaRegistry();
    await r2.register(key('3.0.0'), core);
    await r2.register(key('2.10.0'), core);
    const res2 = r2.resolve(key('2.9'));
    expect(res2.match === 'fallback' && res2.entry.key.softwareVersion).toBe('2.10.0');

    const rep = r.validateForDevice(key('2.0.5'), write);
    expect(rep.schemaMatch).toBe('fallback');
    expect(rep.ok).toBe(false);
    expect(rep.results.every((x) => !x.ok && x.code === 'fallback_schema')).toBe(true);
    expect(rep.results.map((x) => x.fallbackCode)).toEqual(['ok', 'range']);
    expect(rep.results[0]?.message).toMatch(
      /fallback data model \(software 2\.0\.1\).*never authorises a write/,
    );
  });

  it('no schema: every write item fails closed with no_schema', () => {
    const r = new SchemaRegistry();
    const rep = r.validateForDevice({ oui: 'ABCDEF', productClass: 'X', softwareVersion: '1' }, write);
    expect(rep.schemaMatch).toBe('none');
    expect(rep.results.map((x) => x.code)).toEqual(['no_schema', 'no_schema']);
    expect(rep.results[0]?.message).toMatch(/GetParameterNames/);
    // a different product class is not a fallback
    expect(r.resolve({ oui: '00D09E', productClass: 'OTHER', softwareVersion: '2.0.1' }).match).toBe('none');
  });

  it('persists through the store interface', async () => {
    const store = new MemorySchemaStore();
    const a = new SchemaRegistry(store);
    const entry = await a.register(key('2.0.1'), core, 'xml');
    const b = new SchemaRegistry(store);
    expect(b.resolve(key('2.0.1')).match).toBe('none');
    await b.load();
    const res = b.resolve(key('2.0.1'));
    expect(res.match).toBe('exact');
    expect(res.match === 'exact' && res.entry.schemaId).toBe(entry.schemaId);
  });

  it('orders versions numerically', () => {
    expect(compareVersions('1.10.0', '1.9.9')).toBeGreaterThan(0);
    expect(compareVersions('2.0', '2.0.1')).toBeLessThan(0);
    expect(compareVersions('V1.2b', 'V1.2b')).toBe(0);
  });
});

describe('schemas built from what a device reports', () => {
  it('GetParameterNames: paths, {i} tables and writability; types from a reference model', async () => {
    const s = schemaFromParameterNames(gpn, { reference: core });
    expect(s.sources).toEqual(['gpn']);
    expect(s.objects['Device.WiFi.SSID.{i}.']).toMatchObject({ table: true, access: 'readWrite' });
    expect(s.params['Device.WiFi.SSID.{i}.SSID']?.t.sizes).toEqual([{ max: 32 }]);
    expect(s.params['Device.X_VENDOR_Led.Brightness']).toMatchObject({ inferred: true, access: 'readWrite' });
    const rep = validate(s, [
      { path: 'Device.WiFi.SSID.7.SSID', value: 'guest' },
      { path: 'Device.WiFi.SSID.7.SSID', value: 'x'.repeat(40) },
      { path: 'Device.WiFi.SSID.1.BSSID', value: '00:11:22:33:44:55' },
      { path: 'Device.X_VENDOR_Led.Brightness', value: '50' },
      { path: 'Device.WiFi.Radio.1.Enable', value: 'true' },
      { op: 'add', path: 'Device.WiFi.SSID.' },
    ]);
    expect(rep.results.map((x) => x.code)).toEqual([
      'ok',
      'size',
      'not_writable',
      'ok',
      'unknown_path',
      'ok',
    ]);

    // this is how a new (model, firmware) becomes writable
    const r = new SchemaRegistry();
    expect(r.validateForDevice(key('9.9'), write).results[0]?.code).toBe('no_schema');
    await r.register(key('9.9'), s, 'gpn');
    expect(r.validateForDevice(key('9.9'), write).results.map((x) => x.code)).toEqual(['ok', 'range']);
  });

  it('GetParameterNames without a reference: untyped but path- and access-checked', () => {
    const s = schemaFromParameterNames(gpn);
    const rep = validate(s, [
      { path: 'Device.ManagementServer.PeriodicInformInterval', value: 'anything' },
      { path: 'Device.DeviceInfo.SoftwareVersion', value: '1' },
      { path: 'Device.Nope', value: '1' },
    ]);
    expect(rep.results.map((x) => x.code)).toEqual(['ok', 'not_writable', 'unknown_path']);
    expect(() => schemaFromParameterNames([{ name: 'Device.WiFi.SSID.01.SSID', writable: true }])).toThrow(
      /malformed/,
    );
  });

  it('USP GetSupportedDM: types as reported, facets from the reference when types agree', () => {
    const s = schemaFromSupportedDM(
      {
        supported_objs: [
          {
            supported_obj_path: 'Device.WiFi.SSID.{i}.',
            access: 'OBJ_ADD_DELETE',
            is_multi_instance: true,
            supported_params: [
              { param_name: 'Enable', access: 'PARAM_READ_WRITE', value_type: 'PARAM_BOOLEAN' },
              { param_name: 'SSID', access: 'PARAM_READ_WRITE', value_type: 'PARAM_STRING' },
              { param_name: 'X_VENDOR_TxPower', access: 'PARAM_READ_WRITE', value_type: 'PARAM_INT' },
              { param_name: 'LastChange', access: 'PARAM_READ_ONLY', value_type: 'PARAM_UNSIGNED_INT' },
            ],
            supported_commands: [],
            supported_events: [],
          },
          {
            supported_obj_path: 'Device.',
            access: 'OBJ_READ_ONLY',
            is_multi_instance: false,
            supported_params: [],
            supported_commands: [
              {
                command_name: 'Reboot()',
                command_type: 'CMD_SYNC',
                input_arg_names: [],
                output_arg_names: [],
              },
            ],
            supported_events: [{ event_name: 'Boot!', arg_names: ['CommandKey', 'Cause'] }],
          },
        ],
      },
      { reference: loadCoreSchema('tr-181-2-19-1-usp') },
    );
    expect(s.protocol).toBe('usp');
    expect(s.commands['Device.Reboot()']?.async).toBe(false);
    expect(Object.keys(s.events['Device.Boot!']?.args.params ?? {})).toEqual(['CommandKey', 'Cause']);
    const rep = validate(s, [
      { path: 'Device.WiFi.SSID.3.Enable', value: 'on' },
      { path: 'Device.WiFi.SSID.3.SSID', value: 'x'.repeat(33) },
      { path: 'Device.WiFi.SSID.3.X_VENDOR_TxPower', value: '-3' },
      { path: 'Device.WiFi.SSID.3.X_VENDOR_TxPower', value: 'high' },
      { path: 'Device.WiFi.SSID.3.LastChange', value: '1' },
      { op: 'delete', path: 'Device.WiFi.SSID.3.' },
    ]);
    expect(rep.results.map((x) => x.code)).toEqual([
      'wrong_type',
      'size',
      'ok',
      'wrong_type',
      'not_writable',
      'ok',
    ]);
  });
});
