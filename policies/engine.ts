import { rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type LoadedPolicy, loadPolicy } from '@open-policy-agent/opa-wasm';
import {
  bundleHashOf,
  compileWasm,
  defaultPolicyDir,
  ENTRYPOINT,
  PolicyLoadError,
  type PolicySources,
  policyHashOf,
  readPolicySources,
} from './bundle.js';
import { canonicalJson, sha256Hex } from './canonical-json.js';
import { policyDataHash } from './policy-data.js';
import { type PolicyData, PolicyDecision, PolicyInput } from './schema.js';

/** A decision with what it was decided on; this is what gets stored. */
export interface EvaluatedDecision {
  decision: PolicyDecision;
  engine: 'wasm' | 'server';
  inputHash: string;
  bundleHash: string;
  policyHash: string;
  dataHash: string;
  latencyMs: number;
}

export interface PolicyEngine {
  readonly engine: 'wasm' | 'server';
  readonly policyHash: string;
  readonly dataHash: string;
  readonly bundleHash: string;
  /** Never throws: an input that fails the schema, an evaluation error or an undefined result denies. */
  decide(input: unknown): Promise<EvaluatedDecision>;
  /** The raw value of data.fleetbrain.decision (undefined when undefined); throws on engine errors. */
  evaluate(input: unknown): Promise<unknown>;
  /** Replace the policy data document (catalogue, windows, caps); the bundle hash follows. */
  setData(data: PolicyData): Promise<void>;
  close(): Promise<void>;
}

export interface LoadOptions {
  data: PolicyData;
  policyDir?: string;
  /** Evaluate against this OPA server instead of in-process wasm. Defaults to env OPA_URL. */
  opaUrl?: string;
  /** Server mode: per-request timeout. */
  timeoutMs?: number;
}

/** The fail-closed decision: denies, highest risk, no constraints. */
export function failClosed(code: string, message: string, path?: string): PolicyDecision {
  return {
    allow: false,
    deny: [path ? { code, message, path } : { code, message }],
    risk_class: 'critical',
    require_approvals: 2,
    constraints: {},
    risk_factors: [],
  };
}

/**
 * Loads the policy engine: in-process wasm by default, an OPA server when `opaUrl` / OPA_URL is set.
 * Throws PolicyLoadError (naming the file and OPA's message) if the bundle is missing or broken, so
 * the worker and API refuse to start.
 */
export async function loadPolicyEngine(opts: LoadOptions): Promise<PolicyEngine> {
  const url = opts.opaUrl ?? process.env.OPA_URL;
  const engine = url
    ? new ServerEngine(url, opts.timeoutMs ?? 5000)
    : new WasmEngine(await readPolicySources(opts.policyDir ?? defaultPolicyDir));
  await engine.load(opts.data);
  return engine;
}

abstract class BaseEngine implements PolicyEngine {
  abstract readonly engine: 'wasm' | 'server';
  policyHash = '';
  dataHash = '';
  bundleHash = '';

  abstract load(data: PolicyData): Promise<void>;
  abstract evaluateJson(inputJson: string): Promise<unknown>;
  abstract setData(data: PolicyData): Promise<void>;
  abstract close(): Promise<void>;

  protected dataLoaded(data: PolicyData): void {
    this.dataHash = policyDataHash(data);
    this.bundleHash = bundleHashOf(this.policyHash, this.dataHash);
  }

  evaluate(input: unknown): Promise<unknown> {
    return this.evaluateJson(JSON.stringify(input));
  }

  async decide(input: unknown): Promise<EvaluatedDecision> {
    const started = performance.now();
    const stamp = (json: string, decision: PolicyDecision): EvaluatedDecision => ({
      decision,
      engine: this.engine,
      inputHash: sha256Hex(json),
      bundleHash: this.bundleHash,
      policyHash: this.policyHash,
      dataHash: this.dataHash,
      latencyMs: performance.now() - started,
    });
    const parsed = PolicyInput.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.join('.') || '(root)';
      const decision = failClosed(
        'input_invalid',
        `policy input ${where}: ${issue?.message ?? 'invalid'}`,
        where,
      );
      return stamp(canonicalJson(input), decision);
    }
    // zod emits keys in schema order, so this text is canonical for a valid input; the hash names
    // exactly the text that is evaluated.
    const json = JSON.stringify(parsed.data);
    let raw: unknown;
    try {
      raw = await this.evaluateJson(json);
    } catch (err) {
      return stamp(json, failClosed('policy_error', `policy evaluation failed: ${errorText(err)}`));
    }
    if (raw === undefined)
      return stamp(json, failClosed('policy_undefined', 'the policy returned no decision'));
    const decision = PolicyDecision.safeParse(raw);
    if (!decision.success) {
      return stamp(
        json,
        failClosed(
          'policy_result_invalid',
          `the policy's decision has the wrong shape: ${decision.error.message}`,
        ),
      );
    }
    return stamp(json, decision.data);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}

