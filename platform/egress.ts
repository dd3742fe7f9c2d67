/**
 * Outbound requests to operator-supplied URLs (rollout webhooks): refuse private, loopback,
 * link-local, metadata and other non-public addresses (OWASP API7:2023, SSRF), unless the
 * deployment allows them explicitly (FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE, FLEETBRAIN_WEBHOOK_ALLOW_CIDRS).
 *
 * Two checks: `checkOutboundUrl` when the URL is accepted (a clear 4xx at creation), and
 * `guardedFetch` when it is used. The latter checks the address the socket actually connects to
 * (a `lookup` hook on the connection), so a name that resolved to a public address at creation and
 * to 169.254.169.254 later (DNS rebinding) is refused at send time.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';

export interface EgressPolicy {
  /** Allow every non-public address (tests and single-machine set-ups). */
  allowPrivate?: boolean;
  /** Non-public ranges allowed anyway, e.g. ['127.0.0.1/32', '10.20.0.0/16', 'fd00:1::/64']. */
  allowCidrs?: readonly string[];
}

/** Thrown when a URL or the address it resolves to is not allowed; the message names why. */
export class EgressRefused extends Error {
  override name = 'EgressRefused';
}

// Everything that is not a globally routable unicast address.
const V4: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'this-network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local / cloud metadata'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved / broadcast'],
];
const V6: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'discard'],
  ['2001::', 23, 'IETF protocol assignments'],
  ['2001:db8::', 32, 'documentation'],
  ['fc00::', 7, 'unique-local (includes fd00:ec2::254 metadata)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local'],
  ['ff00::', 8, 'multicast'],
];

function ranges(list: Array<[string, number, string]>, family: 'ipv4' | 'ipv6') {
  return list.map(([net, prefix, why]) => {
    const b = new BlockList();
    b.addSubnet(net, prefix, family);
    return { b, why, family };
  });
}
const BLOCKED = [...ranges(V4, 'ipv4'), ...ranges(V6, 'ipv6')];

/** The eight 16-bit groups of an IPv6 address (any valid textual form, dotted tail included). */
function groups6(addr: string): number[] {
  let a = addr.split('%')[0] ?? addr;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted?.[1]) {
    const o = dotted[1].split('.').map(Number);
    a = `${a.slice(0, -dotted[1].length)}${(((o[0] ?? 0) << 8) | (o[1] ?? 0)).toString(16)}:${(((o[2] ?? 0) << 8) | (o[3] ?? 0)).toString(16)}`;
  }
  const [head = '', tail] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g, 16));
}

/** An IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4), checked as IPv4. */
function embeddedV4(addr: string): string | undefined {
  const g = groups6(addr);
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zero(5) && g[5] === 0xffff) return v4(g[6] ?? 0, g[7] ?? 0); // ::ffff:a.b.c.d
  if (zero(6) && (g[6] !== 0 || (g[7] ?? 0) > 1)) return v4(g[6] ?? 0, g[7] ?? 0); // ::a.b.c.d (deprecated)
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0))
    return v4(g[6] ?? 0, g[7] ?? 0);
  if (g[0] === 0x2002) return v4(g[1] ?? 0, g[2] ?? 0); // 6to4
  return undefined;
}

function allowList(policy: EgressPolicy): BlockList {
  const b = new BlockList();
  for (const c of policy.allowCidrs ?? []) {
    const [net = '', len] = c.split('/');
    const family = isIP(net) === 6 ? 'ipv6' : 'ipv4';
    b.addSubnet(net, Number(len ?? (family === 'ipv6' ? 128 : 32)), family);
  }
  return b;
}

/** Why an address may not be contacted under `policy`, or undefined when it may. */
export function refusalFor(address: string, policy: EgressPolicy = {}): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  if (policy.allowPrivate) return undefined;
  const allowed = allowList(policy);
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (allowed.check(address, type)) return undefined;
  if (family === 6) {
    const v4 = embeddedV4(address);
    if (v4 !== undefined) {
      const inner = refusalFor(v4, policy);
      return inner ? `${address} embeds ${v4}: ${inner}` : undefined;
    }
  }
  const hit = BLOCKED.find((r) => r.family === type && r.b.check(address, type));
  return hit ? `${address} is a ${hit.why} address` : undefined;
}

