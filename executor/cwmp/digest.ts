import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { format, parse } from 'auth-header';

/**
 * HTTP digest authentication (RFC 7616 with MD5, qop=auth; what CPEs implement) for both sides:
 * the ACS challenging CPEs, and the ACS answering a CPE's connection-request challenge.
 * Header syntax goes through `auth-header`; only the hash arithmetic lives here.
 *
 * Nonces are stateless (timestamp + HMAC), so 100 000 CPEs need no server-side nonce table; a
 * nonce is valid for `nonceTtlMs`. (Replay within the TTL is bounded by the session cookie, which
 * is only issued after an authenticated Inform.)
 */

const md5 = (s: string) => createHash('md5').update(s).digest('hex');

export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque?: string;
  qop?: string;
  algorithm?: string;
}

export class NonceIssuer {
  private readonly secret: Buffer;
  /**
   * The challenge handed out during the current second, and the nonces issued lately: in a storm every
   * session starts with a challenge, and one nonce per second for all CPEs costs nothing in safety
   * (nonces are stateless and valid for the TTL anyway; each response still binds the user's password,
   * cnonce and nc) while sparing an HMAC and a header format per session, and an HMAC per check.
   */
  private current: { at: number; nonce: string; header: string } | null = null;
  private readonly recent = new Map<string, number>();

  constructor(
    readonly realm: string,
    private readonly nonceTtlMs = 300_000,
    secret?: Buffer,
    private readonly reuseMs = 1_000,
  ) {
    this.secret = secret ?? randomBytes(32);
  }

  issue(now = Date.now()): string {
    const ts = now.toString(16);
    const mac = createHmac('sha256', this.secret).update(ts).digest('base64url').slice(0, 22);
    return `${ts}.${mac}`;
  }

  /** 'ok', 'stale' (well-formed but too old: the client may retry with a new nonce), or 'bad'. */
  check(nonce: string, now = Date.now()): 'ok' | 'stale' | 'bad' {
    const issuedAt = this.recent.get(nonce);
    if (issuedAt !== undefined) return now - issuedAt > this.nonceTtlMs ? 'stale' : 'ok';
    const [ts, mac] = nonce.split('.');
    if (!ts || !mac || !/^[0-9a-f]{1,13}$/.test(ts)) return 'bad';
    const want = createHmac('sha256', this.secret).update(ts).digest('base64url').slice(0, 22);
    const a = Buffer.from(mac);
    const b = Buffer.from(want);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return 'bad';
    return now - Number.parseInt(ts, 16) > this.nonceTtlMs ? 'stale' : 'ok';
  }

  challenge(stale = false, now = Date.now()): string {
    const c = this.current;
    if (!stale && c && now >= c.at && now - c.at < this.reuseMs) return c.header;
    const nonce = this.issue(now);
    const header = format({
      scheme: 'Digest',
      params: {
        realm: this.realm,
        qop: 'auth',
        algorithm: 'MD5',
        nonce,
        ...(stale ? { stale: 'true' } : {}),
      },
    });
    if (!stale) {
      this.current = { at: now, nonce, header };
      // A handful of seconds' nonces, so the answers to recent challenges skip the HMAC.
      this.recent.set(nonce, now);
      if (this.recent.size > 8) this.recent.delete(this.recent.keys().next().value!);
    }
    return header;
  }
}

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  algorithm?: string;
  opaque?: string;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Parse an `Authorization: Digest …` header; null when absent or not digest. */
export function parseDigestAuthorization(header: string | undefined): DigestCredentials | null {
  if (!header) return null;
  let t: ReturnType<typeof parse>;
  try {
    t = parse(header);
  } catch {
    return null;
  }
  if (t.scheme.toLowerCase() !== 'digest') return null;
  const p = t.params;
  const username = one(p.username);
  const realm = one(p.realm);
  const nonce = one(p.nonce);
  const uri = one(p.uri);
  const response = one(p.response);
  if (!username || realm === undefined || !nonce || !uri || !response) return null;
  return {
    username,
    realm,
    nonce,
    uri,
    response,
    qop: one(p.qop),
    nc: one(p.nc),
    cnonce: one(p.cnonce),
    algorithm: one(p.algorithm),
    opaque: one(p.opaque),
  };
}

export function digestResponse(
  c: Omit<DigestCredentials, 'response'>,
  password: string,
  method: string,
): string {
  const ha1 = md5(`${c.username}:${c.realm}:${password}`);
  const ha2 = md5(`${method}:${c.uri}`);
  return c.qop
    ? md5(`${ha1}:${c.nonce}:${c.nc}:${c.cnonce}:${c.qop}:${ha2}`)
    : md5(`${ha1}:${c.nonce}:${ha2}`);
}

/** Verify a client's digest response against the known password (constant-time compare). */
export function verifyDigest(c: DigestCredentials, password: string, method: string): boolean {
  if (c.qop && c.qop !== 'auth') return false;
  if (c.qop && (!c.nc || !c.cnonce)) return false;
  const want = Buffer.from(digestResponse(c, password, method));
  const got = Buffer.from(c.response.toLowerCase());
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Parse a `WWW-Authenticate` header; null when it is not a digest challenge. */
export function parseChallenge(header: string | undefined): DigestChallenge | null {
  if (!header) return null;
  let t: ReturnType<typeof parse>;
  try {
    t = parse(header);
  } catch {
    return null;
  }
  if (t.scheme.toLowerCase() !== 'digest') return null;
  const realm = one(t.params.realm);
  const nonce = one(t.params.nonce);
  if (realm === undefined || !nonce) return null;
  const qop = one(t.params.qop);
  return {
    realm,
    nonce,
    opaque: one(t.params.opaque),
    // A server may offer "auth,auth-int"; we only do auth.
    qop: qop
      ?.split(',')
      .map((s) => s.trim())
      .includes('auth')
      ? 'auth'
      : undefined,
    algorithm: one(t.params.algorithm),
  };
}

/** Build the client's `Authorization` header answering `challenge`. */
export function authorize(
  challenge: DigestChallenge,
  user: { username: string; password: string },
  method: string,
  uri: string,
  nc = 1,
): string {
  const cnonce = randomBytes(8).toString('hex');
  const ncs = nc.toString(16).padStart(8, '0');
  const base = {
    username: user.username,
    realm: challenge.realm,
    nonce: challenge.nonce,
    uri,
    qop: challenge.qop,
    nc: challenge.qop ? ncs : undefined,
    cnonce: challenge.qop ? cnonce : undefined,
  };
  const response = digestResponse(base, user.password, method);
  const params: Array<[string, string]> = [
    ['username', user.username],
    ['realm', challenge.realm],
    ['nonce', challenge.nonce],
    ['uri', uri],
    ['response', response],
    ['algorithm', 'MD5'],
  ];
  if (challenge.qop) params.push(['qop', challenge.qop], ['nc', ncs], ['cnonce', cnonce]);
  if (challenge.opaque) params.push(['opaque', challenge.opaque]);
  return format({ scheme: 'Digest', params });
}
