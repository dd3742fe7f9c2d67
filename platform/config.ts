import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isCidr } from './egress.js';
import { repoRoot } from './paths.js';

/** Raised for any invalid setting; the message is one line naming the key and what is expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

const port = z.coerce.number().int().min(1).max(65535);

export const temporalYamlSchema = z
  .object({
    address: z.string().regex(/^[^\s:]+:\d+$/, 'host:port'),
    namespace: z.string().min(1),
    taskQueues: z.object({ workflows: z.string().min(1) }).strict(),
    worker: z
      .object({
        maxConcurrentActivityTaskExecutions: z.number().int().positive(),
        maxConcurrentWorkflowTaskExecutions: z.number().int().min(2),
        maxCachedWorkflows: z.number().int().nonnegative(),
        shutdownGraceTimeSeconds: z.number().int().nonnegative(),
      })
      .strict(),
    searchAttributes: z.record(
      z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/),
      z.enum(['Keyword', 'Text', 'Int', 'Double', 'Bool', 'Datetime', 'KeywordList']),
    ),
    devServer: z
      .object({
        ip: z.string().min(1),
        port,
        uiPort: port,
        dbFile: z.string().min(1),
        logLevel: z.enum(['debug', 'info', 'warn', 'error']),
      })
      .strict(),
  })
  .strict();
export type TemporalYaml = z.infer<typeof temporalYamlSchema>;

const optionalUrl = z.url().optional();

export const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'a postgres:// URL')
    .optional(),
  FLEETBRAIN_DATA_DIR: z.string().min(1).default('.data'),
  FLEETBRAIN_PG_PORT: port.default(55432),
  FLEETBRAIN_ACS_PORT: port.default(57547),
  FLEETBRAIN_MQTT_PORT: port.default(51883),
  /** Size of the simulated fleet `dev` starts (0 turns a protocol off). */
  FLEETBRAIN_SIM_CWMP: z.coerce.number().int().min(0).max(200_000).default(200),
  FLEETBRAIN_SIM_USP: z.coerce.number().int().min(0).max(200_000).default(100),
  /** Key (32 bytes, base64url) that encrypts per-device CPE credentials at rest; `dev` keeps one. */
  FLEETBRAIN_CREDENTIAL_KEY: z.string().min(16).optional(),
  API_HOST: z.string().min(1).default('127.0.0.1'),
  API_PORT: port.default(8080),
  /** Requests per minute one caller (bearer token, else client address) may make before 429. */
  API_RATE_LIMIT_PER_MIN: z.coerce.number().int().min(1).max(1_000_000).default(1200),
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'host:port')
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalUrl,
  OPA_URL: optionalUrl,
  /** Rego sources to load instead of the shipped policies/rego (e.g. a reviewed operator bundle). */
  FLEETBRAIN_POLICY_DIR: z.string().min(1).optional(),
  OPENAI_BASE_URL: optionalUrl,
  OPENAI_API_KEY: z.string().optional(),
  FLEETBRAIN_MODEL: z.string().min(1).default('gpt-4.1-mini'),
  TEMPORAL_YAML: z.string().min(1).default('temporal.yaml'),
  /** Webhooks may target any non-public address (loopback, private, link-local): tests, single-machine set-ups. */
  FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE: z
    .enum(['true', 'false', '1', '0'], 'true or false')
    .default('false')
    .transform((v) => v === 'true' || v === '1'),
  /** Comma-separated CIDRs webhooks may target although they are not public (e.g. 10.20.0.0/16,fd00:1::/64). */
  FLEETBRAIN_WEBHOOK_ALLOW_CIDRS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .refine((l) => l.every(isCidr), 'comma-separated CIDRs such as 10.20.0.0/16'),
});
export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env;
  temporal: TemporalYaml;
  /** Absolute data directory for the embedded services. */
  dataDir: string;
}

function describe(issue: z.core.$ZodIssue): string {
  return issue.message;
}

function firstIssue(prefix: string, err: z.ZodError): never {
  const issue = err.issues[0];
  const key = issue?.path.map(String).join('.') || '(root)';
  throw new ConfigError(`${prefix}${key}: ${issue ? describe(issue) : 'invalid'}`);
}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  // Empty strings mean "unset": a shell `FOO=` must not fail a URL check.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) firstIssue('invalid environment variable ', parsed.error);
  return parsed.data;
}

/** The webhook egress allowance alone (the API and the worker read it; other keys are not required). */
export function webhookEgressFromEnv(source: NodeJS.ProcessEnv = process.env): {
  allowPrivate: boolean;
  allowCidrs: string[];
} {
  const keys = envSchema.pick({
    FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE: true,
    FLEETBRAIN_WEBHOOK_ALLOW_CIDRS: true,
  });
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = keys.safeParse(cleaned);
  if (!parsed.success) firstIssue('invalid environment variable ', parsed.error);
  return {
    allowPrivate: parsed.data.FLEETBRAIN_WEBHOOK_ALLOW_PRIVATE,
    allowCidrs: parsed.data.FLEETBRAIN_WEBHOOK_ALLOW_CIDRS,
  };
}

export function loadTemporalYaml(file: string): TemporalYaml {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0];
    throw new ConfigError(`${path.basename(file)} is not valid YAML: ${msg}`);
  }
  const parsed = temporalYamlSchema.safeParse(doc);
  if (!parsed.success) firstIssue(`invalid ${path.basename(file)} key `, parsed.error);
  return parsed.data;
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const env = loadEnv(source);
  const temporal = loadTemporalYaml(path.resolve(repoRoot, env.TEMPORAL_YAML));
  if (env.TEMPORAL_ADDRESS) temporal.address = env.TEMPORAL_ADDRESS;
  if (env.TEMPORAL_NAMESPACE) temporal.namespace = env.TEMPORAL_NAMESPACE;
  return { env, temporal, dataDir: path.resolve(repoRoot, env.FLEETBRAIN_DATA_DIR) };
}
