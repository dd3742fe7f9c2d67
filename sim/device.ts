import { type ModelSpec, type ParamSeed, parseImage, treeFor } from './models.js';

/**
 * A simulated CPE, protocol-neutral: parameters, object instances, dual-bank firmware and the
 * configured outcome of each firmware install. CWMP agents (sim/cwmp/) and USP agents (sim/usp/)
 * wrap it; they decide when to talk, this decides what the device does and answers.
 *
 * Memory matters (100 000 devices in one process): the tree is shared per (model, firmware) and a
 * device only stores the parameters it changed.
 */

/** Fault codes shared by CWMP (9xxx) and mapped by USP agents to their 7xxx codes. */
export const FAULT = {
  internal: 9002,
  invalidArguments: 9003,
  resources: 9004,
  invalidName: 9005,
  invalidType: 9006,
  invalidValue: 9007,
  notWritable: 9008,
  downloadFailure: 9010,
  unsupportedProtocol: 9013,
  fileCorrupted: 9018,
  transferAuthFailure: 9012,
  contactFailure: 9015,
  fileAccess: 9017,
} as const;

export class DeviceFault extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly parameters: Array<{ path: string; code: number; message: string }> = [],
  ) {
    super(message);
  }
}

/** What happens when a device of a model installs a firmware version. */
export type InstallOutcome =
  | { kind: 'success' }
  | { kind: 'transfer_failure'; code: 9010 | 9017 | 9018 }
  /** Never informs again. */
  | { kind: 'brick' }
  /** Comes up briefly with the new image, reboots again; never completes a session after Inform. */
  | { kind: 'boot_loop' }
  /** The new image fails to boot; the device falls back to the previous bank and reports its old version. */
  | { kind: 'fallback' };

/** Outcome weights per target firmware, e.g. `{ "hgw500@3.0.0": { success: 0.97, brick: 0.03 } }`. */
export type OutcomeTable = Record<
  string,
  Partial<Record<InstallOutcome['kind'] | `transfer_${9010 | 9017 | 9018}`, number>>
>;

export function pickOutcome(
  table: OutcomeTable,
  model: ModelSpec,
  version: string,
  roll: number,
): InstallOutcome {
  const weights = table[`${model.key}@${version}`] ?? table[`*@${version}`] ?? table[`${model.key}@*`];
  if (!weights) return { kind: 'success' };
  const entries = Object.entries(weights).filter(([, w]) => (w ?? 0) > 0) as Array<[string, number]>;
  const total = entries.reduce((a, [, w]) => a + w, 0);
  let x = roll * total;
  for (const [k, w] of entries) {
    x -= w;
    if (x < 0) {
      if (k.startsWith('transfer_'))
        return { kind: 'transfer_failure', code: Number(k.slice(9)) as 9010 | 9017 | 9018 };
      if (k === 'transfer_failure') return { kind: 'transfer_failure', code: 9010 };
      return { kind: k as 'success' | 'brick' | 'boot_loop' | 'fallback' };
    }
  }
  return { kind: 'success' };
}

/** Deterministic per-device random numbers (mulberry32), so a scenario replays identically. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function hashSeed(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const treeCache = new Map<string, Map<string, ParamSeed>>();
function sharedTree(model: ModelSpec, firmware: string): Map<string, ParamSeed> {
  const k = `${model.key}@${firmware}`;
  let t = treeCache.get(k);
  if (!t) {
    t = treeFor(model, firmware);
    treeCache.set(k, t);
  }
  return t;
}

export interface Bank {
  version: string;
  valid: boolean;
}

/** A transfer result the device must report (CWMP TransferComplete, USP TransferComplete! event). */
export interface TransferReport {
  commandKey: string;
  faultCode: number;
  faultString: string;
  startTime: string;
  completeTime: string;
}

export type DeviceLife = 'up' | 'rebooting' | 'bricked' | 'boot_loop';

