import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { cacheDir } from './paths.js';

/** A tool that is neither present nor obtainable; the message says which, why, and how to provide it. */
export class ToolError extends Error {
  override name = 'ToolError';
}

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const OPA_VERSION = 'v1.22.3';

export const toolsBin = path.join(cacheDir, 'tools', 'bin');

function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

function goInstall(pkg: string, what: string, envVar: string): void {
  const go = onPath('go') ?? (executable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) {
    throw new ToolError(
      `${what} not found and Go is not installed to build it; install Go or set ${envVar}=/path/to/binary`,
    );
  }
  mkdirSync(toolsBin, { recursive: true });
  process.stderr.write(
    `fleetbrain: building ${what} with 'go install ${pkg}' (first run only, a few minutes)\n`,
  );
  const res = spawnSync(go, ['install', pkg], {
    env: { ...process.env, GOBIN: toolsBin, GOFLAGS: `${process.env.GOFLAGS ?? ''} -buildvcs=false`.trim() },
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    const tail = (res.stderr ?? '').trim().split('\n').slice(-5).join(' | ');
    throw new ToolError(
      `building ${what} failed (go install ${pkg}): ${tail}; set ${envVar}=/path/to/binary`,
    );
  }
}

function resolveTool(opts: { name: string; envVar: string; what: string; goPkg: string }): string {
  const fromEnv = process.env[opts.envVar];
  if (fromEnv) {
    if (!executable(fromEnv)) throw new ToolError(`${opts.envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const cached = path.join(toolsBin, opts.name);
  if (executable(cached)) return cached;
  const found = onPath(opts.name);
  if (found) return found;
  goInstall(opts.goPkg, opts.what, opts.envVar);
  if (!executable(cached))
    throw new ToolError(`${opts.what} build reported success but ${cached} is missing`);
  return cached;
}

/** The Temporal CLI (dev server). Env TEMPORAL_CLI, then the cache, then PATH, else built. */
export function temporalCli(): string {
  return resolveTool({
    name: 'temporal',
    envVar: 'TEMPORAL_CLI',
    what: `Temporal CLI ${TEMPORAL_CLI_VERSION}`,
    goPkg: `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`,
  });
}

/** The OPA CLI (policy build, test and server). Env OPA_BIN, then the cache, then PATH, else built. */
export function opaBin(): string {
  return resolveTool({
    name: 'opa',
    envVar: 'OPA_BIN',
    what: `OPA ${OPA_VERSION}`,
    goPkg: `github.com/open-policy-agent/opa@${OPA_VERSION}`,
  });
}

function aptInstall(pkgs: string[], what: string, hint: string): void {
  if (process.getuid?.() !== 0 || !onPath('apt-get')) {
    throw new ToolError(
      `${what} not found; install it (Debian: apt-get install ${pkgs.join(' ')}) or ${hint}`,
    );
  }
  process.stderr.write(`fleetbrain: installing ${pkgs.join(' ')} with apt-get\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let res = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], {
    env,
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { env, encoding: 'utf8' });
    res = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], {
      env,
      encoding: 'utf8',
    });
  }
  if (res.status !== 0) {
    const tail = (res.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
    throw new ToolError(`installing ${pkgs.join(' ')} failed: ${tail}; ${hint}`);
  }
}

function findPgBinDir(): string | undefined {
  const fromEnv = process.env.PG_BIN_DIR;
  if (fromEnv) return fromEnv;
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const dir = path.join(base, v, 'bin');
      if (executable(path.join(dir, 'postgres')) && executable(path.join(dir, 'initdb'))) return dir;
    }
  }
  const initdb = onPath('initdb');
  if (initdb && executable(path.join(path.dirname(initdb), 'postgres'))) return path.dirname(initdb);
  return undefined;
}

