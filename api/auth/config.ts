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

export interface AuthOptions {
  /** JWT login (OIDC); bearer tokens work with or without it. */
  jwt?: JwtConfig;
}

const envSchema = z.object({
  FLEETBRAIN_JWT_ISSUER: z.string().min(1).optional(),
  FLEETBRAIN_JWT_AUDIENCE: z.string().min(1).optional(),
  FLEETBRAIN_JWT_ALGORITHMS: z.string().default('RS256,ES256'),
  FLEETBRAIN_JWT_JWKS_URL: z.url().optional(),
  FLEETBRAIN_JWT_PUBLIC_KEY: z.string().optional(),
});

/** Auth settings from the environment; JWT is on when an issuer and an audience are set. */
export function authOptionsFromEnv(source: NodeJS.ProcessEnv = process.env): AuthOptions {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const env = envSchema.parse(cleaned);
  if (!env.FLEETBRAIN_JWT_ISSUER && !env.FLEETBRAIN_JWT_AUDIENCE) return {};
  if (!env.FLEETBRAIN_JWT_ISSUER || !env.FLEETBRAIN_JWT_AUDIENCE) {
    throw new Error('FLEETBRAIN_JWT_ISSUER and FLEETBRAIN_JWT_AUDIENCE must be set together');
  }
  const algorithms = z
    .array(jwtAlgorithmSchema)
    .parse(env.FLEETBRAIN_JWT_ALGORITHMS.split(',').map((s) => s.trim()));
  return {
    jwt: {
      issuer: env.FLEETBRAIN_JWT_ISSUER,
      audience: env.FLEETBRAIN_JWT_AUDIENCE,
      algorithms,
      ...(env.FLEETBRAIN_JWT_JWKS_URL ? { jwksUrl: env.FLEETBRAIN_JWT_JWKS_URL } : {}),
      ...(env.FLEETBRAIN_JWT_PUBLIC_KEY ? { publicKeyPem: env.FLEETBRAIN_JWT_PUBLIC_KEY } : {}),
    },
  };
}
