import { z } from 'zod';

/**
 * A configuration profile: desired parameter values for the devices a selector matches. The selector is
 * the fleet DSL; it is kept opaque here (domain/ imports nothing outside domain/) and parsed by the
 * fleet compiler wherever it is resolved.
 */

// A TR-181/TR-098 parameter path; instance numbers may be `*` (every instance the device has).
const SEGMENT = '(?:[A-Za-z_][A-Za-z0-9_-]*|[1-9][0-9]{0,9}|\\*)';
const PATH_RE = new RegExp(`^(Device|InternetGatewayDevice)(\\.${SEGMENT})*\\.[A-Za-z_][A-Za-z0-9_-]*$`);

export const ParamPath = z
  .string()
  .max(512)
  .regex(PATH_RE, 'a parameter path like Device.WiFi.SSID.*.SSID (instances as numbers or *)');
export type ParamPath = z.infer<typeof ParamPath>;

export const ParamValue = z.union([z.string().max(4096), z.number().finite(), z.boolean()]);
export type ParamValue = z.infer<typeof ParamValue>;

export const ProfileParameter = z.strictObject({ path: ParamPath, value: ParamValue });
export type ProfileParameter = z.infer<typeof ProfileParameter>;

export const ProfileParameters = z
  .array(ProfileParameter)
  .min(1)
  .max(1000)
  .refine((ps) => new Set(ps.map((p) => p.path)).size === ps.length, 'a path may appear only once');

/** Names the API uses as sub-resources of /profiles. */
const RESERVED = new Set(['conflicts', 'reconcile', 'precedence', 'overrides', 'check-change', 'plan']);

export const ProfileSpec = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .max(128)
      .regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits, ".", "_" and "-"')
      .refine((n) => !RESERVED.has(n), 'this name is reserved'),
    description: z.string().max(2000).optional(),
    selector: z.record(z.string(), z.unknown()),
    parameters: ProfileParameters,
    priority: z.number().int().min(-1_000_000).max(1_000_000).default(0),
    owner: z.string().min(1).max(128),
    validFrom: z.coerce.date().optional(),
    validUntil: z.coerce.date().optional(),
  })
  .refine((p) => !p.validFrom || !p.validUntil || p.validFrom < p.validUntil, {
    message: 'validFrom must be before validUntil',
    path: ['validUntil'],
  });
export type ProfileSpec = z.infer<typeof ProfileSpec>;

/** A stored profile: the spec plus identity and the version that "newest" compares. */
export interface Profile extends ProfileSpec {
  id: string;
  version: number;
  updatedAt: Date;
}

export function isActive(p: Pick<ProfileSpec, 'validFrom' | 'validUntil'>, now: Date): boolean {
  return (!p.validFrom || p.validFrom <= now) && (!p.validUntil || now < p.validUntil);
}

/** Canonical value text: what devices report and what equality compares (1 and "1" are equal). */
export function valueKey(v: ParamValue): string {
  return typeof v === 'string' ? v : String(v);
}