export interface SimDeviceInit {
  model: ModelSpec;
  serial: string;
  firmware?: string;
  outcomes?: OutcomeTable;
  seed?: number;
}

function typeOk(p: ParamSeed, value: string): string | null {
  switch (p.type) {
    case 'boolean':
      return /^(true|false|0|1)$/.test(value) ? null : 'not a boolean';
    case 'unsignedInt':
    case 'unsignedLong': {
      if (!/^\d+$/.test(value)) return 'not an unsigned integer';
      break;
    }
    case 'int': {
      if (!/^-?\d+$/.test(value)) return 'not an integer';
      break;
    }
    case 'dateTime':
      return Number.isNaN(Date.parse(value)) ? 'not a dateTime' : null;
    case 'string':
      if (p.maxLength !== undefined && value.length > p.maxLength) return `longer than ${p.maxLength}`;
      if (p.enum && !p.enum.includes(value)) return `not one of ${p.enum.join(', ')}`;
      return null;
  }
  if (p.range) {
    const n = Number(value);
    if (n < p.range[0] || n > p.range[1]) return `outside [${p.range[0]}, ${p.range[1]}]`;
  }
  return null;
}

export class SimDevice {
  readonly model: ModelSpec;
  readonly serial: string;
  readonly id: string;
  banks: Bank[];
  activeBank = 0;
  life: DeviceLife = 'up';
  bootCount = 0;
  bootedAt = Date.now();
  /** Parameters changed from the shared tree; `null` marks a deleted one. */
  private overrides: Map<string, ParamSeed | null> | null = null;
  private nextInstance = new Map<string, number>();
  /** Pending transfer reports, delivered until acknowledged. */
  transfers: TransferReport[] = [];
  private outcomes: OutcomeTable;
  private random: () => number;

  constructor(init: SimDeviceInit) {
    this.model = init.model;
    this.serial = init.serial;
    this.id = `${init.model.oui}-${init.model.productClass}-${init.serial}`;
    const fw = init.firmware ?? init.model.defaultFirmware;
    this.banks = init.model.dualBank
      ? [
          { version: fw, valid: true },
          { version: '', valid: false },
        ]
      : [{ version: fw, valid: true }];
    this.outcomes = init.outcomes ?? {};
    this.random = rng(init.seed ?? hashSeed(this.id));
  }

  get firmware(): string {
    return this.banks[this.activeBank]!.version;
  }

  get root(): string {
    return this.model.root;
  }

  /** Identity and dynamic values, computed rather than stored. */
  private computed(path: string): string | undefined {
    const r = this.model.root;
    if (!path.startsWith(r)) return undefined;
    const rest = path.slice(r.length);
    switch (rest) {
      case 'DeviceInfo.Manufacturer':
        return this.model.manufacturer;
      case 'DeviceInfo.ManufacturerOUI':
        return this.model.oui;
      case 'DeviceInfo.ModelName':
        return this.model.modelName;
      case 'DeviceInfo.ProductClass':
        return this.model.productClass;
      case 'DeviceInfo.SerialNumber':
        return this.serial;
      case 'DeviceInfo.HardwareVersion':
        return this.model.hardwareVersion;
      case 'DeviceInfo.SoftwareVersion':
        return this.firmware;
      case 'DeviceInfo.UpTime':
        return String(Math.floor((Date.now() - this.bootedAt) / 1000));
      case 'DeviceInfo.ActiveFirmwareImage':
        return `${r}DeviceInfo.FirmwareImage.${this.activeBank + 1}`;
    }
    const m = /^DeviceInfo\.FirmwareImage\.(\d+)\.(Version|Status|Available)$/.exec(rest);
    if (m && this.model.dualBank) {
      const bank = this.banks[Number(m[1]) - 1];
      if (!bank) return undefined;
      if (m[2] === 'Version') return bank.version;
      if (m[2] === 'Available') return String(bank.valid);
      return Number(m[1]) - 1 === this.activeBank ? 'Active' : bank.valid ? 'Available' : 'NoImage';
    }
    return undefined;
  }

