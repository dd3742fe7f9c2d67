import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCoreSchema } from './compiled.js';
import { corpusDir, repoRoot } from './corpus.js';
import { importDataModel } from './importer.js';
import type { CompiledSchema, ValidationCode } from './types.js';
import { validate, validatorFor } from './validator.js';

const fixtures = path.join(repoRoot, 'datamodel', 'fixtures');
const D = 'Device.X_ACME_Diagnostics.';

let acme: CompiledSchema;
beforeAll(() => {
  acme = importDataModel(path.join(fixtures, 'acme-hgw-ext-1.xml'), { searchPath: [corpusDir()] });
});

function check(p: string, value: string | number | boolean) {
  const r = validate(acme, [{ path: p, value }]).results[0];
  if (!r) throw new Error('no result');
  return r;
}

// [parameter, value, expected code] — every primitive and named type, valid and invalid.
const cases: Array<[string, string | number | boolean, ValidationCode]> = [
  // boolean forms
  ['Verbose', 'true', 'ok'],
  ['Verbose', 'false', 'ok'],
  ['Verbose', '1', 'ok'],
  ['Verbose', '0', 'ok'],
  ['Verbose', true, 'ok'],
  ['Verbose', 'yes', 'wrong_type'],
  ['Verbose', 'TRUE', 'wrong_type'],
  // int with OR-ed ranges and a step
  ['TxPowerAdjust', '-10', 'ok'],
  ['TxPowerAdjust', '10', 'ok'],
  ['TxPowerAdjust', '25', 'ok'],
  ['TxPowerAdjust', '22', 'range'],
  ['TxPowerAdjust', '11', 'range'],
  ['TxPowerAdjust', '-11', 'range'],
  ['TxPowerAdjust', '1.5', 'wrong_type'],
  ['TxPowerAdjust', '2147483648', 'wrong_type'],
  ['TxPowerAdjust', '', 'wrong_type'],
  // unsignedInt through a named dataType chain (AcmeInterval -> _AcmeSeconds)
  ['UploadInterval', '60', 'ok'],
  ['UploadInterval', 86400, 'ok'],
  ['UploadInterval', '59', 'range'],
  ['UploadInterval', '-1', 'wrong_type'],
  ['UploadInterval', '4294967296', 'wrong_type'],
  ['UploadInterval', 'sixty', 'wrong_type'],
  // unsignedLong / long
  ['ByteBudget', '18446744073709551615', 'ok'],
  ['ByteBudget', '18446744073709551616', 'wrong_type'],
  ['ByteBudget', '-1', 'wrong_type'],
  ['ClockOffset', '-9223372036854775808', 'ok'],
  ['ClockOffset', '9223372036854775807', 'ok'],
  ['ClockOffset', '9223372036854775808', 'wrong_type'],
  // decimal
  ['TemperatureThreshold', '-12.75', 'ok'],
  ['TemperatureThreshold', '1e3', 'wrong_type'],
  // dateTime
  ['NextMaintenance', '2025-03-01T02:00:00Z', 'ok'],
  ['NextMaintenance', '2025-03-01T02:00:00.123+01:00', 'ok'],
  ['NextMaintenance', '0001-01-01T00:00:00Z', 'ok'],
  ['NextMaintenance', '2025-13-01T02:00:00Z', 'wrong_type'],
  ['NextMaintenance', '2025-03-01 02:00:00', 'wrong_type'],
  // hexBinary with a size in bytes
  ['CalibrationBlob', '00ff10AB', 'ok'],
  ['CalibrationBlob', 'abc', 'wrong_type'],
  ['CalibrationBlob', 'zz', 'wrong_type'],
  ['CalibrationBlob', 'ab'.repeat(17), 'size'],
  // base64 with a size in bytes
  ['CertificateBundle', 'QUJDRA==', 'ok'],
  ['CertificateBundle', 'QUJD!A==', 'wrong_type'],
  ['CertificateBundle', 'QUJDRA=', 'wrong_type'],
  ['CertificateBundle', 'QUJDREVGR0hJSktMTU5P', 'size'],
  // string: enumeration, pattern, size (min and max)
  ['LogLevel', 'Debug', 'ok'],
  ['LogLevel', 'debug', 'enumeration'],
  ['FactoryId', 'AB1234', 'ok'],
  ['FactoryId', 'ab1234', 'pattern'],
  ['FactoryId', 'AB1', 'size'],
  ['FactoryId', 'AB12345678901234567', 'size'],
  ['SupportPassword', 'x'.repeat(64), 'ok'],
  ['SupportPassword', 'x'.repeat(65), 'size'],
  // named address types
  ['RemoteSyslogServer', '192.0.2.10', 'ok'],
  ['RemoteSyslogServer', '', 'ok'],
  ['RemoteSyslogServer', '256.0.2.10', 'pattern'],
  ['RemoteSyslogServer', '2001:db8::1', 'pattern'],
  ['CollectorAddress', '2001:db8::1', 'ok'],
  ['CollectorAddress', '198.51.100.7', 'ok'],
  ['CollectorAddress', 'collector.example', 'wrong_type'],
  ['CollectorIPv6', 'fe80::1', 'ok'],
  ['CollectorIPv6', '10.0.0.1', 'wrong_type'],
  ['ManagedMAC', '00:11:22:aa:BB:cc', 'ok'],
  ['ManagedMAC', '00-11-22-aa-bb-cc', 'pattern'],
  // list of unsignedInt with item count, list size and item range
  ['AllowedVLANs', '1,10,4094', 'ok'],
  ['AllowedVLANs', '', 'list_items'],
  ['AllowedVLANs', '1,2,3,4,5,6,7,8,9', 'list_items'],
  ['AllowedVLANs', '1,4095', 'range'],
  ['AllowedVLANs', '1,x', 'wrong_type'],
  ['AllowedVLANs', Array(13).fill('4000').join(','), 'list_items'],
];

