import { describe, expect, it } from 'vitest';
import { catalogFromTypes } from './catalog.js';
import { describeSelector } from './describe.js';
import { parseSelector, SelectorError } from './selector.js';
import { compareVersions, versionKey } from './version-key.js';

const catalog = catalogFromTypes({
  'Device.WiFi.Radio.{i}.Channel': 'unsignedInt',
  'Device.WiFi.Radio.{i}.Enable': 'boolean',
  'Device.WiFi.SSID.{i}.SSID': 'string',
  'Device.Time.CurrentLocalTime': 'dateTime',
});

function rejection(input: unknown): { path: string; reason: string } {
  try {
    parseSelector(input, { catalog });
  } catch (err) {
    if (err instanceof SelectorError) return { path: err.path, reason: err.reason };
    throw err;
  }
  throw new Error('selector was accepted');
}

describe('parseSelector rejects with the offending part named', () => {
  it.each([
    [{ field: 'colour', op: 'eq', value: 'red' }, 'field', /unknown field "colour"/],
    [
      { and: [{ all: true }, { field: 'region', op: 'eq', value: 7 }] },
      'and[1].value',
      /expects a string, got number 7/,
    ],
    [{ or: [{ wat: 1 }] }, 'or[0]', /unknown selector key "wat"/],
    [
      { not: { param: 'Device.WiFi.Radio.1.Colour', op: 'eq', value: 1 } },
      'not.param',
      /not in any known TR-181 schema/,
    ],
    [
      { param: 'Device.WiFi.Radio.1.Channel', op: 'eq', value: '6' },
      'value',
      /expects an integer, got string "6"/,
    ],
    [{ param: 'Device.WiFi.Radio.1.Channel', op: 'eq', value: -1 }, 'value', /non-negative/],
    [{ param: 'Device.WiFi.Radio.1.Channel', op: 'prefix', value: '1' }, 'op', /does not support "prefix"/],
    [{ param: 'Device.WiFi.Radio.1.Enable', op: 'eq', value: 'yes' }, 'value', /true or false/],
    [{ param: 'Device.Time.CurrentLocalTime', op: 'gt', value: 'yesterday' }, 'value', /ISO 8601/],
    [{ field: 'softwareVersion', op: 'versionLt', value: 'three' }, 'value', /semantic version/],
    [{ field: 'protocol', op: 'eq', value: 'snmp' }, 'value', /one of "cwmp", "usp"/],
    [{ field: 'region', op: 'in', value: 'north' }, 'values', /"in" needs "values"/],
    [{ field: 'region', op: 'eq', value: 'north', values: ['x'] }, 'values', /does not take "values"/],
    [{ field: 'region', op: 'eq', value: 'north', extra: 1 }, '', /Unrecognized key/],
    [{ field: 'region', op: 'lt', value: 'a' }, 'op', /does not support "lt"/],
    [
      { events: { kind: 'boot', withinSeconds: 60, op: 'gte', count: 1, eventCode: '1 BOOT' } },
      'events.eventCode',
      /"inform" only/,
    ],
    [{ events: { kind: 'reboot', withinSeconds: 60, op: 'gte', count: 1 } }, 'events.kind', /Invalid option/],
    [{ lastContact: { notSeenForIntervals: -3 } }, 'lastContact.notSeenForIntervals', /./],
    [{ and: [] }, 'and', /at least 1|>=1/],
    [{ all: true, not: { all: true } }, '', /exactly one of/],
    [[{ all: true }], '', /got array/],
    [{ field: 'region', op: 'eq', value: 'a\u0000b' }, 'value', /NUL/],
  ])('%j → %s', (input, path, reason) => {
    const r = rejection(input);
    expect(r.path).toBe(path);
    expect(r.reason).toMatch(reason);
  });

  it('rejects parameter conditions when no catalog is given', () => {
    expect(() => parseSelector({ param: 'Device.WiFi.Radio.1.Channel', op: 'eq', value: 1 })).toThrow(
      /need a data-model catalog/,
    );
  });

  it('bounds nesting depth', () => {
    let s: unknown = { all: true };
    for (let i = 0; i < 40; i++) s = { not: s };
    expect(rejection(s).reason).toMatch(/nested deeper/);
  });
});

describe('describeSelector', () => {
  it('renders a selector in plain language with quoted operands', () => {
    const s = parseSelector(
      {
        and: [
          { field: 'productClass', op: 'eq', value: 'HG8245' },
          {
            or: [
              { field: 'region', op: 'in', values: ['north', 'east'] },
              { field: 'tags', op: 'has', value: 'pilot' },
            ],
          },
          { field: 'softwareVersion', op: 'versionLt', value: '3.0' },
          { param: 'Device.WiFi.Radio.1.Channel', op: 'eq', value: 6 },
          { not: { lastContact: { notSeenForIntervals: 3 } } },
          { events: { kind: 'boot', withinSeconds: 86400, op: 'gte', count: 3 } },
        ],
      },
      { catalog },
    );
    expect(describeSelector(s)).toBe(
      'product class is "HG8245" and (region is "north" or "east" or tags include "pilot") and firmware version ' +
        'is older than version "3.0" and parameter Device.WiFi.Radio.1.Channel is 6 and not not seen for 3 ' +
        'periodic inform intervals (or never) and at least 3 boots in the last 1 day',
    );
  });
});

describe('versionKey orders by semantic-version precedence', () => {
  it('follows SemVer 2.0 precedence, pads release parts and orders numerically', () => {
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.0.1',
      '2.9',
      '3.0.0-rc1',
      '3.0',
      '3.0.1',
      '3.1',
      '3.9.9',
      '3.10',
      '10.0.0',
      '100.0.0',
    ];
    const shuffled = [...ordered].reverse();
    shuffled.sort(compareVersions);
    expect(shuffled).toEqual(ordered);
    expect(versionKey('3.0')).toBe(versionKey('3.0.0'));
    expect(versionKey('v3.0.0+build.5')).toBe(versionKey('3.0.0'));
    expect(versionKey('03.00.1')).toBe(versionKey('3.0.1'));
    expect(versionKey('V100R001C00SPC105')).toBeNull();
    expect(versionKey('')).toBeNull();
  });
});
