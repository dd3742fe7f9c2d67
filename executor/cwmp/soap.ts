import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { plainTree } from './xml-tree.js';

/**
 * CWMP SOAP 1.1 envelopes (TR-069 Annex/§3.5): parsing what a CPE sends and building what the ACS
 * sends. Namespace prefixes are whatever the CPE chose; the cwmp namespace version is taken from the
 * prefix bound on the RPC element (any `urn:dslforum-org:cwmp-1-N`) and answered in kind.
 */

export const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP_ENC = 'http://schemas.xmlsoap.org/soap/encoding/';
const CWMP_NS_RE = /^urn:dslforum-org:cwmp-1-(\d+)$/;
/** Versions this ACS speaks; 1.4 adds SupportedCWMPVersions/UseCWMPVersion negotiation. */
export const ACS_VERSIONS = ['1.0', '1.1', '1.2', '1.3', '1.4'] as const;

export class SoapError extends Error {
  constructor(
    /** HTTP status to answer with (400 malformed, 413 too large, …). */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface ParamValueStruct {
  path: string;
  value: string;
  type: string;
}

export interface SetFault {
  path: string;
  code: number;
  message: string;
}

export type CpeMessage =
  | {
      type: 'Inform';
      device: { manufacturer: string; oui: string; productClass: string; serialNumber: string };
      events: Array<{ code: string; commandKey: string }>;
      maxEnvelopes: number;
      currentTime: string;
      retryCount: number;
      params: ParamValueStruct[];
    }
  | {
      type: 'TransferComplete';
      commandKey: string;
      faultCode: number;
      faultString: string;
      startTime: string;
      completeTime: string;
    }
  | {
      type: 'AutonomousTransferComplete';
      announceUrl: string;
      transferUrl: string;
      isDownload: boolean;
      fileType: string;
      fileSize: number;
      targetFileName: string;
      faultCode: number;
      faultString: string;
      startTime: string;
      completeTime: string;
    }
  | { type: 'GetRPCMethods' }
  | { type: 'GetRPCMethodsResponse'; methods: string[] }
  | { type: 'GetParameterValuesResponse'; params: ParamValueStruct[] }
  | { type: 'SetParameterValuesResponse'; status: number }
  | { type: 'GetParameterNamesResponse'; names: Array<{ path: string; writable: boolean }> }
  | { type: 'AddObjectResponse'; instance: number; status: number }
  | { type: 'DeleteObjectResponse'; status: number }
  | { type: 'DownloadResponse'; status: number; startTime: string; completeTime: string }
  | { type: 'RebootResponse' }
  | { type: 'FactoryResetResponse' }
  | { type: 'ScheduleInformResponse' }
  | { type: 'Fault'; code: number; message: string; parameters: SetFault[] }
  | { type: 'Unknown'; name: string };

export type CpeMessageType = CpeMessage['type'];

export interface ParsedEnvelope {
  /** Full namespace URI used by the CPE, e.g. `urn:dslforum-org:cwmp-1-2`. */
  ns: string;
  /** The N of `cwmp-1-N`. */
  minor: number;
  id: string | null;
  holdRequests: boolean;
  /** CWMP 1.4 SupportedCWMPVersions header, e.g. ['1.0', '1.4']. */
  supportedVersions: string[] | null;
  message: CpeMessage;
}

const ARRAY_TAGS = new Set([
  'EventStruct',
  'ParameterValueStruct',
  'ParameterInfoStruct',
  'SetParameterValuesFault',
  'string',
]);
const local = (name: string) => {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(i + 1);
};

const isArrayTag = (name: string) => ARRAY_TAGS.has(local(name));
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: true,
  isArray: isArrayTag,
});

/**
 * The object tree of a well-formed envelope: the plain-shape fast path when it applies (every CPE
 * message seen so far), else the general parser; both give the same tree (test/executor/xml-tree.test.ts checks it).
 */
export const xmlTree = {
  plain: (xml: string) => plainTree(xml, isArrayTag),
  general: (xml: string) => parser.parse(xml) as Record<string, unknown>,
};

type Node = Record<string, unknown>;

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Child by local name, whatever prefix the sender used. */
function child(n: unknown, name: string): unknown {
  if (!isNode(n)) return undefined;
  for (const k of Object.keys(n)) if (!k.startsWith('@_') && local(k) === name) return n[k];
  return undefined;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isNode(v)) return text(v['#text']);
  if (Array.isArray(v)) return text(v[0]);
  return '';
}

