import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Tools built or downloaded for Fleetbrain live here, outside the repository, shared by clones. */
export const cacheDir = process.env.FLEETBRAIN_CACHE ?? path.join(os.homedir(), '.cache', 'fleetbrain');
