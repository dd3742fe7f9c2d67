import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ConfigError } from '../platform/config.js';

/**
 * Per-device credentials are stored encrypted (AES-256-GCM) in `executor_endpoints`. The key comes
 * from configuration (`FLEETBRAIN_CREDENTIAL_KEY`, 32 bytes base64 or any passphrase, hashed to 32
 * bytes); it never lives in the database. Format: `v1:<iv>:<tag>:<ciphertext>` (base64url).
 */
export class CredentialCipher {
  private readonly key: Buffer;

  constructor(secret: string | Buffer) {
    const raw = typeof secret === 'string' ? Buffer.from(secret, 'base64') : secret;
    this.key = raw.length === 32 ? raw : createHash('sha256').update(secret).digest();
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): CredentialCipher {
    const s = env.FLEETBRAIN_CREDENTIAL_KEY;
    if (!s)
      throw new ConfigError(
        'FLEETBRAIN_CREDENTIAL_KEY is not set: device credentials cannot be stored encrypted',
      );
    return new CredentialCipher(s);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1:${iv.toString('base64url')}:${c.getAuthTag().toString('base64url')}:${ct.toString('base64url')}`;
  }

  decrypt(enc: string): string {
    const [v, iv, tag, ct] = enc.split(':');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('not an encrypted credential (v1)');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}