function attr(v: unknown, name: string): string | undefined {
  if (!isNode(v)) return undefined;
  for (const k of Object.keys(v)) if (k.startsWith('@_') && local(k.slice(2)) === name) return String(v[k]);
  return undefined;
}

function list(v: unknown, item: string): unknown[] {
  const c = child(v, item);
  if (c === undefined || c === '') return [];
  return Array.isArray(c) ? c : [c];
}

function int(v: unknown, field: string): number {
  const s = text(v).trim();
  if (!/^-?\d+$/.test(s)) throw new SoapError(400, `${field} is not an integer: "${s.slice(0, 40)}"`);
  return Number(s);
}

function bool(v: unknown): boolean {
  const s = text(v).trim();
  return s === '1' || s === 'true';
}

function paramValues(v: unknown): ParamValueStruct[] {
  return list(v, 'ParameterValueStruct').map((p) => {
    const val = child(p, 'Value');
    const path = text(child(p, 'Name'));
    if (!path) throw new SoapError(400, 'ParameterValueStruct without Name');
    const t = attr(val, 'type') ?? 'xsd:string';
    return { path, value: text(val), type: local(t) };
  });
}

function namespacesOf(...nodes: unknown[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    if (!isNode(n)) continue;
    for (const [k, v] of Object.entries(n)) {
      if (k === '@_xmlns') out.set('', String(v));
      else if (k.startsWith('@_xmlns:')) out.set(k.slice(8), String(v));
    }
  }
  return out;
}

function messageOf(name: string, b: unknown): CpeMessage {
  switch (name) {
    case 'Inform': {
      const dev = child(b, 'DeviceId');
      const device = {
        manufacturer: text(child(dev, 'Manufacturer')),
        oui: text(child(dev, 'OUI')),
        productClass: text(child(dev, 'ProductClass')),
        serialNumber: text(child(dev, 'SerialNumber')),
      };
      if (!device.oui || !device.serialNumber)
        throw new SoapError(400, 'Inform DeviceId needs OUI and SerialNumber');
      return {
        type: 'Inform',
        device,
        events: list(child(b, 'Event'), 'EventStruct').map((e) => ({
          code: text(child(e, 'EventCode')),
          commandKey: text(child(e, 'CommandKey')),
        })),
        maxEnvelopes:
          child(b, 'MaxEnvelopes') === undefined ? 1 : int(child(b, 'MaxEnvelopes'), 'MaxEnvelopes'),
        currentTime: text(child(b, 'CurrentTime')),
        retryCount: child(b, 'RetryCount') === undefined ? 0 : int(child(b, 'RetryCount'), 'RetryCount'),
        params: paramValues(child(b, 'ParameterList')),
      };
    }
    case 'TransferComplete': {
      const f = child(b, 'FaultStruct');
      return {
        type: 'TransferComplete',
        commandKey: text(child(b, 'CommandKey')),
        faultCode: child(f, 'FaultCode') === undefined ? 0 : int(child(f, 'FaultCode'), 'FaultCode'),
        faultString: text(child(f, 'FaultString')),
        startTime: text(child(b, 'StartTime')),
        completeTime: text(child(b, 'CompleteTime')),
      };
    }
    case 'AutonomousTransferComplete': {
      const f = child(b, 'FaultStruct');
      return {
        type: 'AutonomousTransferComplete',
        announceUrl: text(child(b, 'AnnounceURL')),
        transferUrl: text(child(b, 'TransferURL')),
        isDownload: bool(child(b, 'IsDownload')),
        fileType: text(child(b, 'FileType')),
        fileSize: child(b, 'FileSize') === undefined ? 0 : int(child(b, 'FileSize'), 'FileSize'),
        targetFileName: text(child(b, 'TargetFileName')),
        faultCode: child(f, 'FaultCode') === undefined ? 0 : int(child(f, 'FaultCode'), 'FaultCode'),
        faultString: text(child(f, 'FaultString')),
        startTime: text(child(b, 'StartTime')),
        completeTime: text(child(b, 'CompleteTime')),
      };
    }
    case 'GetRPCMethods':
      return { type: 'GetRPCMethods' };
    case 'GetRPCMethodsResponse':
      return { type: 'GetRPCMethodsResponse', methods: list(child(b, 'MethodList'), 'string').map(text) };
    case 'GetParameterValuesResponse':
      return { type: 'GetParameterValuesResponse', params: paramValues(child(b, 'ParameterList')) };
    case 'SetParameterValuesResponse':
      return { type: 'SetParameterValuesResponse', status: int(child(b, 'Status'), 'Status') };
    case 'GetParameterNamesResponse':
      return {
        type: 'GetParameterNamesResponse',
        names: list(child(b, 'ParameterList'), 'ParameterInfoStruct').map((p) => ({
          path: text(child(p, 'Name')),
          writable: bool(child(p, 'Writable')),
        })),
      };
    case 'AddObjectResponse':
      return {
        type: 'AddObjectResponse',
        instance: int(child(b, 'InstanceNumber'), 'InstanceNumber'),
        status: int(child(b, 'Status'), 'Status'),
      };
    case 'DeleteObjectResponse':
      return { type: 'DeleteObjectResponse', status: int(child(b, 'Status'), 'Status') };
    case 'DownloadResponse':
      return {
        type: 'DownloadResponse',
        status: int(child(b, 'Status'), 'Status'),
        startTime: text(child(b, 'StartTime')),
        completeTime: text(child(b, 'CompleteTime')),
      };
    case 'RebootResponse':
    case 'FactoryResetResponse':
    case 'ScheduleInformResponse':
      return { type: name };
    default:
      return { type: 'Unknown', name };
  }
}

