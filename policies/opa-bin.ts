import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The `opa` CLI: env OPA_BIN, else PATH, else the Fleetbrain tools cache. Stand-in for platform/tools.ts. */
export function opaBin(): string {
  const fromEnv = process.env.OPA_BIN;
  if (fromEnv) return fromEnv;
  const candidates = [
    ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean),
    path.join(os.homedir(), '.cache', 'fleetbrain', 'tools', 'bin'),
  ].map((dir) => path.join(dir, 'opa'));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {}
  }
  throw new Error(
    'opa not found: set OPA_BIN, put opa on PATH, or build it into ~/.cache/fleetbrain/tools/bin',
  );
}
