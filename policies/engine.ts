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
import {
  engineChangeJson,
  engineCohortJson,
  engineInputJson,
  PlanMemo,
  type PreparedInput,
  type PreparedPlan,
  prepareInput,
} from './prepared-input.js';
import { type PolicyData, PolicyDecision } from './schema.js';

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
  /** The last plan validated: a plan's next decisions compare its members instead of parsing them. */
  private readonly plans = new PlanMemo();

  abstract load(data: PolicyData): Promise<void>;
  abstract evaluateJson(inputJson: string): Promise<unknown>;

  /** Evaluates a validated input; an engine may keep the plan's parsed form between calls. */
  evaluatePrepared(p: PreparedInput): Promise<unknown> {
    return this.evaluateJson(engineInputJson(p));
  }
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
    const prepared = prepareInput(input, this.plans);
    if (!prepared.ok) {
      const { path: where, message } = prepared.issue;
      const decision = failClosed('input_invalid', `policy input ${where}: ${message}`, where);
      return stamp(canonicalJson(input), decision);
    }
    // The canonical text of the input (keys in schema order) is what the hash names; the engine
    // evaluates it with the derived cohort.topology_peak added.
    const json = prepared.input.json;
    let raw: unknown;
    try {
      raw = await this.evaluatePrepared(prepared.input);
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

/** The parts of the SDK's LoadedPolicy (opa-wasm 1.x) the plan cache works with. */
interface PolicyInternals {
  wasmInstance: { exports: unknown };
  mem: { buffer: ArrayBuffer };
  dataAddr: number;
  dataHeapPtr: number;
}

/** The OPA wasm ABI exports used below (see OPA's docs, "WebAssembly: Exports"). */
interface OpaExports {
  opa_malloc(size: number): number;
  opa_json_parse(addr: number, len: number): number;
  opa_json_dump(addr: number): number;
  opa_heap_ptr_get(): number;
  opa_heap_ptr_set(addr: number): void;
  opa_value_add_path(base: number, path: number, value: number): number;
  opa_eval_ctx_new(): number;
  opa_eval_ctx_set_input(ctx: number, addr: number): void;
  opa_eval_ctx_set_data(ctx: number, addr: number): void;
  opa_eval_ctx_set_entrypoint(ctx: number, entrypoint: number): void;
  opa_eval_ctx_get_result(ctx: number): number;
  eval(ctx: number): number;
}

const encoder = new TextEncoder();

/**
 * The plan's members in the order they are kept in wasm memory, steadiest first (a rollout's
 * waves share the change and the devices, each wave has its own cohort): `same` compares the
 * member's text in two plans (the memo hands back the same strings, so that is nearly free).
 */
const MEMBERS: Array<{
  path: Uint8Array;
  same(a: PreparedPlan, b: PreparedPlan): boolean;
  text(p: PreparedPlan): string;
}> = [
  {
    path: encoder.encode('["change"]'),
    same: (a, b) => a.changeJson === b.changeJson && a.derivedJson === b.derivedJson,
    text: engineChangeJson,
  },
  {
    path: encoder.encode('["devices"]'),
    same: (a, b) => a.devicesJson === b.devicesJson,
    text: (p) => p.devicesJson,
  },
  {
    path: encoder.encode('["cohort"]'),
    same: (a, b) =>
      a.cohortJson === b.cohortJson &&
      a.topologyPeakJson === b.topologyPeakJson &&
      a.strataInCohort === b.strataInCohort,
    text: engineCohortJson,
  },
];

/** A plan member parsed in wasm memory. */
interface ParsedMember {
  /** The plan it was parsed from. */
  plan: PreparedPlan;
  /** Addresses of its path (e.g. ["cohort"]) and value. */
  path: number;
  value: number;
  /** Heap end after it: the next member, or each evaluation's scratch space, starts here. */
  end: number;
}

class WasmEngine extends BaseEngine {
  readonly engine = 'wasm' as const;
  private policy: LoadedPolicy | undefined;
  private readonly decoder = new TextDecoder();
  private entrypoint = 0;
  /** Heap end after the data document: the plan's members are kept from here. */
  private dataEnd = 0;
  /**
   * The last plan's members (change, devices, cohort), each parsed once and kept in wasm memory
   * below the per-evaluation heap until it changes: a plan's decisions (propose, approvals, each
   * wave) share them, and parsing 250 cohort elements costs more than evaluating the policy.
   */
  private members: ParsedMember[] = [];

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
    this.entrypoint = this.policy.entrypoints[ENTRYPOINT] as number;
    await this.setData(data);
  }

  async setData(data: PolicyData): Promise<void> {
    if (!this.policy) throw new Error('policy engine not loaded');
    // setData rewinds the heap to the start: the kept members are gone with it.
    this.members = [];
    this.policy.setData({ policy_data: data });
    this.dataEnd = this.internals().dataHeapPtr;
    this.dataLoaded(data);
  }

  private internals(): PolicyInternals {
    return this.policy as unknown as PolicyInternals;
  }

  async evaluateJson(inputJson: string): Promise<unknown> {
    if (!this.policy) throw new Error('policy engine not loaded');
    // ArrayBuffer input skips the SDK's own JSON.stringify.
    const bytes = encoder.encode(inputJson);
    const rs = this.policy.evaluate(bytes.buffer, ENTRYPOINT) as Array<{ result: unknown }> | null;
    if (!rs) throw new Error('wasm evaluation returned no result set');
    return rs[0]?.result;
  }

  /** Copies JSON text into wasm memory at the heap pointer and parses it there. */
  private parse(ex: OpaExports, mem: { buffer: ArrayBuffer }, text: string | Uint8Array): number {
    const bytes = typeof text === 'string' ? encoder.encode(text) : text;
    const raw = ex.opa_malloc(bytes.byteLength);
    // opa_malloc grows memory as needed, so the view is taken afterwards.
    new Uint8Array(mem.buffer).set(bytes, raw);
    const addr = ex.opa_json_parse(raw, bytes.byteLength);
    if (addr === 0) throw new Error('wasm could not parse the policy input');
    return addr;
  }

  override async evaluatePrepared(p: PreparedInput): Promise<unknown> {
    if (!this.policy) throw new Error('policy engine not loaded');
    const policy = this.internals();
    const ex = policy.wasmInstance.exports as unknown as OpaExports;
    const mem = policy.mem;
    // Keep the members up to the first that changed; parse it and those after it again.
    let kept = 0;
    while (kept < this.members.length && MEMBERS[kept]!.same(this.members[kept]!.plan, p.plan)) {
      kept++;
    }
    if (kept < MEMBERS.length) {
      this.members.length = kept;
      ex.opa_heap_ptr_set(this.members[kept - 1]?.end ?? this.dataEnd);
      for (let i = kept; i < MEMBERS.length; i++) {
        const m = MEMBERS[i]!;
        const path = this.parse(ex, mem, m.path);
        const value = this.parse(ex, mem, m.text(p.plan));
        this.members.push({ plan: p.plan, path, value, end: ex.opa_heap_ptr_get() });
      }
      // The SDK's own evaluate() rewinds to dataHeapPtr: keep the members below it.
      policy.dataHeapPtr = this.members[MEMBERS.length - 1]!.end;
    }
    // Everything above the members is this evaluation's scratch space.
    ex.opa_heap_ptr_set(policy.dataHeapPtr);
    const inputAddr = this.parse(ex, mem, p.decisionJson);
    // The members are linked into the input object, not copied; evaluation never mutates input.
    for (const { path, value } of this.members) {
      if (ex.opa_value_add_path(inputAddr, path, value) !== 0) {
        throw new Error('wasm could not attach the plan to the policy input');
      }
    }
    const ctx = ex.opa_eval_ctx_new();
    ex.opa_eval_ctx_set_input(ctx, inputAddr);
    ex.opa_eval_ctx_set_data(ctx, policy.dataAddr);
    ex.opa_eval_ctx_set_entrypoint(ctx, this.entrypoint);
    ex.eval(ctx);
    const out = ex.opa_json_dump(ex.opa_eval_ctx_get_result(ctx));
    const buf = new Uint8Array(mem.buffer);
    const end = buf.indexOf(0, out);
    const rs = JSON.parse(this.decoder.decode(buf.subarray(out, end))) as Array<{ result: unknown }> | null;
    if (!rs) throw new Error('wasm evaluation returned no result set');
    return rs[0]?.result;
  }

  async close(): Promise<void> {
    this.policy = undefined;
    this.members = [];
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