  private entry(path: string): ParamSeed | undefined {
    const o = this.overrides?.get(path);
    if (o === null) return undefined;
    if (o) return o;
    return sharedTree(this.model, this.firmware).get(path);
  }

  private put(p: ParamSeed): void {
    if (!this.overrides) this.overrides = new Map();
    this.overrides.set(p.path, p);
  }

  /** Set a value that the device itself controls (ManagementServer URLs, ParameterKey). */
  setInternal(path: string, value: string): void {
    const cur = this.entry(path);
    if (cur && cur.value !== value) this.put({ ...cur, value });
  }

  value(path: string): string | undefined {
    const c = this.computed(path);
    if (c !== undefined && this.entry(path)) return c;
    return this.entry(path)?.value;
  }

  paramType(path: string): string {
    return this.entry(path)?.type ?? 'string';
  }

  /** All concrete parameter paths (shared tree plus this device's own changes). */
  allPaths(): string[] {
    const set = new Set(sharedTree(this.model, this.firmware).keys());
    for (const [k, v] of this.overrides ?? []) {
      if (v === null) set.delete(k);
      else set.add(k);
    }
    return [...set].sort();
  }

  /** True when some parameter path starts with `prefix` (an object exists); no sorting, no copies. */
  hasPrefix(prefix: string): boolean {
    for (const [k, v] of this.overrides ?? []) if (v !== null && k.startsWith(prefix)) return true;
    for (const k of sharedTree(this.model, this.firmware).keys()) {
      if (k.startsWith(prefix) && this.overrides?.get(k) !== null) return true;
    }
    return false;
  }

  // ---- operations --------------------------------------------------------------------------

  /** Values of full paths or partial paths (ending in "."). Unknown path → fault 9005. */
  getValues(paths: string[]): Array<{ path: string; value: string; type: string }> {
    const all = paths.some((p) => p.endsWith('.') || p === '') ? this.allPaths() : null;
    const out: Array<{ path: string; value: string; type: string }> = [];
    for (const p of paths) {
      if (p === '' || p.endsWith('.')) {
        const prefix = p === '' ? this.root : p;
        const hits = all!.filter((x) => x.startsWith(prefix));
        if (hits.length === 0) throw new DeviceFault(FAULT.invalidName, `Invalid parameter name ${p}`);
        for (const h of hits) out.push({ path: h, value: this.value(h) ?? '', type: this.paramType(h) });
      } else {
        const v = this.value(p);
        if (v === undefined) throw new DeviceFault(FAULT.invalidName, `Invalid parameter name ${p}`);
        out.push({ path: p, value: v, type: this.paramType(p) });
      }
    }
    return out;
  }

  /** Parameter and object names under `path` with writability (CWMP GetParameterNames). */
  getNames(path: string, nextLevel: boolean): Array<{ path: string; writable: boolean }> {
    const prefix = path === '' ? this.root : path;
    const all = this.allPaths();
    if (!prefix.endsWith('.')) {
      const e = this.entry(prefix);
      if (!e) throw new DeviceFault(FAULT.invalidName, `Invalid parameter name ${path}`);
      if (nextLevel) throw new DeviceFault(FAULT.invalidArguments, 'NextLevel true requires a partial path');
      return [{ path: prefix, writable: e.writable }];
    }
    const hits = all.filter((x) => x.startsWith(prefix));
    if (hits.length === 0 && prefix !== this.root)
      throw new DeviceFault(FAULT.invalidName, `Invalid parameter name ${path}`);
    const out = new Map<string, boolean>();
    if (!nextLevel) out.set(prefix, false);
    for (const h of hits) {
      const rest = h.slice(prefix.length);
      const parts = rest.split('.');
      // Every intermediate object, then the parameter itself.
      for (let i = 1; i < parts.length; i++) {
        const obj = `${prefix}${parts.slice(0, i).join('.')}.`;
        if (nextLevel && i > 1) break;
        if (!out.has(obj)) out.set(obj, /\.\d+\.$/.test(obj) || this.isTable(obj));
      }
      if (!nextLevel || parts.length === 1) out.set(h, this.entry(h)?.writable ?? false);
    }
    return [...out].map(([p, writable]) => ({ path: p, writable }));
  }

