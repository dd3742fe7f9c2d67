import { DeviceFault, FAULT } from '../device.js';

/** USP search paths as the simulated agents understand them: exact, partial (trailing "."), and `*`. */
export function pathMatcher(pattern: string): (path: string) => boolean {
  if (pattern.includes('['))
    throw new DeviceFault(FAULT.invalidArguments, `search expressions are not supported: ${pattern}`);
  if (!pattern.includes('*')) {
    return pattern.endsWith('.') ? (p) => p.startsWith(pattern) : (p) => p === pattern;
  }
  const body = pattern
    .split('.')
    .map((seg) => (seg === '*' ? '[^.]+' : seg.replace(/[\\^$+?()|{}]/g, '\\$&')))
    .join('\\.');
  const re = new RegExp(pattern.endsWith('.') ? `^${body}` : `^${body}$`);
  return (p) => re.test(p);
}

/** "Device.WiFi.SSID.1.SSID" → ["Device.WiFi.SSID.1.", "SSID"]. */
export function splitParam(path: string): [string, string] {
  const i = path.lastIndexOf('.');
  return [path.slice(0, i + 1), path.slice(i + 1)];
}

/** Supported-model form of an instance path: numbers become {i}. */
export function supportedForm(path: string): string {
  return path.replace(/\.\d+(?=\.)/g, '.{i}');
}

/** Object instances (paths ending ".<n>.") appearing in the given parameter paths. */
export function instancesIn(paths: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const p of paths) {
    const re = /\.\d+\./g;
    let m: RegExpExecArray | null = re.exec(p);
    while (m) {
      out.add(p.slice(0, m.index + m[0].length));
      re.lastIndex = m.index + 1;
      m = re.exec(p);
    }
  }
  return out;
}

/** TR-069 device fault → the TR-369 error an agent reports for the same per-item failure. */
export function uspCodeFor(cwmpFault: number, kind: 'param' | 'object' = 'param'): number {
  switch (cwmpFault) {
    case FAULT.invalidName:
      return kind === 'param' ? 7010 : 7026;
    case FAULT.invalidType:
      return 7011;
    case FAULT.invalidValue:
      return 7012;
    case FAULT.notWritable:
      return 7013;
    case FAULT.invalidArguments:
      return 7004;
    case FAULT.resources:
      return 7005;
    case FAULT.downloadFailure:
    case FAULT.fileCorrupted:
    case FAULT.fileAccess:
    case FAULT.contactFailure:
    case FAULT.transferAuthFailure:
    case FAULT.unsupportedProtocol:
      return 7022;
    default:
      return 7003;
  }
}