/** A CIDR as the allowlist accepts it: an IP address and an optional prefix length in range. */
export function isCidr(s: string): boolean {
  const [net = '', len, extra] = s.split('/');
  const family = isIP(net);
  if (family === 0 || extra !== undefined) return false;
  if (len === undefined) return true;
  const n = Number(len);
  return /^\d{1,3}$/.test(len) && n >= 0 && n <= (family === 6 ? 128 : 32);
}

type Resolver = (host: string) => Promise<LookupAddress[]>;
const systemResolver: Resolver = (host) =>
  new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (err, addrs) => (err ? reject(err) : resolve(addrs))),
  );

function hostOf(u: URL): string {
  // URL keeps IPv6 literals in brackets.
  return u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
}

/**
 * Checks a URL before it is accepted: http(s) only, no credentials in it, and every address its
 * host resolves to allowed. Throws EgressRefused with the reason.
 */
export async function checkOutboundUrl(
  raw: string,
  policy: EgressPolicy = {},
  opts: { resolve?: Resolver; timeoutMs?: number } = {},
): Promise<void> {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new EgressRefused('not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EgressRefused('only http and https');
  if (u.username || u.password) throw new EgressRefused('credentials in the URL are not accepted');
  const host = hostOf(u);
  if (isIP(host)) {
    const why = refusalFor(host, policy);
    if (why) throw new EgressRefused(why);
    return;
  }
  let addrs: LookupAddress[];
  const timeoutMs = opts.timeoutMs ?? 3_000;
  try {
    addrs = await Promise.race([
      (opts.resolve ?? systemResolver)(host),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), timeoutMs).unref()),
    ]);
  } catch (e) {
    throw new EgressRefused(
      `host ${host} does not resolve (${(e as { code?: string }).code ?? (e as Error).message})`,
    );
  }
  if (addrs.length === 0) throw new EgressRefused(`host ${host} does not resolve`);
  for (const a of addrs) {
    const why = refusalFor(a.address, policy);
    if (why) throw new EgressRefused(`host ${host} resolves to ${why}`);
  }
}

/**
 * A `fetch` for webhooks that connects only to allowed addresses: the socket's own DNS lookup is
 * checked, so the address checked is the address used. No redirects are followed (a 3xx is an
 * answer, not ok). Bodies are strings; enough for JSON webhooks.
 */
export function guardedFetch(policy: EgressPolicy = {}): typeof fetch {
  const lookup = (
    hostname: string,
    options: { family?: number | string; all?: boolean },
    cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addrs) => {
      if (err) return cb(err, '', 0);
      const refused = addrs.map((a) => refusalFor(a.address, policy)).find((w) => w !== undefined);
      if (refused) return cb(new EgressRefused(`host ${hostname} resolves to ${refused}`), '', 0);
      if (options.all) return cb(null, addrs);
      const first = addrs[0];
      if (!first) return cb(new EgressRefused(`host ${hostname} does not resolve`), '', 0);
      cb(null, first.address, first.family);
    });
  };
  const f = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const u = new URL(input instanceof Request ? input.url : String(input));
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new EgressRefused('only http and https');
    const host = hostOf(u);
    // A literal address never goes through lookup: check it here.
    if (isIP(host)) {
      const why = refusalFor(host, policy);
      if (why) throw new EgressRefused(why);
    }
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => {
      headers[k] = v;
    });
    const body = init.body === undefined || init.body === null ? undefined : String(init.body);
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request(
        u,
        {
          method: init.method ?? 'GET',
          headers,
          lookup: lookup as never,
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            // A webhook's answer is not read for content: keep at most 64 KiB of it.
            if (size < 65_536) chunks.push(c);
            size += c.length;
          });
          res.on('end', () => {
            const h = new Headers();
            for (const [k, v] of Object.entries(res.headers))
              if (typeof v === 'string') h.set(k, v);
              else if (Array.isArray(v)) for (const x of v) h.append(k, x);
            const status = res.statusCode ?? 502;
            const nullBody = status === 204 || status === 304 || (status >= 100 && status < 200);
            resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: h }));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  };
  return f as typeof fetch;
}
