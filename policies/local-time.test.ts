import { describe, expect, it } from 'vitest';
import { localTime, policyTimes } from './local-time.js';
import { LocalTime } from './schema.js';

describe('local time for policy input', () => {
  it('applies the zone offset, including daylight saving time', () => {
    const winter = localTime(new Date('2026-01-15T00:30:00Z'), 'Europe/Berlin', 7);
    expect(winter).toEqual({
      time_zone: 'Europe/Berlin',
      date: '2026-01-15',
      time: '01:30',
      weekday: 'thu',
      minute_of_day: 90,
      device_count: 7,
    });
    expect(localTime(new Date('2026-07-15T00:30:00Z'), 'Europe/Berlin').time).toBe('02:30');
  });

  it('rolls the date and weekday back across midnight west of UTC', () => {
    const t = localTime(new Date('2026-11-25T02:00:00Z'), 'America/New_York');
    expect([t.date, t.weekday, t.time]).toEqual(['2026-11-24', 'tue', '21:00']);
  });

  it('handles non-hour offsets and midnight as 00:00', () => {
    expect(localTime(new Date('2026-03-01T18:30:00Z'), 'Asia/Kolkata')).toMatchObject({
      date: '2026-03-02',
      time: '00:00',
      minute_of_day: 0,
      weekday: 'mon',
    });
  });

  it('rejects an unknown time zone instead of falling back to UTC', () => {
    expect(() => localTime(new Date(), 'Mars/Olympus_Mons')).toThrow(RangeError);
  });

  it('merges zones, sums their devices, sorts them, and satisfies the input schema', () => {
    const times = policyTimes(new Date('2026-11-25T02:00:07.123Z'), [
      { time_zone: 'Europe/Berlin', device_count: 10 },
      { time_zone: 'America/New_York', device_count: 5 },
      { time_zone: 'Europe/Berlin', device_count: 3 },
    ]);
    expect(times.utc).toBe('2026-11-25T02:00:07Z');
    expect(times.local.map((l) => [l.time_zone, l.device_count])).toEqual([
      ['America/New_York', 5],
      ['Europe/Berlin', 13],
    ]);
    for (const l of times.local) expect(LocalTime.parse(l)).toEqual(l);
  });
});