  private isTable(objPath: string): boolean {
    const base = objPath.slice(0, -1);
    return this.allPaths().some((p) => p.startsWith(`${base}.`) && /^\d+\./.test(p.slice(base.length + 1)));
  }

  /**
   * Apply values atomically: all or nothing (TR-069 A.3.2.1). Faults carry per-parameter codes.
   * Returns 0 (applied).
   */
  setValues(values: Array<{ path: string; value: string }>, parameterKey: string): 0 | 1 {
    const faults: Array<{ path: string; code: number; message: string }> = [];
    const seen = new Set<string>();
    for (const { path, value } of values) {
      if (seen.has(path)) {
        faults.push({ path, code: FAULT.invalidArguments, message: 'parameter named twice' });
        continue;
      }
      seen.add(path);
      const e = this.entry(path);
      if (!e) faults.push({ path, code: FAULT.invalidName, message: 'Invalid parameter name' });
      else if (!e.writable)
        faults.push({ path, code: FAULT.notWritable, message: 'Attempt to set a non-writable parameter' });
      else {
        const bad = typeOk(e, value) ?? (path === this.bootImagePath ? this.bootImageProblem(value) : null);
        if (bad) faults.push({ path, code: FAULT.invalidValue, message: `Invalid parameter value: ${bad}` });
      }
    }
    if (faults.length > 0) throw new DeviceFault(FAULT.invalidArguments, 'Invalid arguments', faults);
    for (const { path, value } of values) this.put({ ...this.entry(path)!, value });
    this.setInternal(`${this.root}ManagementServer.ParameterKey`, parameterKey);
    // Boot bank selection through a parameter is how CWMP activates an image; it takes effect at reboot.
    const boot = values.find((v) => v.path === this.bootImagePath);
    if (boot) this.activate(Number(/(\d+)$/.exec(boot.value)![1]));
    return boot ? 1 : 0;
  }

  private get bootImagePath(): string {
    return `${this.root}DeviceInfo.BootFirmwareImage`;
  }

  private bootImageProblem(value: string): string | null {
    const m = /^(?:Device\.DeviceInfo\.FirmwareImage\.)?(\d+)$/.exec(value);
    if (!m) return 'not a FirmwareImage reference';
    return this.banks[Number(m[1]) - 1]?.valid ? null : `FirmwareImage.${m[1]} holds no valid image`;
  }

  addObject(path: string, parameterKey: string): number {
    if (!path.endsWith('.')) throw new DeviceFault(FAULT.invalidName, `Invalid object name ${path}`);
    const known = this.allPaths().some((p) => p.startsWith(path));
    const templates = ['Device.NAT.PortMapping.', 'InternetGatewayDevice.Layer3Forwarding.Forwarding.'];
    if (!known && !templates.includes(path))
      throw new DeviceFault(FAULT.invalidName, `Invalid object name ${path}`);
    const existing = this.allPaths()
      .filter((p) => p.startsWith(path))
      .map((p) => Number(p.slice(path.length).split('.')[0]))
      .filter((n) => Number.isInteger(n));
    const n = Math.max(this.nextInstance.get(path) ?? 1, ...existing.map((x) => x + 1));
    this.nextInstance.set(path, n + 1);
    this.put({ path: `${path}${n}.Enable`, value: 'false', type: 'boolean', writable: true });
    this.put({ path: `${path}${n}.Description`, value: '', type: 'string', writable: true, maxLength: 256 });
    this.setInternal(`${this.root}ManagementServer.ParameterKey`, parameterKey);
    return n;
  }

