/**
 * Console sign-in with an OIDC provider, end to end against a real provider on loopback
 * (test/support/oidc-provider.ts): authorization code + PKCE, state bound to the browser, ID token
 * verified by the API against the provider's JWKS over HTTP. Every refusal has its status.
 */
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../../api/server.js';
import { createTestIdentity } from '../support/auth.js';
import { createTestDatabase } from '../support/db.js';
import { startOidcProvider, type TestOidcProvider } from '../support/oidc-provider.js';

const REDIRECT = 'http://console.test/auth/oidc/callback';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let connection: Connection;
let provider: TestOidcProvider;
let server: Awaited<ReturnType<typeof buildServer>>;

beforeAll(async () => {
  db = await createTestDatabase();
  connection = Connection.lazy({ address: inject('temporalAddress') });
  provider = await startOidcProvider({ redirectUris: [REDIRECT] });
  server = await buildServer({
    db,
    temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: 'oidc-no-worker' },
    readiness: [],
    auth: {
      oidc: {
        issuer: provider.issuer,
        clientId: provider.clientId,
        clientSecret: provider.clientSecret,
        redirectUrl: REDIRECT,
      },
    },
    hardening: { rateLimitPerMin: false },
  });
  await createTestIdentity(db.db, 'olga', ['operator'], { oidcSubject: 'olga@idp' });
}, 60_000);
afterAll(async () => {
  await server?.close();
  await provider?.close();
  await connection?.close();
  await db?.drop();
});

/** What a browser does: start at the API, follow to the provider, come back with the cookie. */
async function signIn(opts: { keepCookie?: boolean; tamper?: (back: URL) => void } = {}) {
  const login = await server.inject({ url: '/auth/oidc/login' });
  expect(login.statusCode, login.body).toBe(302);
  const to = new URL(String(login.headers.location));
  const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
  const atProvider = await fetch(to, { redirect: 'manual' });
  expect(atProvider.status).toBe(302);
  const back = new URL(atProvider.headers.get('location') ?? '');
  opts.tamper?.(back);
  const cb = await server.inject({
    url: `${back.pathname}${back.search}`,
    headers: opts.keepCookie === false ? {} : { cookie },
  });
  return { login, to, cookie, back, cb };
}

describe('sign-in with an OIDC provider', () => {
  it('says it is configured (public), and sends the browser to the provider with PKCE S256, state and nonce', async () => {
    const info = await server.inject({ url: '/auth/oidc' });
    expect(info.json()).toEqual({ enabled: true, issuer: provider.issuer });
    const login = await server.inject({ url: '/auth/oidc/login' });
    expect(login.statusCode).toBe(302);
    const to = new URL(String(login.headers.location));
    expect(`${to.origin}${to.pathname}`).toBe(`${provider.issuer}/authorize`);
    const q = to.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('redirect_uri')).toBe(REDIRECT);
    expect(q.get('scope')?.split(' ')).toContain('openid');
    expect(q.get('nonce')?.length).toBeGreaterThan(20);
    expect(String(login.headers['set-cookie'])).toMatch(
      new RegExp(`^fb_oidc=${q.get('state')}; Path=/auth/oidc; HttpOnly; SameSite=Lax`),
    );
  });

  it('signs a known subject in: the ID token is verified, an API token for that identity comes back in the fragment', async () => {
    provider.loginAs = 'olga@idp';
    provider.misbehave = 'none';
    const { cb } = await signIn();
    expect(cb.statusCode, cb.body).toBe(302);
    const location = String(cb.headers.location);
    expect(location).toMatch(/^\/console\/#signed-in=fbt_/);
    expect(cb.headers['cache-control']).toBe('no-store');
    const token = location.split('=')[1];
    const me = await server.inject({ url: '/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ name: 'olga', roles: ['operator'] });
    const tokens = (
      await server.inject({ url: '/me/tokens', headers: { authorization: `Bearer ${token}` } })
    ).json().items as Array<{ name: string; expiresAt: string | null }>;
    const t = tokens.find((x) => x.name === 'console sign-in (OIDC)');
    // Short-lived: at most the configured 8 hours.
    expect(new Date(t?.expiresAt ?? 0).getTime()).toBeLessThanOrEqual(Date.now() + 8 * 3_600_000 + 1000);
  });

  it('refuses ID tokens that fail verification (401): foreign key, audience, nonce, issuer, expiry', async () => {
    provider.loginAs = 'olga@idp';
    for (const m of ['rogue-key', 'wrong-audience', 'wrong-nonce', 'wrong-issuer', 'expired'] as const) {
      provider.misbehave = m;
      const { cb } = await signIn();
      expect(cb.statusCode, m).toBe(401);
      expect(cb.json(), m).toMatchObject({ code: 'oidc_id_token_invalid' });
      expect(cb.headers.location, m).toBeUndefined();
    }
    provider.misbehave = 'none';
  });

  it('refuses a foreign or replayed state (400), a code without its PKCE verifier (401), an unknown subject (403)', async () => {
    provider.loginAs = 'olga@idp';
    provider.misbehave = 'none';
    // Started in another browser: no cookie (login CSRF).
    const noCookie = await signIn({ keepCookie: false });
    expect(noCookie.cb.statusCode).toBe(400);
    expect(noCookie.cb.json()).toMatchObject({ code: 'oidc_state_mismatch', field: 'state' });
    // A state that was never issued.
    const forged = await signIn({ tamper: (b) => b.searchParams.set('state', 'forged-state') });
    expect(forged.cb.statusCode).toBe(400);
    // The same callback twice: the state is single use.
    const first = await signIn();
    expect(first.cb.statusCode).toBe(302);
    const again = await server.inject({
      url: `${first.back.pathname}${first.back.search}`,
      headers: { cookie: first.cookie },
    });
    expect(again.statusCode).toBe(400);
    // A stolen code redeemed through another sign-in: its verifier does not match the code's challenge.
    const victim = await fetch(first.to, { redirect: 'manual' }).catch(() => undefined);
    expect(victim?.status).toBe(302);
    const stolenCode = new URL(victim?.headers.get('location') ?? '').searchParams.get('code') ?? '';
    const refusedBefore = provider.refused.length;
    const attacker = await signIn({ tamper: (b) => b.searchParams.set('code', stolenCode) });
    expect(attacker.cb.statusCode).toBe(401);
    expect(attacker.cb.json()).toMatchObject({ code: 'oidc_code_refused' });
    expect(provider.refused.slice(refusedBefore)).toEqual(['PKCE verifier does not match the challenge']);
    // Signed in at the provider, but not a Fleetbrain identity.
    provider.loginAs = 'mallory@idp';
    const stranger = await signIn();
    expect(stranger.cb.statusCode).toBe(403);
    expect(stranger.cb.json()).toMatchObject({ code: 'no_identity' });
  });

  it('without configuration the sign-in routes answer 404 and /auth/oidc says disabled', async () => {
    const plain = await buildServer({
      db,
      temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: 'oidc-no-worker' },
      readiness: [],
      auth: {},
    });
    try {
      expect((await plain.inject({ url: '/auth/oidc' })).json()).toEqual({ enabled: false, issuer: null });
      const login = await plain.inject({ url: '/auth/oidc/login' });
      expect(login.statusCode).toBe(404);
      expect(login.json()).toMatchObject({ code: 'oidc_not_configured' });
      expect((await plain.inject({ url: '/auth/oidc/callback?state=x&code=y' })).statusCode).toBe(404);
    } finally {
      await plain.close();
    }
  });
});