function faultOf(fault: unknown): CpeMessage {
  const detail = child(child(fault, 'detail'), 'Fault');
  if (detail === undefined) {
    const fs = text(child(fault, 'faultstring'));
    return {
      type: 'Fault',
      code: 9002,
      message: fs || 'SOAP fault without cwmp:Fault detail',
      parameters: [],
    };
  }
  return {
    type: 'Fault',
    code: int(child(detail, 'FaultCode'), 'FaultCode'),
    message: text(child(detail, 'FaultString')),
    parameters: list(detail, 'SetParameterValuesFault').map((p) => ({
      path: text(child(p, 'ParameterName')),
      code: int(child(p, 'FaultCode'), 'FaultCode'),
      message: text(child(p, 'FaultString')),
    })),
  };
}

/** Parse one CWMP envelope. Throws SoapError(400) for anything that is not a well-formed CWMP message. */
export function parseEnvelope(xml: string): ParsedEnvelope {
  // SOAP 1.1 forbids DTDs; refusing them also rules out entity-expansion attacks.
  if (/<!DOCTYPE/i.test(xml)) throw new SoapError(400, 'SOAP messages must not contain a DTD');
  // The fast walk checks well-formedness itself for what it takes; anything else is validated first.
  let doc = xmlTree.plain(xml) as Node | null;
  if (doc === null) {
    const valid = XMLValidator.validate(xml);
    if (valid !== true) throw new SoapError(400, `malformed XML at line ${valid.err.line}: ${valid.err.msg}`);
    doc = xmlTree.general(xml) as Node;
  }
  const envKey = Object.keys(doc).find((k) => local(k) === 'Envelope');
  if (!envKey) throw new SoapError(400, 'not a SOAP Envelope');
  const env = doc[envKey];
  const header = child(env, 'Header');
  const body = child(env, 'Body');
  if (!isNode(body)) throw new SoapError(400, 'SOAP Envelope without Body');
  const rpcKey = Object.keys(body).find((k) => !k.startsWith('@_'));
  if (!rpcKey) throw new SoapError(400, 'empty SOAP Body');
  const rpc = body[rpcKey];
  const ns = namespacesOf(env, header, body, rpc);
  const envNs = ns.get(envKey.includes(':') ? envKey.slice(0, envKey.indexOf(':')) : '');
  if (envNs !== SOAP_ENV) throw new SoapError(400, `Envelope namespace must be ${SOAP_ENV}`);

  let cwmpNs: string | undefined;
  let message: CpeMessage;
  if (local(rpcKey) === 'Fault') {
    message = faultOf(rpc);
    const detailFault = Object.keys(isNode(child(rpc, 'detail')) ? (child(rpc, 'detail') as Node) : {}).find(
      (k) => local(k) === 'Fault',
    );
    const prefix = detailFault?.includes(':') ? detailFault.slice(0, detailFault.indexOf(':')) : '';
    cwmpNs =
      namespacesOf(child(rpc, 'detail'), child(child(rpc, 'detail'), 'Fault')).get(prefix) ?? ns.get(prefix);
  } else {
    const prefix = rpcKey.includes(':') ? rpcKey.slice(0, rpcKey.indexOf(':')) : '';
    cwmpNs = ns.get(prefix);
    message = messageOf(local(rpcKey), rpc);
  }
  // Header elements may use their own prefix; find any cwmp namespace for them.
  if (!cwmpNs || !CWMP_NS_RE.test(cwmpNs)) {
    const any = [...ns.values()].find((u) => CWMP_NS_RE.test(u));
    if (!any) throw new SoapError(400, 'no urn:dslforum-org:cwmp-1-N namespace on the RPC element');
    cwmpNs = any;
  }
  const minor = Number(CWMP_NS_RE.exec(cwmpNs)![1]);
  const idNode = child(header, 'ID');
  const supported = child(header, 'SupportedCWMPVersions');
  return {
    ns: cwmpNs,
    minor,
    id: idNode === undefined ? null : text(idNode),
    holdRequests: bool(child(header, 'HoldRequests')),
    supportedVersions:
      supported === undefined
        ? null
        : text(supported)
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
    message,
  };
}

