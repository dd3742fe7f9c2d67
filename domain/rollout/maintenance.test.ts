import { describe, expect, it } from 'vitest';
import { inMaintenanceWindow, localTime } from './maintenance.js';

describe('maintenance windows in device local time', () => {
  // 2026-01-14 is a Wednesday. 01:30 UTC = 02:30 in Berlin (CET, UTC+1) = 20:30 Tuesday in New York.
  const t = Date.UTC(2026, 0, 14, 1, 30);

  it('reads the local weekday and time of the zone', () => {
    expect(localTime(t, 'Europe/Berlin')).toEqual({ day: 'wed', minute: 150 });
    expect(localTime(t, 'America/New_York')).toEqual({ day: 'tue', minute: 20 * 60 + 30 });
  });

  it('applies the same window in each device zone', () => {
    const w = [{ start: '02:00', end: '05:00' }];
    expect(inMaintenanceWindow(t, 'Europe/Berlin', w)).toBe(true);
    expect(inMaintenanceWindow(t, 'America/New_York', w)).toBe(false);
  });

  it('handles windows across midnight and day filters', () => {
    const w = [{ days: ['tue' as const], start: '22:00', end: '03:00' }];
    // Berlin: Wednesday 02:30 belongs to Tuesday's window.
    expect(inMaintenanceWindow(t, 'Europe/Berlin', w)).toBe(true);
    // New York: Tuesday 20:30 is before the window.
    expect(inMaintenanceWindow(t, 'America/New_York', w)).toBe(false);
    const wed = [{ days: ['wed' as const], start: '22:00', end: '03:00' }];
    expect(inMaintenanceWindow(t, 'Europe/Berlin', wed)).toBe(false);
  });

  it('allows everything when no window is set', () => {
    expect(inMaintenanceWindow(t, 'Asia/Tokyo', [])).toBe(true);
  });
});
