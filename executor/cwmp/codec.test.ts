import { describe, expect, it } from 'vitest';
import { canAdvance, idempotencyKey, parameterKeyFor } from '../executor.js';
import { CredentialCipher } from '../secrets.js';
import { udpConnectionRequest } from './connection-request.js';
import { authorize, NonceIssuer, parseChallenge, parseDigestAuthorization, verifyDigest } from './digest.js';
import { buildRequest, negotiateVersion, parseEnvelope, SoapError } from './soap.js';

describe('executor seam helpers', () => {
  it('statuses only move forward', () => {
    expect(canAdvance('queued', 'triggered')).toBe(true);
    expect(canAdvance('in_session', 'done')).toBe(true);
    expect(canAdvance('in_session', 'queued')).toBe(false);
    expect(canAdvance('done', 'failed')).toBe(false);
    expect(canAdvance('expired', 'expired')).toBe(true);
  });
  it('derives a stable ParameterKey of at most 32 characters from the idempotency key', () => {
    const k = idempotencyKey({ scope: 'rollout-7', step: 'wave-2/download' }, 'OUI-PC-SN', 'download');
    expect(k).toBe('rollout-7/wave-2%2Fdownload/OUI-PC-SN/download');
    expect(parameterKeyFor(k)).toBe(parameterKeyFor(k));
    expect(parameterKeyFor(k).length).toBeLessThanOrEqual(32);
    expect(parameterKeyFor(k)).not.toBe(parameterKeyFor(`${k}x`));
  });
});

describe('SOAP codec', () => {
  it('round-trips an ACS request with escaping and parses what it built', () => {
    const xml = buildRequest(
      { ns: 'urn:dslforum-org:cwmp-1-3', id: 'a<b' },
      {
        rpc: 'SetParameterValues',
        values: [{ path: 'Device.WiFi.SSID.1.SSID', value: '<&"x">' }],
        parameterKey: 'k',
      },
    );
    expect(xml).toContain('&lt;&amp;&quot;x&quot;&gt;');
    expect(xml).toContain('xsi:type="xsd:string"');
    expect(xml).toContain('soap-enc:arrayType="cwmp:ParameterValueStruct[1]"');
  });
  it('refuses DTDs, other SOAP versions and messages without a cwmp namespace', () => {
    for (const bad of [
      '<!DOCTYPE x><x/>',
      '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><a/></e:Body></e:Envelope>',
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x:Inform xmlns:x="urn:x"/></s:Body></s:Envelope>',
    ])
      expect(() => parseEnvelope(bad)).toThrow(SoapError);
  });
  it('takes the namespace bound on the RPC element, even when declared there', () => {
    const e = parseEnvelope(
      '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><c:GetRPCMethods xmlns:c="urn:dslforum-org:cwmp-1-3"/></s:Body></s:Envelope>',
    );
    expect(e).toMatchObject({
      ns: 'urn:dslforum-org:cwmp-1-3',
      minor: 3,
      id: null,
      message: { type: 'GetRPCMethods' },
    });
  });
  it('negotiates the highest common version', () => {
    expect(negotiateVersion(['1.0', '1.4', '1.2'])).toBe('1.4');
    expect(negotiateVersion(['1.0', '1.9'])).toBe('1.0');
    expect(negotiateVersion(['2.0'])).toBeNull();
    expect(negotiateVersion(null)).toBeNull();
  });
});

describe('digest authentication', () => {
  it('accepts the right password, refuses a wrong one, flags stale and forged nonces', () => {
    const issuer = new NonceIssuer('acs', 1_000);
    const ch = parseChallenge(issuer.challenge())!;
    expect(ch.qop).toBe('auth');
    const header = authorize(ch, { username: 'u', password: 'p' }, 'POST', '/');
    const c = parseDigestAuthorization(header)!;
    expect(verifyDigest(c, 'p', 'POST')).toBe(true);
    expect(verifyDigest(c, 'q', 'POST')).toBe(false);
    expect(verifyDigest(c, 'p', 'GET')).toBe(false);
    expect(issuer.check(c.nonce)).toBe('ok');
    expect(issuer.check(c.nonce, Date.now() + 5_000)).toBe('stale');
    expect(issuer.check(`${c.nonce.split('.')[0]}.forged0000000000000000`)).toBe('bad');
    expect(new NonceIssuer('acs').check(c.nonce)).toBe('bad');
    expect(parseDigestAuthorization('Basic dTpw')).toBeNull();
  });
  it('hands out one challenge per second, never a stale one twice, and checks remembered nonces alike', () => {
    const issuer = new NonceIssuer('acs', 5_000);
    const t = 1_800_000_000_000;
    const a = issuer.challenge(false, t);
    expect(issuer.challenge(false, t + 999)).toBe(a);
    const b = issuer.challenge(false, t + 1_000);
    expect(b).not.toBe(a);
    const stale = issuer.challenge(true, t + 1_001);
    expect(stale).toContain('stale=true');
    expect(issuer.challenge(false, t + 1_002)).toBe(b);
    const na = parseChallenge(a)!.nonce;
    // Remembered (no HMAC) or not, the same answers.
    expect(issuer.check(na, t + 10)).toBe('ok');
    expect(issuer.check(na, t + 6_000)).toBe('stale');
    expect(new NonceIssuer('acs', 5_000, Buffer.alloc(32, 1)).check(na, t + 10)).toBe('bad');
    expect(issuer.check(`${na.split('.')[0]}.forged0000000000000000`, t + 10)).toBe('bad');
  });
});

describe('credential encryption and UDP connection requests', () => {
  it('encrypts at rest with authenticated encryption', () => {
    const c = new CredentialCipher('k');
    const enc = c.encrypt('s3cret');
    expect(enc).toMatch(/^v1:/);
    expect(enc).not.toContain('s3cret');
    expect(c.decrypt(enc)).toBe('s3cret');
    expect(() => new CredentialCipher('other').decrypt(enc)).toThrow();
    const tampered = `${enc.slice(0, -2)}AA`;
    expect(() => c.decrypt(tampered)).toThrow();
  });
  it('signs the Annex G message with HMAC-SHA1 over ts, id, un, cn', async () => {
    const { createHmac } = await import('node:crypto');
    const msg = udpConnectionRequest('127.0.0.1:7547', 'user', 'pw', 1_700_000_000_000).toString();
    expect(msg).toMatch(
      /^GET http:\/\/127\.0\.0\.1:7547\?ts=1700000000&id=[0-9a-f]+&un=user&cn=[0-9a-f]+&sig=[0-9a-f]{40} HTTP\/1\.1\r\n/,
    );
    const q = new URL(msg.split(' ')[1]!).searchParams;
    const sig = createHmac('sha1', 'pw')
      .update(`${q.get('ts')}${q.get('id')}${q.get('un')}${q.get('cn')}`)
      .digest('hex');
    expect(q.get('sig')).toBe(sig);
  });
});