  deleteObject(path: string, parameterKey: string): void {
    if (!/\.\d+\.$/.test(path)) throw new DeviceFault(FAULT.invalidName, `Invalid object name ${path}`);
    const hits = this.allPaths().filter((p) => p.startsWith(path));
    if (hits.length === 0) throw new DeviceFault(FAULT.invalidName, `Invalid object name ${path}`);
    if (!this.overrides) this.overrides = new Map();
    for (const h of hits) this.overrides.set(h, null);
    this.setInternal(`${this.root}ManagementServer.ParameterKey`, parameterKey);
  }

  /**
   * Install a downloaded image into the inactive bank (or the only bank) and decide how the next
   * boot goes. `bytes` null means the transfer itself failed with `fetchFault`.
   * Returns the transfer fault to report (0 = ok) and whether the device must reboot.
   */
  install(
    bytes: Buffer | null,
    expected: { checksum?: string; sha256?: string },
    fetchFault: number = FAULT.downloadFailure,
  ): { faultCode: number; faultString: string; reboot: boolean; version?: string } {
    if (!bytes) return { faultCode: fetchFault, faultString: 'Download failure', reboot: false };
    const img = parseImage(bytes);
    if (!img || (expected.checksum && expected.sha256 && expected.checksum !== expected.sha256))
      return { faultCode: FAULT.fileCorrupted, faultString: 'File corrupted', reboot: false };
    if (img.productClass !== this.model.productClass)
      return { faultCode: FAULT.fileCorrupted, faultString: 'Image is for another model', reboot: false };
    const outcome = pickOutcome(this.outcomes, this.model, img.version, this.random());
    if (outcome.kind === 'transfer_failure')
      return { faultCode: outcome.code, faultString: `Transfer failed (${outcome.code})`, reboot: false };
    const target = this.model.dualBank ? 1 - this.activeBank : 0;
    const previous = this.activeBank;
    this.banks[target] = { version: img.version, valid: true };
    this.pendingBoot = { target, previous, outcome };
    return { faultCode: 0, faultString: '', reboot: true, version: img.version };
  }

  private pendingBoot: { target: number; previous: number; outcome: InstallOutcome } | null = null;

  /** Choose the bank for the next boot (CWMP: set BootFirmwareImage, USP: FirmwareImage.{i}.Activate()). */
  activate(instance: number): void {
    const bank = this.banks[instance - 1];
    if (!bank?.valid)
      throw new DeviceFault(FAULT.invalidValue, `FirmwareImage.${instance} holds no valid image`);
    this.pendingBoot = { target: instance - 1, previous: this.activeBank, outcome: { kind: 'success' } };
  }

  /**
   * Reboot: applies a pending image. Returns how the device comes back: 'up' (informs with BOOT),
   * 'bricked' (never again), 'boot_loop' (informs, drops sessions, reboots again).
   */
  reboot(): DeviceLife {
    this.bootCount += 1;
    this.bootedAt = Date.now();
    const pb = this.pendingBoot;
    this.pendingBoot = null;
    this.life = this.bootResult(pb);
    return this.life;
  }

  private bootResult(pb: { target: number; previous: number; outcome: InstallOutcome } | null): DeviceLife {
    if (!pb) return this.life === 'boot_loop' ? 'boot_loop' : 'up';
    switch (pb.outcome.kind) {
      case 'brick':
        this.activeBank = pb.target;
        return 'bricked';
      case 'boot_loop':
        this.activeBank = pb.target;
        return 'boot_loop';
      case 'fallback':
        this.banks[pb.target] = { ...this.banks[pb.target]!, valid: false };
        this.activeBank = pb.previous;
        return 'up';
      default:
        this.activeBank = pb.target;
        return 'up';
    }
  }

  factoryReset(): void {
    this.overrides = null;
    this.nextInstance.clear();
  }

  /** Which image a version lives in (1-based), for activation by version. */
  bankOf(version: string): number | null {
    const i = this.banks.findIndex((b) => b.valid && b.version === version);
    return i < 0 ? null : i + 1;
  }
}
