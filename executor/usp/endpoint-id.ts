/**
 * USP Endpoint IDs (TR-369 "Endpoint Identifier"): `authority-scheme ":" [authority-id] ":" instance-id`.
 * Records whose from_id is not a valid Endpoint ID get no Error back (R-MTP.5), so this check is
 * what decides between answering and ignoring.
 */

export const AUTHORITY_SCHEMES = [
  'oui',
  'cid',
  'pen',
  'self',
  'user',
  'os',
  'ops',
  'uuid',
  'imei',
  'proto',
  'doc',
  'fqdn',
] as const;
export type AuthorityScheme = (typeof AUTHORITY_SCHEMES)[number];

export interface EndpointId {
  scheme: AuthorityScheme;
  authorityId: string;
  instanceId: string;
}

export type EndpointIdResult = { ok: true; id: EndpointId } | { ok: false; reason: string };

const HEX6 = /^[0-9A-Fa-f]{6}$/;
// R-ARC.5: unreserved characters or percent-encoded octets.
const INSTANCE = /^(?:[A-Za-z0-9\-._]|%[0-9A-Fa-f]{2})+$/;
const NON_RESERVED = /^[A-Za-z0-9\-._~]*$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const FQDN =
  /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_INSTANCE_LENGTH = 50; // R-ARC.6

function checkAuthority(scheme: AuthorityScheme, authority: string): string | undefined {
  switch (scheme) {
    case 'oui':
    case 'cid':
      return HEX6.test(authority) ? undefined : `${scheme} authority-id must be 6 hex digits`;
    case 'pen':
      return /^[0-9]+$/.test(authority) ? undefined : 'pen authority-id must be a decimal enterprise number';
    case 'self':
      return authority === '' || (authority.length <= 6 && NON_RESERVED.test(authority))
        ? undefined
        : 'self authority-id must be empty or 1-6 non-reserved characters';
    case 'user':
    case 'doc':
      return authority.length <= 6 && NON_RESERVED.test(authority)
        ? undefined
        : `${scheme} authority-id must be 0-6 non-reserved characters`;
    case 'proto':
      return authority.length <= 6 && NON_RESERVED.test(authority) && !authority.includes('.')
        ? undefined
        : 'proto authority-id must be 0-6 non-reserved characters other than "."';
    case 'os':
    case 'ops':
    case 'uuid':
    case 'imei':
      return authority === '' ? undefined : `${scheme} authority-id must be empty`;
    case 'fqdn':
      return FQDN.test(authority) ? undefined : 'fqdn authority-id must be a domain name';
  }
}

function checkInstance(scheme: AuthorityScheme, instance: string): string | undefined {
  if (!instance) return 'instance-id is empty';
  if (instance.length > MAX_INSTANCE_LENGTH)
    return `instance-id longer than ${MAX_INSTANCE_LENGTH} characters`;
  if (!INSTANCE.test(instance)) return 'instance-id has characters outside unreserved / pct-encoded';
  switch (scheme) {
    case 'os':
      return /^[0-9A-Fa-f]{6}-.+$/.test(instance) ? undefined : 'os instance-id must be <OUI>-<SerialNumber>';
    case 'ops':
      return /^[0-9A-Fa-f]{6}-[^-]*-.+$/.test(instance)
        ? undefined
        : 'ops instance-id must be <OUI>-<ProductClass>-<SerialNumber>';
    case 'uuid':
      return UUID.test(instance) ? undefined : 'uuid instance-id must be a UUID';
    case 'imei':
      return /^[0-9]{15,16}$/.test(instance) ? undefined : 'imei instance-id must be 15 or 16 digits';
    default:
      return undefined;
  }
}

/** Parses an Endpoint ID; accepts the `urn:bbf:usp:id:` form used in certificates too. */
export function parseEndpointId(raw: string): EndpointIdResult {
  const text = raw.startsWith('urn:bbf:usp:id:') ? raw.slice('urn:bbf:usp:id:'.length) : raw;
  const first = text.indexOf(':');
  if (first < 0) return { ok: false, reason: 'missing ":" after authority-scheme' };
  const second = text.indexOf(':', first + 1);
  if (second < 0) return { ok: false, reason: 'missing ":" after authority-id' };
  const scheme = text.slice(0, first);
  if (!(AUTHORITY_SCHEMES as readonly string[]).includes(scheme)) {
    return { ok: false, reason: `unknown authority-scheme "${scheme}"` };
  }
  const s = scheme as AuthorityScheme;
  const authorityId = text.slice(first + 1, second);
  const instanceId = text.slice(second + 1);
  const bad = checkAuthority(s, authorityId) ?? checkInstance(s, instanceId);
  if (bad) return { ok: false, reason: bad };
  return { ok: true, id: { scheme: s, authorityId, instanceId } };
}

export function isValidEndpointId(raw: string): boolean {
  return parseEndpointId(raw).ok;
}

export function formatEndpointId(id: EndpointId): string {
  return `${id.scheme}:${id.authorityId}:${id.instanceId}`;
}

/** `os::<OUI>-<SerialNumber>`: the ID a CPE derives from its TR-069 identity (serial percent-encoded). */
export function osEndpointId(oui: string, serial: string): string {
  return `os::${oui.toUpperCase()}-${encodeInstance(serial)}`;
}

/** Percent-encodes what R-ARC.5 does not allow in an instance-id. */
export function encodeInstance(value: string): string {
  return Array.from(new TextEncoder().encode(value))
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9\-._]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}
