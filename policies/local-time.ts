import type { LocalTime, Weekday } from './schema.js';

/**
 * Local wall-clock time per time zone, for the policy input. Computed here with Intl because the
 * wasm policy runtime has no time.* built-ins; the OPA server path gets the same precomputed values.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Throws RangeError for an unknown zone: a bad zone must not silently become UTC.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      weekday: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

const weekdays: Record<string, Weekday> = {
  Mon: 'mon',
  Tue: 'tue',
  Wed: 'wed',
  Thu: 'thu',
  Fri: 'fri',
  Sat: 'sat',
  Sun: 'sun',
};

export function localTime(at: Date, timeZone: string, deviceCount = 0): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(at)) parts[p.type] = p.value;
  const weekday = weekdays[parts.weekday ?? ''];
  if (!weekday) throw new Error(`no weekday for ${timeZone} at ${at.toISOString()}`);
  const hour = Number(parts.hour);
  const minute = Number(parts.minute);
  const pad = (n: number) => String(n).padStart(2, '0');
  return {
    time_zone: timeZone,
    date: `${parts.year}-${parts.month}-${parts.day}`,
    time: `${pad(hour)}:${pad(minute)}`,
    weekday,
    minute_of_day: hour * 60 + minute,
    device_count: deviceCount,
  };
}

/** The `times` block of a policy input: UTC plus each affected zone (with its device count). */
export function policyTimes(
  at: Date,
  zones: Array<{ time_zone: string; device_count: number }>,
): { utc: string; local: LocalTime[] } {
  const seen = new Map<string, number>();
  for (const z of zones) seen.set(z.time_zone, (seen.get(z.time_zone) ?? 0) + z.device_count);
  const local = [...seen.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([tz, n]) => localTime(at, tz, n));
  return { utc: `${at.toISOString().slice(0, 19)}Z`, local };
}
