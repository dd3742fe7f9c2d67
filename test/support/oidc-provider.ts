/**
 * A small but real OIDC provider for tests, on loopback (node:http + jose): discovery, an
 * authorization endpoint (the user is chosen by the test: `loginAs`), a token endpoint that checks
 * the client, the redirect URI, single use of the code and the PKCE S256 verifier, and a JWKS.
 * ID tokens are RS256-signed JWTs. `misbehave` makes it issue tokens a relying party must refuse.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export interface TestOidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The subject the next /authorize signs in (the user at the provider). */
  loginAs: string;
  /** Make the next ID tokens wrong in one way. */
  misbehave: 'none' | 'rogue-key' | 'wrong-audience' | 'wrong-nonce' | 'expired' | 'wrong-issuer';
  /** Token requests the provider refused, with why. */
  refused: string[];
  close(): Promise<void>;
}

async function form(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const c of req) body += c;
  return new URLSearchParams(body);
}

export async function startOidcProvider(opts: { redirectUris: string[] }): Promise<TestOidcProvider> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const rogue = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  const codes = new Map<
    string,
    { sub: string; nonce: string; challenge: string; redirectUri: string; clientId: string; used: boolean }
  >();
  const provider: TestOidcProvider = {
    issuer: '',
    clientId: 'fleetbrain-console',
    clientSecret: randomBytes(16).toString('hex'),
    loginAs: '',
    misbehave: 'none',
    refused: [],
    close: async () => undefined,
  };
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', provider.issuer);
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration')
      return json(res, 200, {
        issuer: provider.issuer,
        authorization_endpoint: `${provider.issuer}/authorize`,
        token_endpoint: `${provider.issuer}/token`,
        jwks_uri: `${provider.issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      });
    if (req.method === 'GET' && url.pathname === '/jwks') return json(res, 200, { keys: [jwk] });
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      const redirectUri = q.get('redirect_uri') ?? '';
      // An unregistered redirect URI is never redirected to.
      if (q.get('client_id') !== provider.clientId || !opts.redirectUris.includes(redirectUri))
        return json(res, 400, {
          error: 'invalid_request',
          error_description: 'unknown client or redirect_uri',
        });
      const back = new URL(redirectUri);
      back.searchParams.set('state', q.get('state') ?? '');
      if (
        q.get('response_type') !== 'code' ||
        q.get('code_challenge_method') !== 'S256' ||
        !q.get('code_challenge') ||
        !(q.get('scope') ?? '').split(' ').includes('openid')
      ) {
        back.searchParams.set('error', 'invalid_request');
      } else {
        const code = randomBytes(18).toString('base64url');
        codes.set(code, {
          sub: provider.loginAs,
          nonce: q.get('nonce') ?? '',
          challenge: q.get('code_challenge') ?? '',
          redirectUri,
          clientId: provider.clientId,
          used: false,
        });
        back.searchParams.set('code', code);
      }
      res.writeHead(302, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const f = await form(req);
      const refuse = (why: string) => {
        provider.refused.push(why);
        return json(res, 400, { error: 'invalid_grant', error_description: why });
      };
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const [id, secret] = basic
        ? Buffer.from(basic, 'base64').toString().split(':').map(decodeURIComponent)
        : [];
      if (id !== provider.clientId || secret !== provider.clientSecret)
        return refuse('client authentication');
      const entry = codes.get(f.get('code') ?? '');
      if (f.get('grant_type') !== 'authorization_code' || !entry) return refuse('unknown code');
      if (entry.used) return refuse('code already used');
      entry.used = true;
      if (f.get('redirect_uri') !== entry.redirectUri) return refuse('redirect_uri differs');
      const verifier = f.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== entry.challenge)
        return refuse('PKCE verifier does not match the challenge');
      const m = provider.misbehave;
      const now = Math.floor(Date.now() / 1000);
      const idToken = await new SignJWT({
        nonce: m === 'wrong-nonce' ? 'another-nonce' : entry.nonce,
        name: entry.sub,
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'JWT' })
        .setIssuer(m === 'wrong-issuer' ? 'https://evil.example' : provider.issuer)
        .setSubject(entry.sub)
        .setAudience(m === 'wrong-audience' ? 'another-client' : entry.clientId)
        .setIssuedAt(m === 'expired' ? now - 7200 : now)
        .setExpirationTime(m === 'expired' ? now - 3600 : now + 300)
        .sign(m === 'rogue-key' ? rogue.privateKey : privateKey);
      return json(res, 200, {
        access_token: randomBytes(16).toString('hex'),
        token_type: 'Bearer',
        expires_in: 300,
        id_token: idToken,
      });
    }
    return json(res, 404, { error: 'not_found' });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  provider.issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  provider.close = () => new Promise<void>((r) => server.close(() => r()));
  return provider;
}