/**
 * CWMP 1.4 negotiation: the highest version both sides support, or null when the CPE did not offer
 * SupportedCWMPVersions (then the namespace it used is the version).
 */
export function negotiateVersion(supported: string[] | null): string | null {
  if (!supported) return null;
  const ours = new Set<string>(ACS_VERSIONS);
  const common = supported
    .filter((v) => ours.has(v))
    .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
  return common.at(-1) ?? null;
}

export const nsForVersion = (v: string) => `urn:dslforum-org:cwmp-${v.replace('.', '-')}`;

// ---------------------------------------------------------------------------------------------
// Building

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: false,
});

export interface EnvelopeHeader {
  ns: string;
  id: string | null;
  holdRequests?: boolean;
  useVersion?: string;
}

function envelope(h: EnvelopeHeader, rpc: string, body: Node): string {
  const header: Node = {};
  if (h.id !== null) header['cwmp:ID'] = { '@_soap-env:mustUnderstand': '1', '#text': h.id };
  if (h.holdRequests) header['cwmp:HoldRequests'] = { '@_soap-env:mustUnderstand': '1', '#text': '1' };
  if (h.useVersion)
    header['cwmp:UseCWMPVersion'] = { '@_soap-env:mustUnderstand': '1', '#text': h.useVersion };
  const env: Node = {
    'soap-env:Envelope': {
      '@_xmlns:soap-env': SOAP_ENV,
      '@_xmlns:soap-enc': SOAP_ENC,
      '@_xmlns:xsd': 'http://www.w3.org/2001/XMLSchema',
      '@_xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
      '@_xmlns:cwmp': h.ns,
      ...(Object.keys(header).length > 0 ? { 'soap-env:Header': header } : {}),
      'soap-env:Body': { [`cwmp:${rpc}`]: body },
    },
  };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(env)}`;
}

/** xsd type for a value whose schema type is unknown: guesses conservatively (string unless obvious). */
export function xsdType(type: string | undefined): string {
  if (!type) return 'xsd:string';
  return type.includes(':') ? type : `xsd:${type}`;
}

export type AcsRequest =
  | { rpc: 'GetParameterValues'; names: string[] }
  | {
      rpc: 'SetParameterValues';
      values: Array<{ path: string; value: string; type?: string }>;
      parameterKey: string;
    }
  | { rpc: 'GetParameterNames'; path: string; nextLevel: boolean }
  | { rpc: 'AddObject'; objectName: string; parameterKey: string }
  | { rpc: 'DeleteObject'; objectName: string; parameterKey: string }
  | {
      rpc: 'Download';
      commandKey: string;
      fileType: string;
      url: string;
      username: string;
      password: string;
      fileSize: number;
      targetFileName: string;
      delaySeconds: number;
    }
  | { rpc: 'Reboot'; commandKey: string }
  | { rpc: 'FactoryReset' }
  | { rpc: 'ScheduleInform'; delaySeconds: number; commandKey: string }
  | { rpc: 'GetRPCMethods' };

export function buildRequest(h: EnvelopeHeader, r: AcsRequest): string {
  switch (r.rpc) {
    case 'GetParameterValues':
      return envelope(h, r.rpc, {
        ParameterNames: { '@_soap-enc:arrayType': `xsd:string[${r.names.length}]`, string: r.names },
      });
    case 'SetParameterValues':
      return envelope(h, r.rpc, {
        ParameterList: {
          '@_soap-enc:arrayType': `cwmp:ParameterValueStruct[${r.values.length}]`,
          ParameterValueStruct: r.values.map((v) => ({
            Name: v.path,
            Value: { '@_xsi:type': xsdType(v.type), '#text': v.value },
          })),
        },
        ParameterKey: r.parameterKey,
      });
    case 'GetParameterNames':
      return envelope(h, r.rpc, { ParameterPath: r.path, NextLevel: r.nextLevel ? 'true' : 'false' });
    case 'AddObject':
    case 'DeleteObject':
      return envelope(h, r.rpc, { ObjectName: r.objectName, ParameterKey: r.parameterKey });
    case 'Download':
      return envelope(h, r.rpc, {
        CommandKey: r.commandKey,
        FileType: r.fileType,
        URL: r.url,
        Username: r.username,
        Password: r.password,
        FileSize: r.fileSize,
        TargetFileName: r.targetFileName,
        DelaySeconds: r.delaySeconds,
        SuccessURL: '',
        FailureURL: '',
      });
    case 'Reboot':
      return envelope(h, r.rpc, { CommandKey: r.commandKey });
    case 'ScheduleInform':
      return envelope(h, r.rpc, { DelaySeconds: r.delaySeconds, CommandKey: r.commandKey });
    case 'FactoryReset':
    case 'GetRPCMethods':
      return envelope(h, r.rpc, {});
  }
}

const xmlEscape = (v: string) =>
  v.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

/**
 * The InformResponse, sent once per session (a storm sends 100 000 of them): a string template with
 * the same envelope the builder makes, rather than an object tree through the XML builder.
 */
export function buildInformResponse(h: EnvelopeHeader): string {
  const must = 'soap-env:mustUnderstand="1"';
  const header =
    (h.id !== null ? `<cwmp:ID ${must}>${xmlEscape(h.id)}</cwmp:ID>` : '') +
    (h.holdRequests ? `<cwmp:HoldRequests ${must}>1</cwmp:HoldRequests>` : '') +
    (h.useVersion ? `<cwmp:UseCWMPVersion ${must}>${xmlEscape(h.useVersion)}</cwmp:UseCWMPVersion>` : '');
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<soap-env:Envelope xmlns:soap-env="${SOAP_ENV}" xmlns:soap-enc="${SOAP_ENC}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="${xmlEscape(h.ns)}">` +
    (header ? `<soap-env:Header>${header}</soap-env:Header>` : '') +
    '<soap-env:Body><cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></soap-env:Body></soap-env:Envelope>'
  );
}

