import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import { opaBin } from './opa-bin.js';

const run = promisify(execFile);

/** The decision every caller asks for (OPA path form and REST form). */
export const ENTRYPOINT = 'fleetbrain/decision';

export const defaultPolicyDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'rego');

/** A policy bundle that cannot be loaded. The message names the file and carries OPA's own error. */
export class PolicyLoadError extends Error {
  override name = 'PolicyLoadError';
}

export interface PolicySources {
  dir: string;
  /** Non-test modules, sorted by name; `name` is the base file name. */
  modules: Array<{ name: string; file: string; text: string }>;
  /** sha256 over the modules' names and texts: the policy half of the bundle hash. */
  hash: string;
}

export async function readPolicySources(dir = defaultPolicyDir): Promise<PolicySources> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new PolicyLoadError(`policy bundle ${dir}: cannot read directory: ${(err as Error).message}`);
  }
  const regoNames = names.filter((n) => n.endsWith('.rego') && !n.endsWith('_test.rego')).sort();
  if (regoNames.length === 0) throw new PolicyLoadError(`policy bundle ${dir}: no .rego modules found`);
  const modules = await Promise.all(
    regoNames.map(async (name) => {
      const file = path.join(dir, name);
      return { name, file, text: await readFile(file, 'utf8') };
    }),
  );
  return { dir, modules, hash: policyHashOf(modules) };
}

export function policyHashOf(modules: Array<{ name: string; text: string }>): string {
  return sha256Hex(canonicalJson(modules.map((m) => [m.name, m.text])));
}

export function bundleHashOf(policyHash: string, dataHash: string): string {
  return sha256Hex(`policy:${policyHash}\ndata:${dataHash}`);
}

function cacheRoot(): string {
  return process.env.FB_POLICY_CACHE ?? path.join(os.homedir(), '.cache', 'fleetbrain', 'policy-wasm');
}

/** OPA's capabilities restricted to the built-ins the npm wasm SDK can run, so `opa build` rejects others. */
async function wasmCapabilities(opa: string): Promise<string> {
  const { stdout } = await run(opa, ['capabilities', '--current'], { maxBuffer: 16 << 20 });
  const current = JSON.parse(stdout) as { builtins: Array<{ name: string }> };
  const require = createRequire(import.meta.url);
  const sdkDir = path.dirname(path.dirname(require.resolve('@open-policy-agent/opa-wasm')));
  const sdk = JSON.parse(await readFile(path.join(sdkDir, 'capabilities.json'), 'utf8')) as {
    builtins: Array<{ name: string }>;
  };
  const supported = new Set(sdk.builtins.map((b) => b.name));
  return JSON.stringify({ ...current, builtins: current.builtins.filter((b) => supported.has(b.name)) });
}

function opaMessage(err: unknown): string {
  const e = err as { stderr?: string; stdout?: string; message?: string };
  return (e.stderr || e.stdout || e.message || String(err)).trim();
}

/**
 * The compiled wasm for these sources, built with `opa build -t wasm` on first use and cached by
 * content hash (OPA version, capabilities, sources) outside the repository.
 */
export async function compileWasm(sources: PolicySources): Promise<{ wasm: Uint8Array; file: string }> {
  const opa = opaBin();
  let version: string;
  let capabilities: string;
  try {
    version = (await run(opa, ['version'])).stdout.split('\n')[0] ?? '';
    capabilities = await wasmCapabilities(opa);
  } catch (err) {
    throw new PolicyLoadError(`policy bundle ${sources.dir}: cannot run ${opa}: ${opaMessage(err)}`);
  }
  const key = sha256Hex(`${version}\n${sha256Hex(capabilities)}\n${sources.hash}`);
  const dir = path.join(cacheRoot(), key);
  const file = path.join(dir, 'policy.wasm');
  try {
    return { wasm: new Uint8Array(await readFile(file)), file };
  } catch {}

  await mkdir(cacheRoot(), { recursive: true });
  const tmp = await mkdtemp(path.join(cacheRoot(), 'build-'));
  try {
    const capsFile = path.join(tmp, 'capabilities.json');
    await writeFile(capsFile, capabilities);
    const bundle = path.join(tmp, 'bundle.tar.gz');
    try {
      await run(
        opa,
        [
          'build',
          '-t',
          'wasm',
          '-e',
          ENTRYPOINT,
          '--capabilities',
          capsFile,
          '-o',
          bundle,
          ...sources.modules.map((m) => m.file),
        ],
        { maxBuffer: 16 << 20 },
      );
    } catch (err) {
      throw new PolicyLoadError(`policy bundle ${sources.dir}: opa build failed: ${opaMessage(err)}`);
    }
    try {
      await run('tar', ['-xzf', bundle, '-C', tmp, '/policy.wasm']);
    } catch (err) {
      throw new PolicyLoadError(`policy bundle ${bundle}: no policy.wasm inside: ${opaMessage(err)}`);
    }
    await mkdir(dir, { recursive: true });
    // Rename is atomic: a concurrent reader sees either nothing or the whole file.
    await rename(path.join(tmp, 'policy.wasm'), file);
    return { wasm: new Uint8Array(await readFile(file)), file };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
