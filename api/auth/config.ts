import { z } from 'zod';

/** Only asymmetric algorithms: a verifier holding a public key must never accept an HMAC or `none`. */
export const jwtAlgorithmSchema = z.enum([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
]);
export type JwtAlgorithm = z.infer<typeof jwtAlgorithmSchema>;

export const jwtConfigSchema = z
  .object({
    issuer: z.string().min(1),
    audience: z.string().min(1),
    algorithms: z.array(jwtAlgorithmSchema).min(1),
    /** The OIDC provider's JWKS; without it and without a key, discovered from the issuer. */
    jwksUrl: z.url().optional(),
    /** A PEM public key (SPKI) instead of a JWKS. */
    publicKeyPem: z.string().optional(),
    clockToleranceSec: z.number().int().min(0).max(300).default(30),
  })
  .strict();
export type JwtConfig = z.input<typeof jwtConfigSchema>;

/** Console sign-in through an OIDC provider: authorization code flow with PKCE (S256). */
export const oidcLoginSchema = z
  .object({
    /** The provider's issuer; its discovery document must name the same issuer. */
    issuer: z.url(),
    clientId: z.string().min(1),
    /** Confidential client (client_secret_basic); without it the API is a public client relying on PKCE. */
    clientSecret: z.string().min(1).optional(),
    /** This API's `/auth/oidc/callback` as the provider knows it. */
    redirectUrl: z.url(),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email']),
    algorithms: z.array(jwtAlgorithmSchema).min(1).default(['RS256', 'ES256']),
    /** Lifetime of the API token a sign-in issues. */
    sessionHours: z.number().positive().max(24).default(8),
    clockToleranceSec: z.number().int().min(0).max(300).default(30),
  })
  .strict();
export type OidcLoginConfig = z.input<typeof oidcLoginSchema>;

export interface AuthOptions {
  /** JWT login (OIDC); bearer tokens work with or without it. */
  jwt?: JwtConfig;
  /** Console sign-in with an OIDC provider (code + PKCE); absent: tokens only. */
  oidc?: OidcLoginConfig;
}

const envSchema = z.object({
  FLEETBRAIN_JWT_ISSUER: z.string().min(1).optional(),
  FLEETBRAIN_JWT_AUDIENCE: z.string().min(1).optional(),
  FLEETBRAIN_JWT_ALGORITHMS: z.string().default('RS256,ES256'),
  FLEETBRAIN_JWT_JWKS_URL: z.url().optional(),
  FLEETBRAIN_JWT_PUBLIC_KEY: z.string().optional(),
  FLEETBRAIN_OIDC_ISSUER: z.url().optional(),
  FLEETBRAIN_OIDC_CLIENT_ID: z.string().min(1).optional(),
  FLEETBRAIN_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  FLEETBRAIN_OIDC_REDIRECT_URL: z.url().optional(),
});

/** Auth settings from the environment; JWT is on when an issuer and an audience are set. */
export function authOptionsFromEnv(source: NodeJS.ProcessEnv = process.env): AuthOptions {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const env = envSchema.parse(cleaned);
  const oidc = oidcFromEnv(env);
  if (!env.FLEETBRAIN_JWT_ISSUER && !env.FLEETBRAIN_JWT_AUDIENCE) return oidc ? { oidc } : {};
  if (!env.FLEETBRAIN_JWT_ISSUER || !env.FLEETBRAIN_JWT_AUDIENCE) {
    throw new Error('FLEETBRAIN_JWT_ISSUER and FLEETBRAIN_JWT_AUDIENCE must be set together');
  }
  const algorithms = z
    .array(jwtAlgorithmSchema)
    .parse(env.FLEETBRAIN_JWT_ALGORITHMS.split(',').map((s) => s.trim()));
  return {
    ...(oidc ? { oidc } : {}),
    jwt: {
      issuer: env.FLEETBRAIN_JWT_ISSUER,
      audience: env.FLEETBRAIN_JWT_AUDIENCE,
      algorithms,
      ...(env.FLEETBRAIN_JWT_JWKS_URL ? { jwksUrl: env.FLEETBRAIN_JWT_JWKS_URL } : {}),
      ...(env.FLEETBRAIN_JWT_PUBLIC_KEY ? { publicKeyPem: env.FLEETBRAIN_JWT_PUBLIC_KEY } : {}),
    },
  };
}

function oidcFromEnv(env: z.infer<typeof envSchema>): OidcLoginConfig | undefined {
  const { FLEETBRAIN_OIDC_ISSUER: issuer, FLEETBRAIN_OIDC_CLIENT_ID: clientId } = env;
  const redirectUrl = env.FLEETBRAIN_OIDC_REDIRECT_URL;
  if (!issuer && !clientId && !redirectUrl) return undefined;
  if (!issuer || !clientId || !redirectUrl)
    throw new Error(
      'FLEETBRAIN_OIDC_ISSUER, FLEETBRAIN_OIDC_CLIENT_ID and FLEETBRAIN_OIDC_REDIRECT_URL must be set together',
    );
  return {
    issuer,
    clientId,
    redirectUrl,
    ...(env.FLEETBRAIN_OIDC_CLIENT_SECRET ? { clientSecret: env.FLEETBRAIN_OIDC_CLIENT_SECRET } : {}),
  };
}
