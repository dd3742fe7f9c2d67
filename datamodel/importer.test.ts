import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusDir, repoRoot } from './corpus.js';
import { countModularModel } from './independent-count.js';
import { importClosure, importDataModel } from './importer.js';
import { SchemaRegistry } from './registry.js';
import { registerFromXml } from './register-xml.js';
import type { CompiledSchema } from './types.js';
import { DataModelImportError } from './xml.js';

const corpus = corpusDir();
const fixtures = path.join(repoRoot, 'datamodel', 'fixtures');
const modular = path.join(corpus, 'modular-2-19-1');

/** Reads the expected counts for a full file from the corpus README's file table. */
function readmeCounts(file: string) {
  const readme = readFileSync(path.join(corpus, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith(`| ${file} |`));
  if (!line) throw new Error(`README has no row for ${file}`);
  const n = (re: RegExp) => {
    const m = re.exec(line);
    return m ? Number((m[1] as string).replace(/,/g, '')) : 0;
  };
  return {
    objects: n(/([\d,]+) objects/),
    tables: n(/\(([\d,]+)(?: of them)? (?:`\{i\}` )?tables\)/),
    parameters: n(/([\d,]+) parameters/),
    commands: n(/([\d,]+) commands/),
    events: n(/([\d,]+) events/),
  };
}

function counts(s: CompiledSchema) {
  const objs = Object.keys(s.objects);
  return {
    objects: objs.length,
    tables: objs.filter((o) => o.endsWith('{i}.')).length,
    parameters: Object.keys(s.params).length,
    commands: Object.keys(s.commands).length,
    events: Object.keys(s.events).length,
  };
}

describe('full files match the corpus README', () => {
  it.each(['tr-181-2-17-0-cwmp-full.xml', 'tr-181-2-16-0-usp-full.xml'])('%s', (file) => {
    const expected = readmeCounts(file);
    expect(expected.objects).toBeGreaterThan(0);
    const s = importDataModel(path.join(corpus, file));
    expect(counts(s)).toEqual(expected);
    expect(s.protocol).toBe(file.includes('usp') ? 'usp' : 'cwmp');
  });
});

describe('Device:2.17 CWMP details', () => {
  let s: CompiledSchema;
  beforeAll(() => {
    s = importDataModel(path.join(corpus, 'tr-181-2-17-0-cwmp-full.xml'));
  });

  it('keeps forcedInform, writeOnceReadOnly, secured and merged dataType facets', () => {
    const forced = Object.entries(s.params)
      .filter(([, p]) => p.forcedInform)
      .map(([k]) => k);
    expect(forced).toContain('Device.ManagementServer.ParameterKey');
    expect(forced).toContain('Device.DeviceInfo.SoftwareVersion');
    expect(forced).toHaveLength(7);
    // the README states 234 writeOnceReadOnly parameters in CWMP 2.17
    expect(Object.values(s.params).filter((p) => p.access === 'writeOnceReadOnly')).toHaveLength(234);
    expect(s.params['Device.WiFi.AccessPoint.{i}.Security.KeyPassphrase']?.secured).toBe(true);
    expect(s.params['Device.ManagementServer.Password']?.hidden).toBe(true);
    const ip = s.params['Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress'];
    expect(ip?.t.named?.[0]).toBe('IPv4Address');
    expect(ip?.t.sizes).toEqual([{ max: 15 }]);
    expect(ip?.t.patterns?.some((p) => p.includes('25[0-5]'))).toBe(true); // &octet; entity expanded
    const ssid = s.objects['Device.WiFi.SSID.{i}.'];
    expect(ssid?.table).toBe(true);
    expect(ssid?.uniqueKeys?.some((k) => k.params.includes('Name'))).toBe(true);
    expect(s.params['Device.ManagementServer.EnableCWMP']?.default).toEqual({
      type: 'factory',
      value: 'true',
    });
    expect(Object.values(s.params).some((p) => p.t.list !== undefined)).toBe(true);
    expect(Object.values(s.params).some((p) => p.status === 'deprecated')).toBe(true);
    expect(Object.values(s.params).some((p) => p.command)).toBe(true);
  });
});

describe('Device:2.16 USP commands and events', () => {
  it('imports Download() with its input arguments and Boot! with its arguments', () => {
    const s = importDataModel(path.join(corpus, 'tr-181-2-16-0-usp-full.xml'));
    const dl = s.commands['Device.DeviceInfo.FirmwareImage.{i}.Download()'];
    expect(dl?.async).toBe(true);
    expect(Object.keys(dl?.input.params ?? {})).toEqual(
      expect.arrayContaining([
        'URL',
        'AutoActivate',
        'Username',
        'Password',
        'FileSize',
        'CheckSumAlgorithm',
        'CheckSum',
      ]),
    );
    expect(dl?.input.params.URL?.mandatory).toBe(true);
    expect(s.commands['Device.Reboot()']?.async).toBe(false);
    expect(Object.keys(s.events['Device.Boot!']?.args.params ?? {})).toEqual(
      expect.arrayContaining(['CommandKey', 'Cause', 'FirmwareUpdated', 'ParameterMap']),
    );
    expect(s.params['Device.WiFi.SSID.{i}.Alias']?.t.sizes).toEqual([{ max: 64 }]);
  });
});

describe('modular 2.19.1 entry points', () => {
  const cases = [
    { entry: 'tr-181-2-19-1-cwmp.xml', closure: 94 },
    { entry: 'tr-181-2-19-1-usp.xml', closure: 97 },
  ];
  it.each(cases)('$entry matches an independent count over its import closure', ({ entry, closure }) => {
    const file = path.join(modular, entry);
    const independent = countModularModel(file);
    expect(independent.files).toBe(closure);
    expect(importClosure(file)).toHaveLength(closure);
    const s = importDataModel(file);
    expect(s.sources).toHaveLength(closure);
    expect(new Set(Object.keys(s.objects))).toEqual(independent.objects);
    expect(new Set(Object.keys(s.params))).toEqual(independent.params);
    expect(new Set(Object.keys(s.commands))).toEqual(independent.commands);
    expect(new Set(Object.keys(s.events))).toEqual(independent.events);
    expect(independent.objects.size).toBeGreaterThan(800);
  });

  it('every 2.17 CWMP path not marked deleted exists in the 2.19.1 CWMP model', () => {
    const a = importDataModel(path.join(corpus, 'tr-181-2-17-0-cwmp-full.xml'));
    const b = importDataModel(path.join(modular, 'tr-181-2-19-1-cwmp.xml'));
    const missing: string[] = [];
    for (const [p, o] of Object.entries(a.objects))
      if (o.status !== 'deleted' && !b.objects[p]) missing.push(p);
    for (const [p, d] of Object.entries(a.params)) {
      const parentDeleted = a.objects[p.slice(0, p.lastIndexOf('.') + 1)]?.status === 'deleted';
      if (d.status !== 'deleted' && !parentDeleted && !b.params[p]) missing.push(p);
    }
    expect(missing).toEqual([]);
    // 2.19 turned CWMP writeOnceReadOnly into readOnly
    expect(Object.values(b.params).filter((p) => p.access === 'writeOnceReadOnly')).toHaveLength(0);
    expect(b.params['Device.WiFi.SSID.{i}.Alias']?.t.named).toContain('_AliasCWMP');
  });
});

describe('vendor, device-type and TR-098 inputs', () => {
  const opts = { searchPath: [corpus] };
  it('imports a vendor X_ extension on top of the standard model', () => {
    const s = importDataModel(path.join(fixtures, 'acme-hgw-ext-1.xml'), opts);
    expect(s.model).toBe('Device:2.17');
    expect(s.protocol).toBe('cwmp');
    expect(s.objects['Device.X_ACME_Diagnostics.Probe.{i}.']).toMatchObject({
      table: true,
      access: 'readWrite',
      maxEntries: 4,
    });
    expect(s.params['Device.WiFi.Radio.{i}.X_ACME_BeamForming']?.t.base).toBe('boolean');
    // dataType chain AcmeInterval -> _AcmeSeconds: derived range replaces, units inherited
    expect(s.params['Device.X_ACME_Diagnostics.UploadInterval']?.t).toMatchObject({
      base: 'unsignedInt',
      ranges: [{ min: 60, max: 86400 }],
      units: 'seconds',
      named: ['AcmeInterval', '_AcmeSeconds'],
    });
    expect(s.params['Device.X_ACME_Diagnostics.SupportPassword']).toMatchObject({
      secured: true,
      hidden: true,
    });
    // the standard model is all there too
    expect(Object.keys(s.params).length).toBeGreaterThan(6483);
  });

  it('imports a device-type subset with narrowed access and facets', () => {
    const s = importDataModel(path.join(fixtures, 'acme-hgw-dt-1.xml'), opts);
    expect(Object.keys(s.params)).toHaveLength(11);
    expect(s.params['Device.ManagementServer.URL']?.access).toBe('readOnly');
    expect(s.params['Device.ManagementServer.PeriodicInformInterval']?.t.ranges).toEqual([
      { min: 60, max: 86400 },
    ]);
    expect(s.params['Device.X_ACME_Diagnostics.LogLevel']?.t.enums).toContain('Debug');
    expect(s.params['Device.WiFi.SSID.{i}.BSSID']).toBeUndefined();
  });

  it('imports a TR-098 InternetGatewayDevice model with components inside objects', () => {
    const s = importDataModel(path.join(fixtures, 'tr-098-igd-mini.xml'));
    expect(s.root).toBe('InternetGatewayDevice.');
    expect(s.model).toBe('InternetGatewayDevice:1.14');
    expect(
      s.params[
        'InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}.PortMapping.{i}.ExternalPort'
      ]?.t.ranges,
    ).toEqual([{ min: 0, max: 65535 }]);
    expect(s.params['InternetGatewayDevice.LANDevice.{i}.WLANConfiguration.{i}.KeyPassphrase']?.secured).toBe(
      true,
    );
  });
});

describe('malformed input fails with file, line and expectation; nothing is registered', () => {
  const key = { oui: '00D09E', productClass: 'HGW', softwareVersion: '1.0' };

  it('a truncated full file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-dm-'));
    const text = readFileSync(path.join(corpus, 'tr-181-2-17-0-cwmp-full.xml'), 'utf8');
    const cut = text.slice(0, Math.floor(text.length / 2));
    writeFileSync(path.join(dir, 'truncated.xml'), cut);
    const registry = new SchemaRegistry();
    const err = (() => {
      try {
        registerFromXml(registry, key, path.join(dir, 'truncated.xml'));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(DataModelImportError);
    const e = err as DataModelImportError;
    expect(e.file).toBe('truncated.xml');
    expect(e.line).toBeGreaterThan(0);
    expect(e.line).toBe(cut.split('\n').length);
    expect(e.message).toMatch(
      /truncated\.xml:\d+: malformed XML: unexpected end of file, expected <\/\w+> to close/,
    );
    expect(registry.list()).toEqual([]);
    expect(registry.resolve(key).match).toBe('none');
  });

  it('a mismatched closing tag names the line and the expected tag', () => {
    expect(() => importDataModel(path.join(fixtures, 'malformed-mismatched.xml'))).toThrowError(
      /malformed-mismatched\.xml:8: .*Expected closing tag 'parameter'/,
    );
  });

  it('a broken file deep in an import closure names that file, and the registry stays empty', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-dm-'));
    copyFileSync(path.join(fixtures, 'acme-hgw-ext-1.xml'), path.join(dir, 'acme-hgw-ext-1.xml'));
    writeFileSync(
      path.join(dir, 'tr-181-2-17-0-cwmp-full.xml'),
      '<dm:document xmlns:dm="x">\n  <model name="Device:2.17">\n',
    );
    const registry = new SchemaRegistry();
    expect(() => registerFromXml(registry, key, path.join(dir, 'acme-hgw-ext-1.xml'))).toThrowError(
      /tr-181-2-17-0-cwmp-full\.xml:\d+: malformed XML/,
    );
    expect(registry.list()).toEqual([]);
  });

  it('an unresolved import names the importing file and line', () => {
    expect(() => importDataModel(path.join(fixtures, 'unresolved-import.xml'))).toThrowError(
      /unresolved-import\.xml:5: import not found: no-such-model\.xml/,
    );
  });
});
