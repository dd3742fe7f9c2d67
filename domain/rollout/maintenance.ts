/** Maintenance windows are in the device's local time; the zone comes from inventory (IANA name). */
import type { MaintenanceWindow } from './spec.js';

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
type Day = (typeof DAYS)[number];

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    // Intl with an explicit zone is a pure function of its inputs (no clock read), so fine in workflows.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Local weekday and minute of day of an instant in a zone. */
export function localTime(epochMs: number, timeZone: string): { day: Day; minute: number } {
  const parts = formatter(timeZone).formatToParts(new Date(epochMs));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  const day = get('weekday').toLowerCase().slice(0, 3) as Day;
  return { day, minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

const toMin = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** True when the instant is inside any window (no windows means always allowed). */
export function inMaintenanceWindow(
  epochMs: number,
  timeZone: string,
  windows: readonly MaintenanceWindow[],
): boolean {
  if (windows.length === 0) return true;
  const { day, minute } = localTime(epochMs, timeZone);
  const prevDay = DAYS[(DAYS.indexOf(day) + 6) % 7]!;
  return windows.some((w) => {
    const s = toMin(w.start);
    const e = toMin(w.end);
    const dayOk = (d: Day) => !w.days || w.days.includes(d);
    if (s < e) return dayOk(day) && minute >= s && minute < e;
    // Crosses midnight: the part after midnight belongs to the window that started the day before.
    return (dayOk(day) && minute >= s) || (dayOk(prevDay) && minute < e);
  });
}
