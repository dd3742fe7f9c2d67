/**
 * OWASP API7:2023 (SSRF) for outbound webhooks: which addresses are refused, the allowance read
 * from the environment, the check when a URL is accepted, and the check at send time against the
 * address actually connected to (DNS rebinding), with real HTTP receivers on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRolloutActivities } from '../../activities/rollout.js';
import { ConfigError, webhookEgressFromEnv } from '../../platform/config.js';
import { checkOutboundUrl, EgressRefused, guardedFetch, refusalFor } from '../../platform/egress.js';
import { createLogger } from '../../platform/logger.js';

let receiver: Server;
let port = 0;
const received: string[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  port = (receiver.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

describe('addresses', () => {
  it('refuses loopback, private, link-local, metadata and other non-public IPv4 and IPv6', () => {
    for (const a of [
      '127.0.0.1',
      '127.9.9.9',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254', // cloud metadata
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fe80::1',
      'fd00:ec2::254', // AWS metadata over IPv6
      'fc00::1',
      'ff02::1',
      '::ffff:127.0.0.1', // IPv4-mapped
      '::ffff:a9fe:a9fe', // 169.254.169.254, mapped, in hex
      '64:ff9b::a9fe:a9fe', // NAT64 of the metadata address
      '2002:c0a8:0101::1', // 6to4 of 192.168.1.1
      '2001:db8::1',
    ])
      expect(refusalFor(a), a).toBeDefined();
  });

  it('allows public addresses, and non-public ones only as configured', () => {
    for (const a of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808'])
      expect(refusalFor(a), a).toBeUndefined();
    const loop = { allowCidrs: ['127.0.0.1/32', 'fd00:1::/64'] };
    expect(refusalFor('127.0.0.1', loop)).toBeUndefined();
    expect(refusalFor('127.0.0.2', loop)).toMatch(/loopback/);
    expect(refusalFor('fd00:1::5', loop)).toBeUndefined();
    expect(refusalFor('fd00:2::5', loop)).toMatch(/unique-local/);
    expect(refusalFor('169.254.169.254', loop)).toMatch(/metadata/);
    expect(refusalFor('10.0.0.1', { allowPrivate: true })).toBeUndefined();
  });

  it('reads the allowance from the environment, refusing bad values with the key named', () => {
    expect(webhookEgressFromEnv({})).toEqual({ allowPrivate: false, allowCidrs: [] });
    expect(
      webhookEgressFromEnv({
        FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE: 'true',
        FLEETBRAIN_WEBHOOK_ALLOW_CIDRS: '10.20.0.0/16, fd00:1::/64,127.0.0.1',
      }),
    ).toEqual({ allowPrivate: true, allowCidrs: ['10.20.0.0/16', 'fd00:1::/64', '127.0.0.1'] });
    expect(() => webhookEgressFromEnv({ FLEETBRAIN_WEBHOOK_ALLOW_CIDRS: '10.0.0.0/33' })).toThrow(
      /FLEETBRAIN_WEBHOOK_ALLOW_CIDRS/,
    );
    expect(() => webhookEgressFromEnv({ FLEETBRAIN_WEBHOOK_ALLOW_CIDRS: 'intranet' })).toThrow(ConfigError);
    expect(() => webhookEgressFromEnv({ FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE: 'yes' })).toThrow(
      /FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE/,
    );
  });
});

describe('when a URL is accepted', () => {
  it('refuses literals, names resolving to non-public addresses (any of them), credentials and other schemes', async () => {
    const refused = async (
      url: string,
      resolve?: () => Promise<Array<{ address: string; family: number }>>,
    ) => {
      const err = await checkOutboundUrl(url, {}, resolve ? { resolve } : {}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, url).toBeInstanceOf(EgressRefused);
      return (err as Error).message;
    };
    expect(await refused('http://169.254.169.254/latest/meta-data/')).toMatch(/metadata/);
    expect(await refused('http://[::1]:8080/hook')).toMatch(/loopback/);
    expect(await refused('http://[::ffff:10.0.0.1]/')).toMatch(/private/);
    // Real resolution: localhost is loopback.
    expect(await refused(`http://localhost:${port}/hook`)).toMatch(/localhost resolves to .*loopback/);
    // One private answer among public ones is enough to refuse.
    expect(
      await refused('https://hooks.noc.example/x', async () => [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ]),
    ).toMatch(/10\.0\.0\.7 is a private/);
    expect(await refused('https://hooks.invalid/x')).toMatch(/does not resolve/);
    expect(await refused('https://user:pw@93.184.216.34/x')).toMatch(/credentials/);
    expect(await refused('gopher://93.184.216.34/')).toMatch(/http/);
    await expect(
      checkOutboundUrl(
        'https://hooks.noc.example/x',
        {},
        { resolve: async () => [{ address: '93.184.216.34', family: 4 }] },
      ),
    ).resolves.toBeUndefined();
    await expect(
      checkOutboundUrl(`http://127.0.0.1:${port}/`, { allowCidrs: ['127.0.0.1/32'] }),
    ).resolves.toBeUndefined();
  });
});

describe('at send time', () => {
  it('does not connect to a refused address; connects when it is allowed', async () => {
    const before = received.length;
    await expect(
      guardedFetch()(`http://127.0.0.1:${port}/a`, { method: 'POST', body: '{}' }),
    ).rejects.toThrow(EgressRefused);
    expect(received.length).toBe(before);
    const ok = await guardedFetch({ allowCidrs: ['127.0.0.1/32'] })(`http://127.0.0.1:${port}/b`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"x":1}',
    });
    expect(ok.status).toBe(204);
    expect(received.at(-1)).toBe('POST /b');
  });

  it('DNS rebinding: a name that passed the creation check is refused when it now resolves to loopback', async () => {
    const url = `http://localhost:${port}/rebound`;
    // At creation the name resolved to a public address …
    await checkOutboundUrl(url, {}, { resolve: async () => [{ address: '93.184.216.34', family: 4 }] });
    // … at send time the socket's own lookup says loopback: refused before connecting.
    const before = received.length;
    const err = await guardedFetch()(url, { method: 'POST', body: '{}' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressRefused);
    expect((err as Error).message).toMatch(/localhost resolves to .*loopback/);
    expect(received.length).toBe(before);
  });

  it('the rollout notifier skips a refused target (no retry loop) and posts to an allowed one', async () => {
    const logger = createLogger({ name: 'ssrf-test', level: 'error' });
    const input = {
      rolloutId: 'ro-ssrf',
      event: 'halt' as const,
      targets: [{ url: `http://127.0.0.1:${port}/hook`, events: ['halt' as const] }],
      data: {},
      key: 'halt',
    };
    const before = received.length;
    // Default sender, no allowance in this process's environment.
    expect(process.env.FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE ?? '').not.toMatch(/^(true|1)$/);
    expect(await createRolloutActivities({ logger }).notifyRollout(input)).toBe(0);
    expect(received.length).toBe(before);
    const allowed = createRolloutActivities({
      logger,
      rolloutFetch: guardedFetch({ allowCidrs: ['127.0.0.1/32'] }),
    });
    expect(await allowed.notifyRollout(input)).toBe(1);
    expect(received.at(-1)).toBe('POST /hook');
  });
});
