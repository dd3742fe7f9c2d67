import { FIELDS } from './fields.js';
import type { Op, Scalar, Selector } from './selector.js';

/**
 * Plain-language rendering of a selector, for approvals and the console: an approver reads what the
 * cohort means, not JSON. Operand strings are quoted so device-reported text cannot read as wording.
 */

const q = (v: Scalar) => (typeof v === 'string' ? JSON.stringify(v) : String(v));
const list = (vs: readonly Scalar[] = []) =>
  vs.length <= 1
    ? vs.map(q).join('')
    : `${vs.slice(0, -1).map(q).join(', ')} or ${q(vs[vs.length - 1] as Scalar)}`;
const all = (vs: readonly Scalar[] = []) =>
  vs.length <= 1
    ? vs.map(q).join('')
    : `${vs.slice(0, -1).map(q).join(', ')} and ${q(vs[vs.length - 1] as Scalar)}`;

function duration(s: number): string {
  if (s % 86_400 === 0) return `${s / 86_400} day${s === 86_400 ? '' : 's'}`;
  if (s % 3_600 === 0) return `${s / 3_600} hour${s === 3_600 ? '' : 's'}`;
  if (s % 60 === 0) return `${s / 60} minute${s === 60 ? '' : 's'}`;
  return `${s} second${s === 1 ? '' : 's'}`;
}

function condition(
  subject: string,
  c: { op: Op; value?: Scalar; values?: Scalar[]; from?: Scalar; to?: Scalar },
): string {
  const v = c.value as Scalar;
  switch (c.op) {
    case 'eq':
      return `${subject} is ${q(v)}`;
    case 'ne':
      return `${subject} is not ${q(v)}`;
    case 'in':
      return `${subject} is ${list(c.values)}`;
    case 'notIn':
      return `${subject} is none of ${all(c.values)}`;
    case 'prefix':
      return `${subject} starts with ${q(v)}`;
    case 'lt':
      return `${subject} is below ${q(v)}`;
    case 'lte':
      return `${subject} is at most ${q(v)}`;
    case 'gt':
      return `${subject} is above ${q(v)}`;
    case 'gte':
      return `${subject} is at least ${q(v)}`;
    case 'between':
      return `${subject} is between ${q(c.from as Scalar)} and ${q(c.to as Scalar)}`;
    case 'versionLt':
      return `${subject} is older than version ${q(v)}`;
    case 'versionLte':
      return `${subject} is version ${q(v)} or older`;
    case 'versionGt':
      return `${subject} is newer than version ${q(v)}`;
    case 'versionGte':
      return `${subject} is version ${q(v)} or newer`;
    case 'versionBetween':
      return `${subject} is between versions ${q(c.from as Scalar)} and ${q(c.to as Scalar)}`;
    case 'has':
      return `${subject} include ${q(v)}`;
    case 'hasAny':
      return `${subject} include ${list(c.values)}`;
    case 'hasAll':
      return `${subject} include ${all(c.values)}`;
    case 'exists':
      return v ? `${subject} is known` : `${subject} is unknown`;
  }
}

const EVENT_WORDS: Record<string, string> = {
  inform: 'informs',
  boot: 'boots',
  bootstrap: 'bootstraps',
  transfer_complete: 'transfer completions',
  value_change: 'value changes',
  operation_complete: 'completed operations',
  connection_request_failed: 'failed connection requests',
};

const COUNT_WORDS = {
  eq: 'exactly',
  ne: 'other than',
  lt: 'fewer than',
  lte: 'at most',
  gt: 'more than',
  gte: 'at least',
};

export function describeSelector(s: Selector): string {
  const inner = (x: Selector) => {
    const t = describeSelector(x);
    return 'and' in x || 'or' in x ? `(${t})` : t;
  };
  if ('all' in s) return 'every device';
  if ('and' in s) return s.and.map(inner).join(' and ');
  if ('or' in s) return s.or.map(inner).join(' or ');
  if ('not' in s) return `not ${inner(s.not)}`;
  if ('field' in s) return condition(FIELDS[s.field].label, s);
  if ('param' in s) return condition(`parameter ${s.param}`, s);
  if ('lastContact' in s) {
    const lc = s.lastContact;
    if ('seenWithinSeconds' in lc) return `seen within the last ${duration(lc.seenWithinSeconds)}`;
    if ('notSeenForSeconds' in lc) return `not seen for ${duration(lc.notSeenForSeconds)} (or never)`;
    return `not seen for ${lc.notSeenForIntervals} periodic inform interval${lc.notSeenForIntervals === 1 ? '' : 's'} (or never)`;
  }
  const e = s.events;
  const what = [
    e.failed === true ? 'failed ' : e.failed === false ? 'successful ' : '',
    EVENT_WORDS[e.kind] ?? e.kind,
    e.eventCode !== undefined ? ` with event code ${q(e.eventCode)}` : '',
  ].join('');
  return `${COUNT_WORDS[e.op]} ${e.count} ${what} in the last ${duration(e.withinSeconds)}`;
}