class WasmEngine extends BaseEngine {
  readonly engine = 'wasm' as const;
  private policy: LoadedPolicy | undefined;
  private readonly encoder = new TextEncoder();

  constructor(private readonly sources: PolicySources) {
    super();
    this.policyHash = sources.hash;
  }

  async load(data: PolicyData): Promise<void> {
    const { wasm, file } = await compileWasm(this.sources);
    try {
      this.policy = await loadPolicy(wasm);
    } catch (err) {
      // A corrupt cache entry must not outlive this start: the next start rebuilds it.
      await rm(file, { force: true });
      throw new PolicyLoadError(
        `policy bundle ${file}: wasm does not load (removed from cache): ${errorText(err)}`,
      );
    }
    if (!this.policy.entrypoints || !(ENTRYPOINT in this.policy.entrypoints)) {
      throw new PolicyLoadError(`policy bundle ${file}: entry point ${ENTRYPOINT} missing`);
    }
    await this.setData(data);
  }

  async setData(data: PolicyData): Promise<void> {
    if (!this.policy) throw new Error('policy engine not loaded');
    this.policy.setData({ policy_data: data });
    this.dataLoaded(data);
  }

  async evaluateJson(inputJson: string): Promise<unknown> {
    if (!this.policy) throw new Error('policy engine not loaded');
    // ArrayBuffer input skips the SDK's own JSON.stringify.
    const bytes = this.encoder.encode(inputJson);
    const rs = this.policy.evaluate(bytes.buffer, ENTRYPOINT) as Array<{ result: unknown }> | null;
    if (!rs) throw new Error('wasm evaluation returned no result set');
    return rs[0]?.result;
  }

  async close(): Promise<void> {
    this.policy = undefined;
  }
}

/**
 * An OPA server that already runs the policy (started with the modules, or fed by a bundle
 * service). The policy hash is computed from the modules the server reports, so a stored
 * decision names what the server actually ran; the data document is pushed from our tables.
 */
class ServerEngine extends BaseEngine {
  readonly engine = 'server' as const;
  private readonly base: string;

  constructor(
    url: string,
    private readonly timeoutMs: number,
  ) {
    super();
    this.base = url.replace(/\/+$/, '');
  }

  private async request(method: string, route: string, body?: string) {
    const res = await fetch(`${this.base}${route}`, {
      method,
      body,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    return { status: res.status, text: await res.text() };
  }

  async load(data: PolicyData): Promise<void> {
    let list: { result?: Array<{ id: string; raw: string }> };
    try {
      const res = await this.request('GET', '/v1/policies');
      list = JSON.parse(res.text) as typeof list;
    } catch (err) {
      throw new PolicyLoadError(`OPA server ${this.base}: cannot list policies: ${errorText(err)}`);
    }
    const modules = (list.result ?? [])
      .map((p) => ({ name: path.basename(p.id), text: p.raw }))
      .filter((m) => !m.name.endsWith('_test.rego'))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.policyHash = policyHashOf(modules);
    await this.setData(data);
    // A server without the entry point answers "undefined": refuse to start rather than deny everything.
    const probe = await this.request('POST', `/v1/data/${ENTRYPOINT}`, '{"input":{}}');
    if (probe.status !== 200 || !('result' in (JSON.parse(probe.text) as object))) {
      throw new PolicyLoadError(
        `OPA server ${this.base}: data.${ENTRYPOINT.replace('/', '.')} is not defined (modules: ${
          modules.map((m) => m.name).join(', ') || 'none'
        }): ${probe.text.trim()}`,
      );
    }
  }

  async setData(data: PolicyData): Promise<void> {
    let res: { status: number; text: string };
    try {
      res = await this.request('PUT', '/v1/data/policy_data', JSON.stringify(data));
    } catch (err) {
      throw new PolicyLoadError(`OPA server ${this.base}: unreachable: ${errorText(err)}`);
    }
    if (res.status !== 204 && res.status !== 200) {
      throw new PolicyLoadError(`OPA server ${this.base}: policy data rejected: ${res.text}`);
    }
    this.dataLoaded(data);
  }

  async evaluateJson(inputJson: string): Promise<unknown> {
    const res = await this.request('POST', `/v1/data/${ENTRYPOINT}`, `{"input":${inputJson}}`);
    if (res.status !== 200) throw new Error(`OPA server answered ${res.status}: ${res.text}`);
    return (JSON.parse(res.text) as { result?: unknown }).result;
  }

  async close(): Promise<void> {}
}