describe('types and facets (table-driven)', () => {
  it.each(cases)('%s = %j -> %s', (param, value, code) => {
    const r = check(D + param, value);
    expect(r.code).toBe(code);
    expect(r.ok).toBe(code === 'ok');
    expect(r.fault).toBe(code === 'ok' ? null : 9007);
    if (code !== 'ok') expect(r.message).toContain(`${D}${param}`);
  });

  it('messages name the constraint', () => {
    expect(check(`${D}UploadInterval`, '59').message).toMatch(/range \[60\.\.86400\]/);
    expect(check(`${D}LogLevel`, 'x').message).toMatch(
      /enumeration: expected one of Error, Warning, Info, Debug/,
    );
    expect(check(`${D}FactoryId`, 'AB1').message).toMatch(/size \[4\.\.16\]/);
    expect(check(`${D}FactoryId`, 'ab1234').message).toMatch(/pattern \[A-Z\]\{2\}\[0-9\]\+/);
    expect(check(`${D}AllowedVLANs`, '').message).toMatch(/expected 1\.\.8/);
    expect(check(`${D}TxPowerAdjust`, 'x').message).toMatch(/expected int/);
  });
});

describe('paths, instances and access', () => {
  it('accepts {i} tables with any valid instance number or alias', () => {
    for (const p of [`${D}Probe.1.Host`, `${D}Probe.4294967295.Host`, `${D}Probe.[cpe-probe].Host`]) {
      expect(check(p, 'example.net')).toMatchObject({ ok: true, schemaPath: `${D}Probe.{i}.Host` });
    }
  });

  it.each([
    [`${D}Probe.0.Host`, 'bad_instance_number'],
    [`${D}Probe.01.Host`, 'bad_instance_number'],
    [`${D}Probe.4294967296.Host`, 'bad_instance_number'],
    [`${D}Probe..Host`, 'bad_instance_number'],
    [`${D}Probe.[].Host`, 'bad_instance_number'],
    [`${D}Probe.Host`, 'unknown_path'],
    [`${D}Probe.1.X_Nope`, 'unknown_path'],
    [`${D}Probe.1.`, 'unknown_path'],
    ['Device.WiFi.SSID.1.SSID.Extra', 'unknown_path'],
  ])('%s -> %s (9005)', (p, code) => {
    const r = check(p, 'x');
    expect(r.code).toBe(code);
    expect(r.fault).toBe(9005);
  });

  it('refuses readOnly parameters with 9008', () => {
    const r = check(`${D}LastUpload`, '2025-01-01T00:00:00Z');
    expect(r).toMatchObject({ code: 'not_writable', fault: 9008 });
    expect(r.message).toMatch(/readOnly/);
    expect(check('Device.DeviceInfo.SoftwareVersion', '1.0')).toMatchObject({
      code: 'not_writable',
      fault: 9008,
    });
  });

  it('refuses a writeOnceReadOnly parameter that is already set', () => {
    const s = importDataModel(path.join(corpusDir(), 'tr-181-2-17-0-cwmp-full.xml'));
    const p = Object.entries(s.params).find(([, d]) => d.access === 'writeOnceReadOnly')?.[0] as string;
    const concrete = p.replace(/\{i\}/g, '1');
    const v = validatorFor(s);
    const unset = v.validate([{ path: concrete, value: 'x' }], { currentValue: () => '' }).results[0];
    expect(unset?.code).not.toBe('write_once');
    const set = v.validate([{ path: concrete, value: 'x' }], { currentValue: () => 'already' }).results[0];
    expect(set).toMatchObject({ code: 'write_once', fault: 9008 });
    // the fixture's FactoryId works the same way
    expect(
      validate(acme, [{ path: `${D}FactoryId`, value: 'AB1234' }], { currentValue: () => 'CD99' }).results[0]
        ?.code,
    ).toBe('write_once');
  });

  it('flags secured parameters for the policy layer and never echoes their values', () => {
    const r = check(`${D}SupportPassword`, 'hunter2'.repeat(20));
    expect(r.secured).toBe(true);
    expect(r.message).not.toContain('hunter2');
    expect(check(`${D}SupportPassword`, 'ok').secured).toBe(true);
    expect(check(`${D}LogLevel`, 'Info').secured).toBe(false);
    expect(validatorFor(acme).isSecured('Device.WiFi.AccessPoint.3.Security.KeyPassphrase')).toBe(true);
  });

  it('validates vendor X_ extensions on standard objects', () => {
    expect(check('Device.WiFi.Radio.2.X_ACME_BeamForming', 'false').ok).toBe(true);
    expect(check('Device.WiFi.Radio.2.X_ACME_BeamForming', 'maybe').code).toBe('wrong_type');
    expect(check('Device.WiFi.Radio.2.X_OTHER_Thing', '1').code).toBe('unknown_path');
  });

  it('checks object additions and deletions', () => {
    const r = validate(acme, [
      { op: 'add', path: `${D}Probe.` },
      { op: 'delete', path: `${D}Probe.3.` },
      { op: 'add', path: 'Device.WiFi.Radio.' },
      { op: 'add', path: `${D}` },
      { op: 'add', path: 'Device.Nope.' },
      { op: 'delete', path: `${D}Probe.0.` },
      { op: 'delete', path: `${D}Probe.` },
    ]).results;
    expect(r.map((x) => x.code)).toEqual([
      'ok',
      'ok',
      'not_writable',
      'not_a_table',
      'unknown_path',
      'bad_instance_number',
      'not_a_table',
    ]);
    expect(r[2]?.fault).toBe(9008);
  });

  it('reports per item, in order, with an overall verdict', () => {
    const rep = validate(acme, [
      { path: `${D}LogLevel`, value: 'Info' },
      { path: `${D}LogLevel`, value: 'Loud' },
    ]);
    expect(rep.ok).toBe(false);
    expect(rep.invalid).toBe(1);
    expect(rep.results.map((r) => r.index)).toEqual([0, 1]);
  });
});

