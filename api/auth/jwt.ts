import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { z } from 'zod';
import { type JwtConfig, jwtConfigSchema } from './config.js';

export type JwtVerifier = (token: string) => Promise<{ subject: string }>;

const discoverySchema = z.object({ issuer: z.string(), jwks_uri: z.url() });

/** OIDC discovery: the provider's JWKS address, checked to belong to the configured issuer. */
async function discoverJwks(issuer: string): Promise<URL> {
  const res = await fetch(
    new URL('.well-known/openid-configuration', issuer.endsWith('/') ? issuer : `${issuer}/`),
    {
      signal: AbortSignal.timeout(5_000),
    },
  );
  if (!res.ok) throw new Error(`OIDC discovery at ${issuer} answered ${res.status}`);
  const doc = discoverySchema.parse(await res.json());
  if (doc.issuer !== issuer) throw new Error(`OIDC discovery issuer ${doc.issuer} differs from ${issuer}`);
  return new URL(doc.jwks_uri);
}

/**
 * Verifies a JWT with pinned algorithms (asymmetric only), issuer, audience, expiry and a subject.
 * Any failure throws; the caller answers 401 without saying which check failed.
 */
export function createJwtVerifier(input: JwtConfig): JwtVerifier {
  const cfg = jwtConfigSchema.parse(input);
  let key: KeyObject | JWTVerifyGetKey | undefined;
  let resolving: Promise<KeyObject | JWTVerifyGetKey> | undefined;
  if (cfg.publicKeyPem) key = createPublicKey(cfg.publicKeyPem);
  else if (cfg.jwksUrl) key = createRemoteJWKSet(new URL(cfg.jwksUrl));
  const getKey = async () => {
    if (key) return key;
    resolving ??= discoverJwks(cfg.issuer).then((url) => createRemoteJWKSet(url));
    // A failed discovery is retried on the next request rather than cached.
    resolving.catch(() => {
      resolving = undefined;
    });
    key = await resolving;
    return key;
  };
  return async (token) => {
    const k = await getKey();
    const options = {
      issuer: cfg.issuer,
      audience: cfg.audience,
      algorithms: cfg.algorithms,
      clockTolerance: cfg.clockToleranceSec,
      requiredClaims: ['sub', 'exp'],
    };
    const { payload } =
      typeof k === 'function' ? await jwtVerify(token, k, options) : await jwtVerify(token, k, options);
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('JWT without a subject');
    return { subject: payload.sub };
  };
}
