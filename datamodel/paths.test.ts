import { describe, expect, it } from 'vitest';
import {
  expandPartialPath,
  fillInstances,
  formatPath,
  instanceNumbers,
  isUnder,
  matchesSchemaPath,
  PathError,
  parsePath,
  resolvePath,
  toSchemaPath,
} from './paths.js';

describe('parse and format', () => {
  it.each([
    'Device.WiFi.SSID.2.SSID',
    'Device.IP.Interface.{i}.IPv4Address.{i}.',
    'Device.WiFi.SSID.[cpe-guest].Enable',
    'Device.WiFi.SSID.*.SSID',
    'Device.WiFi.SSID.[Enable==true&&Name=="wl 0"].SSID',
    'Device.Hosts.Host.[IPAddress==192.168.1.10].PhysAddress',
    'Device.Reboot()',
    'Device.Boot!',
  ])('round-trips %s', (p) => {
    expect(formatPath(parsePath(p))).toBe(p);
  });

  it('parses search conditions and instance kinds', () => {
    const p = parsePath('Device.WiFi.SSID.[Stats.BytesSent>=1000&&Enable==true].SSID');
    expect(p.segments[3]).toEqual({
      kind: 'search',
      conditions: [
        { param: 'Stats.BytesSent', op: '>=', value: '1000' },
        { param: 'Enable', op: '==', value: 'true' },
      ],
    });
    expect(parsePath('Device.NAT.PortMapping.7.').object).toBe(true);
    expect(parsePath('Device.WiFi.SSID.[cpe-1].SSID').segments[3]).toEqual({ kind: 'alias', alias: 'cpe-1' });
    expect(instanceNumbers('Device.IP.Interface.2.IPv4Address.13.IPAddress')).toEqual([2, 13]);
  });

  it.each([
    ['Device.WiFi.SSID.0.SSID', /bad instance number "0"/],
    ['Device.WiFi.SSID.007.SSID', /bad instance number "007"/],
    ['Device.WiFi.SSID.4294967296.SSID', /bad instance number/],
    ['Device..SSID', /empty segment/],
    ['Device.WiFi.SSID.[Enable=true].SSID', /no operator/],
    ['', /empty path/],
    ['Device.Wi Fi.', /bad segment/],
  ])('rejects %s', (p, re) => {
    expect(() => parsePath(p)).toThrowError(PathError);
    expect(() => parsePath(p)).toThrowError(re);
  });
});

describe('schema paths', () => {
  it('normalises instance numbers and aliases to {i}', () => {
    expect(toSchemaPath('Device.IP.Interface.2.IPv4Address.13.IPAddress')).toBe(
      'Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress',
    );
    expect(toSchemaPath('Device.WiFi.SSID.[cpe-1].')).toBe('Device.WiFi.SSID.{i}.');
    expect(toSchemaPath('Device.DeviceInfo.SoftwareVersion')).toBe('Device.DeviceInfo.SoftwareVersion');
    expect(toSchemaPath('Device.IP.Interface.{i}.Enable')).toBe('Device.IP.Interface.{i}.Enable');
    for (const bad of [
      'Device.WiFi.SSID.0.SSID',
      'Device.WiFi.SSID.01.SSID',
      'Device.WiFi.SSID.1a.SSID',
      'Device..X',
      '',
      'Device.WiFi.SSID.[x.SSID',
    ]) {
      expect(toSchemaPath(bad)).toBeNull();
    }
    expect(matchesSchemaPath('Device.WiFi.SSID.4.SSID', 'Device.WiFi.SSID.{i}.SSID')).toBe(true);
    expect(matchesSchemaPath('Device.WiFi.SSID.SSID', 'Device.WiFi.SSID.{i}.SSID')).toBe(false);
    expect(fillInstances('Device.IP.Interface.{i}.IPv4Address.{i}.', [3])).toBe(
      'Device.IP.Interface.3.IPv4Address.{i}.',
    );
  });

  it('partial paths: membership and expansion', () => {
    const schema = [
      'Device.IP.Interface.{i}.',
      'Device.IP.Interface.{i}.Enable',
      'Device.IP.Interface.{i}.IPv4Address.{i}.IPAddress',
      'Device.IP.ActivePort.{i}.LocalPort',
      'Device.DNS.Client.Enable',
    ];
    expect(expandPartialPath(schema, 'Device.IP.Interface.2.')).toEqual([
      'Device.IP.Interface.2.Enable',
      'Device.IP.Interface.2.IPv4Address.{i}.IPAddress',
    ]);
    expect(expandPartialPath(schema, 'Device.')).toHaveLength(4);
    expect(() => expandPartialPath(schema, 'Device.IP')).toThrowError(/ends with "."/);
    expect(isUnder('Device.IP.Interface.2.Enable', 'Device.IP.Interface.2.')).toBe(true);
    expect(isUnder('Device.IP.Interface.3.Enable', 'Device.IP.Interface.2.')).toBe(false);
    expect(isUnder('Device.IP.Interface.3.Enable', 'Device.IP.Interface.{i}.')).toBe(true);
  });
});

describe('USP path resolution against device values', () => {
  const values = new Map<string, string>([
    ['Device.WiFi.SSID.1.Enable', 'true'],
    ['Device.WiFi.SSID.1.Alias', 'cpe-main'],
    ['Device.WiFi.SSID.1.SSID', 'home'],
    ['Device.WiFi.SSID.1.Stats.BytesSent', '5000'],
    ['Device.WiFi.SSID.2.Enable', 'false'],
    ['Device.WiFi.SSID.2.Alias', 'cpe-guest'],
    ['Device.WiFi.SSID.2.SSID', 'guest'],
    ['Device.WiFi.SSID.2.Stats.BytesSent', '10'],
    ['Device.WiFi.SSID.10.Enable', 'true'],
    ['Device.WiFi.SSID.10.Alias', 'cpe-iot'],
    ['Device.WiFi.SSID.10.SSID', 'iot'],
    ['Device.WiFi.SSID.10.Stats.BytesSent', '900'],
  ]);

  it('wildcards, aliases, searches and instance numbers', () => {
    expect(resolvePath('Device.WiFi.SSID.*.SSID', values)).toEqual([
      'Device.WiFi.SSID.1.SSID',
      'Device.WiFi.SSID.2.SSID',
      'Device.WiFi.SSID.10.SSID',
    ]);
    expect(resolvePath('Device.WiFi.SSID.[cpe-guest].SSID', values)).toEqual(['Device.WiFi.SSID.2.SSID']);
    expect(resolvePath('Device.WiFi.SSID.[Enable==true].SSID', values)).toEqual([
      'Device.WiFi.SSID.1.SSID',
      'Device.WiFi.SSID.10.SSID',
    ]);
    expect(resolvePath('Device.WiFi.SSID.[Enable==true&&Stats.BytesSent<1000].', values)).toEqual([
      'Device.WiFi.SSID.10.',
    ]);
    expect(resolvePath('Device.WiFi.SSID.[SSID=="guest"].Enable', values)).toEqual([
      'Device.WiFi.SSID.2.Enable',
    ]);
    expect(resolvePath('Device.WiFi.SSID.[Stats.BytesSent>=900].SSID', values)).toHaveLength(2);
    expect(resolvePath('Device.WiFi.SSID.3.SSID', values)).toEqual([]);
    expect(resolvePath('Device.WiFi.SSID.2.SSID', values)).toEqual(['Device.WiFi.SSID.2.SSID']);
  });
});