describe('shipped core schema', () => {
  it('refuses readOnly enumeration values (DiagnosticsState=Complete) but accepts Requested', () => {
    const s = loadCoreSchema('tr-181-2-19-1-cwmp');
    const r = validate(s, [
      { path: 'Device.IP.Diagnostics.IPPing.DiagnosticsState', value: 'Requested' },
      { path: 'Device.IP.Diagnostics.IPPing.DiagnosticsState', value: 'Complete' },
    ]).results;
    expect(r.map((x) => x.code)).toEqual(['ok', 'enumeration']);
    expect(r[1]?.message).toMatch(/readOnly enumeration value/);
  });

  it('validates TR-181 2.19.1 CWMP paths', () => {
    const s = loadCoreSchema('tr-181-2-19-1-cwmp');
    const r = validate(s, [
      { path: 'Device.ManagementServer.PeriodicInformInterval', value: '3600' },
      { path: 'Device.ManagementServer.PeriodicInformInterval', value: '0' },
      { path: 'Device.WiFi.SSID.2.SSID', value: 'home' },
      { path: 'Device.WiFi.SSID.2.SSID', value: 'x'.repeat(33) },
      { path: 'Device.IP.Interface.1.IPv4Address.2.IPAddress', value: '10.1.2.3' },
      { path: 'Device.IP.Interface.1.IPv4Address.2.IPAddress', value: '10.1.2' },
    ]).results.map((x) => x.code);
    expect(r).toEqual(['ok', 'range', 'ok', 'size', 'ok', 'pattern']);
  });
});