/** Directory holding `postgres` and `initdb` (PostgreSQL 14+). Env PG_BIN_DIR, Debian's packages, PATH. */
export function postgresBinDir(): string {
  const found = findPgBinDir();
  if (found) {
    if (!executable(path.join(found, 'postgres')))
      throw new ToolError(`PG_BIN_DIR=${found} has no postgres binary`);
    return found;
  }
  aptInstall(['postgresql'], 'PostgreSQL', 'set PG_BIN_DIR=/path/to/postgresql/bin or DATABASE_URL');
  const after = findPgBinDir();
  if (!after) throw new ToolError('PostgreSQL was installed but no postgres/initdb binaries were found');
  return after;
}

/** The mosquitto MQTT broker (MQTT 5 and 3.1.1). Env MOSQUITTO_BIN, PATH, /usr/sbin, Debian's package. */
export function mosquittoBin(): string {
  const fromEnv = process.env.MOSQUITTO_BIN;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new ToolError(`MOSQUITTO_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const find = () =>
    onPath('mosquitto') ?? (executable('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : undefined);
  const found = find();
  if (found) return found;
  aptInstall(['mosquitto'], 'mosquitto (MQTT broker)', 'set MOSQUITTO_BIN=/path/to/mosquitto');
  const after = find();
  if (!after) throw new ToolError('mosquitto was installed but no mosquitto binary was found');
  return after;
}

/** Debian's Chromium, driven headless by the console's browser tests. Env CHROMIUM_BIN, PATH, Debian's package. */
export function chromiumBin(): string {
  const fromEnv = process.env.CHROMIUM_BIN;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new ToolError(`CHROMIUM_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const find = () =>
    onPath('chromium') ?? (executable('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined);
  const found = find();
  if (found) return found;
  aptInstall(['chromium'], 'Chromium (browser tests)', 'set CHROMIUM_BIN=/path/to/chromium');
  const after = find();
  if (!after) throw new ToolError('chromium was installed but no chromium binary was found');
  return after;
}

export const SCHEMATHESIS_VERSION = '4.32.5';

/**
 * Schemathesis (API fuzzing from the OpenAPI document), pinned, in its own virtualenv under the tools
 * cache. Env SCHEMATHESIS_BIN, then the cached venv, else created with python3 -m venv and pip.
 */
export function schemathesisBin(): string {
  const fromEnv = process.env.SCHEMATHESIS_BIN;
  if (fromEnv) {
    if (!executable(fromEnv)) throw new ToolError(`SCHEMATHESIS_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const venv = path.join(cacheDir, 'tools', `schemathesis-${SCHEMATHESIS_VERSION}`);
  const bin = path.join(venv, 'bin', 'schemathesis');
  if (executable(bin)) return bin;
  const python = onPath('python3');
  if (!python)
    throw new ToolError(
      'schemathesis needs python3 (3.9+) to install; set SCHEMATHESIS_BIN=/path/to/schemathesis',
    );
  process.stderr.write(`fleetbrain: installing schemathesis ${SCHEMATHESIS_VERSION} into ${venv}\n`);
  const steps: string[][] = [
    [python, '-m', 'venv', venv],
    [
      path.join(venv, 'bin', 'pip'),
      'install',
      '-q',
      '--disable-pip-version-check',
      `schemathesis==${SCHEMATHESIS_VERSION}`,
    ],
  ];
  for (const [cmd, ...args] of steps) {
    const res = spawnSync(cmd ?? '', args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
    if (res.status !== 0) {
      const tail = (res.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
      throw new ToolError(
        `installing schemathesis failed (${path.basename(cmd ?? '')}): ${tail}; set SCHEMATHESIS_BIN`,
      );
    }
  }
  if (!executable(bin)) throw new ToolError(`schemathesis installed but ${bin} is missing`);
  return bin;
}

/** Ensures every tool the test suite and `fleetbrain dev` need; returns their paths. */
export function ensureTools(): Record<string, string> {
  return { temporal: temporalCli(), opa: opaBin(), postgres: postgresBinDir(), mosquitto: mosquittoBin() };
}
