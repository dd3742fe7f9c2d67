import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { datamodelCommand } from '../cli/datamodel.js';
import { corpusDir, repoRoot } from './corpus.js';
import { DriftReport, diffSchemas, formatDrift } from './diff.js';
import { importDataModel } from './importer.js';

const corpus = corpusDir();
const fixtures = path.join(repoRoot, 'datamodel', 'fixtures');

describe('drift between two real TR-181 versions (2.17 CWMP full vs 2.19.1 CWMP modular)', () => {
  it('lists added items and changed access, type, facets and defaults', () => {
    const a = importDataModel(path.join(corpus, 'tr-181-2-17-0-cwmp-full.xml'));
    const b = importDataModel(path.join(corpus, 'modular-2-19-1', 'tr-181-2-19-1-cwmp.xml'));
    const d = diffSchemas(a, b);
    expect(d.added.objects).toContain('Device.DeviceInfo.PowerStatus.');
    expect(d.added.parameters.length).toBeGreaterThan(100);
    // nothing 2.17 had disappeared (the acceptance check in importer.test.ts shows the same from the other side)
    expect(d.removed.objects).toEqual([]);
    const byPath = new Map(d.changed.map((c) => [c.path, c]));
    // CWMP 2.19 has no writeOnceReadOnly left: all 234 of 2.17 changed access (Alias keys to readWrite)
    const wo = d.changed.filter((c) =>
      c.changes.some((f) => f.field === 'access' && f.from === 'writeOnceReadOnly'),
    );
    expect(wo).toHaveLength(234);
    const to = new Set(wo.map((c) => c.changes.find((f) => f.field === 'access')?.to));
    expect([...to].sort()).toEqual(['readOnly', 'readWrite'].filter((x) => to.has(x)));
    expect(to.has('writeOnceReadOnly')).toBe(false);
    expect(byPath.get('Device.DeviceInfo.VendorConfigFile.{i}.Alias')?.changes).toContainEqual({
      field: 'access',
      from: 'writeOnceReadOnly',
      to: 'readWrite',
    });
    // "Alias" (full file) vs "_AliasCWMP" (modular) is the same type, not drift
    expect(byPath.get('Device.DeviceInfo.VendorConfigFile.{i}.Alias')?.changes.map((f) => f.field)).toEqual([
      'access',
    ]);
    // a range that narrowed
    expect(
      byPath.get('Device.WiFi.DataElements.Network.Device.{i}.APMLD.{i}.AffiliatedAP.{i}.LinkID')?.changes,
    ).toContainEqual({
      field: 'ranges',
      from: [{ min: 0, max: 255 }],
      to: [{ min: 0, max: 15 }],
    });
    // a primitive type change
    expect(byPath.get('Device.WiFi.DataElements.Network.TimeStamp')?.changes).toContainEqual({
      field: 'type',
      from: 'string',
      to: 'dateTime',
    });
    expect(DriftReport.parse(d)).toEqual(d);
  });
});

describe('drift between two vendor firmware variants', () => {
  const opts = { searchPath: [corpus] };
  it('shows the X_ACME_ changes and nothing else', () => {
    const a = importDataModel(path.join(fixtures, 'acme-hgw-ext-1.xml'), opts);
    const b = importDataModel(path.join(fixtures, 'acme-hgw-ext-2.xml'), opts);
    const d = diffSchemas(a, b, { from: 'fw1', to: 'fw2' });
    expect(d.added.parameters.sort()).toEqual([
      'Device.WiFi.Radio.{i}.X_ACME_BandSteering',
      'Device.X_ACME_Diagnostics.Probe.{i}.Interval',
    ]);
    expect(d.removed.parameters).toEqual(['Device.WiFi.Radio.{i}.X_ACME_BeamForming']);
    const changes = Object.fromEntries(
      d.changed.map((c) => [c.path, Object.fromEntries(c.changes.map((f) => [f.field, f]))]),
    );
    expect(Object.keys(changes).sort()).toEqual([
      'Device.X_ACME_Diagnostics.LogLevel',
      'Device.X_ACME_Diagnostics.Probe.{i}.',
      'Device.X_ACME_Diagnostics.RemoteSyslogServer',
      'Device.X_ACME_Diagnostics.SupportPassword',
      'Device.X_ACME_Diagnostics.UploadInterval',
    ]);
    expect(changes['Device.X_ACME_Diagnostics.SupportPassword']?.access).toEqual({
      field: 'access',
      from: 'readWrite',
      to: 'readOnly',
    });
    expect(changes['Device.X_ACME_Diagnostics.RemoteSyslogServer']?.dataType).toMatchObject({
      from: 'IPv4Address',
      to: 'IPAddress',
    });
    expect(changes['Device.X_ACME_Diagnostics.LogLevel']?.default).toMatchObject({
      to: { type: 'factory', value: 'Error' },
    });
    expect(changes['Device.X_ACME_Diagnostics.UploadInterval']?.ranges).toMatchObject({
      to: [{ min: 300, max: 86400 }],
    });
    expect(changes['Device.X_ACME_Diagnostics.Probe.{i}.']?.maxEntries).toMatchObject({ from: 4, to: 8 });

    const text = formatDrift(d);
    expect(text).toContain('drift fw1 -> fw2');
    expect(text).toContain('- parameter Device.WiFi.Radio.{i}.X_ACME_BeamForming');
    expect(text).toContain('    access: readWrite -> readOnly');
  });
});

describe('fleetbrain datamodel diff / import (CLI)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  async function run(args: string[]): Promise<string> {
    const out: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
      out.push(a.map(String).join(' '));
    });
    const program = new Command('fleetbrain').exitOverride();
    datamodelCommand(program);
    await program.parseAsync(['node', 'fleetbrain', 'datamodel', ...args]);
    return out.join('\n');
  }

  it('diff prints text and JSON', async () => {
    const a = path.join(fixtures, 'acme-hgw-ext-1.xml');
    const b = path.join(fixtures, 'acme-hgw-ext-2.xml');
    const text = await run(['diff', a, b, '--search', corpus]);
    expect(text).toMatch(/^drift acme-hgw-ext-1\.xml -> acme-hgw-ext-2\.xml/);
    expect(text).toContain('~ parameter Device.X_ACME_Diagnostics.UploadInterval');
    const json = DriftReport.parse(JSON.parse(await run(['diff', a, b, '--json', '--search', corpus])));
    expect(json.removed.parameters).toEqual(['Device.WiFi.Radio.{i}.X_ACME_BeamForming']);
  });

  it('import writes a compiled schema; a malformed file writes nothing and exits 1', async () => {
    const { mkdtempSync, readdirSync } = await import('node:fs');
    const os = await import('node:os');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'fb-dm-cli-'));
    const line = await run(['import', path.join(fixtures, 'tr-098-igd-mini.xml'), '--out', dir]);
    expect(line).toMatch(/InternetGatewayDevice:1\.14 \(cwmp\) 7 objects \(4 tables\), 18 parameters/);
    expect(readdirSync(dir)).toEqual(['tr-098-igd-mini.json']);
    const err: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => {
      err.push(String(s));
      return true;
    });
    await run(['import', path.join(fixtures, 'malformed-mismatched.xml'), '--out', dir]);
    expect(process.exitCode).toBe(1);
    expect(err.join('')).toMatch(/malformed-mismatched\.xml:8: malformed XML/);
    expect(readdirSync(dir)).toEqual(['tr-098-igd-mini.json']);
  });
});