export function buildEmptyResponse(
  h: EnvelopeHeader,
  rpc: 'TransferCompleteResponse' | 'AutonomousTransferCompleteResponse',
): string {
  return envelope(h, rpc, {});
}

export const ACS_METHODS = ['Inform', 'GetRPCMethods', 'TransferComplete', 'AutonomousTransferComplete'];

export function buildGetRPCMethodsResponse(h: EnvelopeHeader): string {
  return envelope(h, 'GetRPCMethodsResponse', {
    MethodList: { '@_soap-enc:arrayType': `xsd:string[${ACS_METHODS.length}]`, string: ACS_METHODS },
  });
}

/** ACS fault codes (TR-069 Table 60). */
export const ACS_FAULT = {
  methodNotSupported: 8000,
  requestDenied: 8001,
  internalError: 8002,
  invalidArguments: 8003,
  resourcesExceeded: 8004,
  retryRequest: 8005,
} as const;

export function buildFault(h: EnvelopeHeader, code: number, message: string): string {
  const body = {
    'soap-env:Envelope': {
      '@_xmlns:soap-env': SOAP_ENV,
      '@_xmlns:cwmp': h.ns,
      ...(h.id !== null
        ? { 'soap-env:Header': { 'cwmp:ID': { '@_soap-env:mustUnderstand': '1', '#text': h.id } } }
        : {}),
      'soap-env:Body': {
        'soap-env:Fault': {
          faultcode:
            code === ACS_FAULT.internalError || code === ACS_FAULT.retryRequest ? 'Server' : 'Client',
          faultstring: 'CWMP fault',
          detail: { 'cwmp:Fault': { FaultCode: code, FaultString: message } },
        },
      },
    },
  };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build(body)}`;
}
