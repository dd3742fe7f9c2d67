import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { AuthOptions } from '../../api/auth/config.js';
import { buildServer } from '../../api/server.js';
import { createIdentity, issueToken, revokeToken, setDisabled } from '../../db/identities.js';
import { createTestIdentity } from '../support/auth.js';
import { createTestDatabase } from '../support/db.js';

const ISSUER = 'https://idp.example.test/realms/noc';
const AUDIENCE = 'fleetbrain-api';
type FastifyInstance = Awaited<ReturnType<typeof buildServer>>;
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

describe('API authentication', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let connection: Connection;
  let jwks: Server;
  let jwksUrl: string;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let otherKeys: Awaited<ReturnType<typeof generateKeyPair>>;
  let publicPem: string;
  const servers: FastifyInstance[] = [];
  let withPem: FastifyInstance;
  let withJwks: FastifyInstance;
  let noJwt: FastifyInstance;
  let alice: Awaited<ReturnType<typeof createTestIdentity>>;
  let vic: Awaited<ReturnType<typeof createTestIdentity>>;

  async function server(auth: AuthOptions) {
    const s = await buildServer({
      db,
      temporal: { client: new Client({ connection }), namespace: 'default', taskQueue: 'unused' },
      readiness: [],
      auth,
    });
    servers.push(s);
    return s;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    connection = Connection.lazy({ address: inject('temporalAddress') });
    keys = await generateKeyPair('RS256', { extractable: true });
    otherKeys = await generateKeyPair('RS256', { extractable: true });
    publicPem = await exportSPKI(keys.publicKey);
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
    const jwt = { issuer: ISSUER, audience: AUDIENCE, algorithms: ['RS256' as const] };
    withPem = await server({ jwt: { ...jwt, publicKeyPem: publicPem } });
    withJwks = await server({ jwt: { ...jwt, jwksUrl } });
    noJwt = await server({});
    alice = await createTestIdentity(db.db, 'alice', ['operator'], { oidcSubject: 'sub-alice' });
    vic = await createTestIdentity(db.db, 'vic', ['viewer']);
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    jwks?.close();
    await connection?.close();
    await db?.drop();
  });

  const me = (s: FastifyInstance, authorization?: string) =>
    s.inject({ method: 'GET', url: '/me', headers: authorization ? { authorization } : {} });

  function sign(
    payload: JWTPayload,
    opts: { key?: PrivateKey; iss?: string; aud?: string; exp?: string | number } = {},
  ) {
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject('sub-alice')
      .setIssuer(opts.iss ?? ISSUER)
      .setAudience(opts.aud ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? keys.privateKey);
  }

  describe('bearer tokens', () => {
    it('401 without a token, and says how to authenticate', async () => {
      const res = await me(noJwt);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: 'unauthenticated' });
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it('401 for a malformed header or an unknown token', async () => {
      expect((await me(noJwt, `Basic ${Buffer.from('a:b').toString('base64')}`)).statusCode).toBe(401);
      expect((await me(noJwt, 'Bearer fbt_not-a-real-token')).statusCode).toBe(401);
      expect((await me(noJwt, 'Bearer')).statusCode).toBe(401);
    });

    it('200 with a valid token, roles from the database', async () => {
      const res = await me(noJwt, alice.headers.authorization);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        id: alice.principal.id,
        name: 'alice',
        kind: 'user',
        roles: ['operator'],
      });
    });

    it('stores only a hash of the token', async () => {
      const { rows } = await db.pool.query('SELECT token_hash, prefix FROM api_tokens');
      for (const r of rows) {
        expect(r.token_hash).toMatch(/^[0-9a-f]{64}$/);
        expect(alice.token).not.toContain(r.token_hash);
      }
      expect(JSON.stringify(rows)).not.toContain(alice.token);
    });

    it('401 for a revoked token, an expired token and a disabled identity', async () => {
      const row = await createIdentity(db.db, { name: 'tmp', kind: 'user', roles: ['viewer'] });
      const revoked = await issueToken(db.db, row.id, { name: 'r' });
      await revokeToken(db.db, revoked.id);
      expect((await me(noJwt, `Bearer ${revoked.token}`)).statusCode).toBe(401);
      const expired = await issueToken(db.db, row.id, { name: 'e', expiresAt: new Date(Date.now() - 1000) });
      expect((await me(noJwt, `Bearer ${expired.token}`)).statusCode).toBe(401);
      const live = await issueToken(db.db, row.id, { name: 'l' });
      expect((await me(noJwt, `Bearer ${live.token}`)).statusCode).toBe(200);
      await setDisabled(db.db, 'tmp', true);
      expect((await me(noJwt, `Bearer ${live.token}`)).statusCode).toBe(401);
    });

    it('403 for the wrong role', async () => {
      const verify = await noJwt.inject({
        method: 'POST',
        url: '/audit/verify',
        headers: vic.headers,
        payload: {},
      });
      expect(verify.statusCode).toBe(403);
      expect(verify.json()).toMatchObject({ code: 'forbidden' });
      const inbox = await noJwt.inject({ method: 'GET', url: '/approvals/inbox', headers: alice.headers });
      expect(inbox.statusCode).toBe(403);
      // The same viewer may read what its role allows.
      expect(
        (await noJwt.inject({ method: 'GET', url: '/audit/head', headers: vic.headers })).statusCode,
      ).toBe(200);
    });

    it('keeps public routes public and everything else closed', async () => {
      expect((await noJwt.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      expect((await noJwt.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(200);
      expect((await noJwt.inject({ method: 'GET', url: '/approvals' })).statusCode).toBe(401);
      expect((await noJwt.inject({ method: 'GET', url: '/audit' })).statusCode).toBe(401);
    });

    it('lets a user revoke only their own tokens (others’ are not even found), an admin any', async () => {
      const admin = await createTestIdentity(db.db, 'root', ['admin']);
      const mine = await noJwt.inject({
        method: 'POST',
        url: '/me/tokens',
        headers: vic.headers,
        payload: { name: 'ci' },
      });
      expect(mine.statusCode).toBe(201);
      const { id, token } = mine.json() as { id: string; token: string };
      expect((await me(noJwt, `Bearer ${token}`)).json()).toMatchObject({ name: 'vic' });
      const byOther = await noJwt.inject({ method: 'DELETE', url: `/tokens/${id}`, headers: alice.headers });
      expect(byOther.statusCode).toBe(404);
      expect((await me(noJwt, `Bearer ${token}`)).statusCode).toBe(200);
      const byAdmin = await noJwt.inject({ method: 'DELETE', url: `/tokens/${id}`, headers: admin.headers });
      expect(byAdmin.statusCode).toBe(204);
      expect((await me(noJwt, `Bearer ${token}`)).statusCode).toBe(401);
    });
  });

  describe('JWT', () => {
    it('accepts a valid RS256 token with the pinned issuer and audience (PEM key and OIDC JWKS)', async () => {
      const token = await sign({});
      for (const s of [withPem, withJwks]) {
        const res = await me(s, `Bearer ${token}`);
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ name: 'alice', roles: ['operator'] });
      }
    });

    it('ignores role claims in the token: roles come from the database', async () => {
      const res = await me(withPem, `Bearer ${await sign({ roles: ['admin'] })}`);
      expect(res.json()).toMatchObject({ roles: ['operator'] });
    });

    it('401 for alg none', async () => {
      const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'sub-alice', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 300 })}.`;
      for (const s of [withPem, withJwks]) expect((await me(s, `Bearer ${unsigned}`)).statusCode).toBe(401);
    });

    it('401 for an HS256 token signed with the public key', async () => {
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
        .setSubject('sub-alice')
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(publicPem));
      for (const s of [withPem, withJwks]) expect((await me(s, `Bearer ${forged}`)).statusCode).toBe(401);
    });

    it('401 for a wrong issuer, a wrong audience, an expired token, another key, an unknown subject', async () => {
      const bad = [
        await sign({}, { iss: 'https://evil.example.test' }),
        await sign({}, { aud: 'another-api' }),
        await sign({}, { exp: Math.floor(Date.now() / 1000) - 120 }),
        await sign({}, { key: otherKeys.privateKey }),
        await new SignJWT({})
          .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
          .setSubject('sub-nobody')
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('5m')
          .sign(keys.privateKey),
      ];
      for (const token of bad) {
        for (const s of [withPem, withJwks]) {
          const res = await me(s, `Bearer ${token}`);
          expect(res.statusCode).toBe(401);
          expect(res.json()).toMatchObject({ code: 'unauthenticated' });
        }
      }
    });

    it('401 for any JWT when JWT login is not configured', async () => {
      expect((await me(noJwt, `Bearer ${await sign({})}`)).statusCode).toBe(401);
    });
  });
});
