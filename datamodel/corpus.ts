import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (this file lives in <root>/datamodel/). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The shared TR-181 corpus: env FLEETBRAIN_TR181_DIR, else ../shared/data/tr-181 beside the repo. */
export function corpusDir(): string {
  return process.env.FLEETBRAIN_TR181_DIR ?? path.resolve(repoRoot, '..', 'shared', 'data', 'tr-181');
}
