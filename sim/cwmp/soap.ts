import { XMLParser } from 'fast-xml-parser';

/**
 * The CPE side of CWMP SOAP, written independently of the ACS's codec so the protocol tests exercise
 * two implementations against each other. Builds what a CPE sends; parses what an ACS sends.
 */

const esc = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

export function envelope(ns: string, id: string | null, body: string, extraHeader = ''): string {
  const header =
    id !== null || extraHeader
      ? `<soap:Header>${id !== null ? `<cwmp:ID soap:mustUnderstand="1">${esc(id)}</cwmp:ID>` : ''}${extraHeader}</soap:Header>`
      : '';
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" ` +
    `xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ` +
    `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="${ns}">${header}<soap:Body>${body}</soap:Body></soap:Envelope>`
  );
}

export function paramList(
  params: Array<{ path: string; value: string; type: string }>,
  tag = 'ParameterList',
): string {
  return `<${tag} soapenc:arrayType="cwmp:ParameterValueStruct[${params.length}]">${params
    .map(
      (p) =>
        `<ParameterValueStruct><Name>${esc(p.path)}</Name><Value xsi:type="xsd:${p.type}">${esc(p.value)}</Value></ParameterValueStruct>`,
    )
    .join('')}</${tag}>`;
}

export interface InformArgs {
  ns: string;
  id: string;
  manufacturer: string;
  oui: string;
  productClass: string;
  serial: string;
  events: Array<{ code: string; commandKey: string }>;
  retryCount: number;
  params: Array<{ path: string; value: string; type: string }>;
  supportedVersions?: string;
}

export function informXml(a: InformArgs): string {
  const events = a.events
    .map(
      (e) =>
        `<EventStruct><EventCode>${esc(e.code)}</EventCode><CommandKey>${esc(e.commandKey)}</CommandKey></EventStruct>`,
    )
    .join('');
  const extra = a.supportedVersions
    ? `<cwmp:SupportedCWMPVersions soap:mustUnderstand="0">${a.supportedVersions}</cwmp:SupportedCWMPVersions>`
    : '';
  return envelope(
    a.ns,
    a.id,
    `<cwmp:Inform><DeviceId><Manufacturer>${esc(a.manufacturer)}</Manufacturer><OUI>${esc(a.oui)}</OUI>` +
      `<ProductClass>${esc(a.productClass)}</ProductClass><SerialNumber>${esc(a.serial)}</SerialNumber></DeviceId>` +
      `<Event soapenc:arrayType="cwmp:EventStruct[${a.events.length}]">${events}</Event><MaxEnvelopes>1</MaxEnvelopes>` +
      `<CurrentTime>${new Date().toISOString()}</CurrentTime><RetryCount>${a.retryCount}</RetryCount>${paramList(a.params)}</cwmp:Inform>`,
    extra,
  );
}

export function faultXml(
  ns: string,
  id: string | null,
  code: number,
  message: string,
  params: Array<{ path: string; code: number; message: string }> = [],
): string {
  const spv = params
    .map(
      (p) =>
        `<SetParameterValuesFault><ParameterName>${esc(p.path)}</ParameterName><FaultCode>${p.code}</FaultCode><FaultString>${esc(p.message)}</FaultString></SetParameterValuesFault>`,
    )
    .join('');
  return envelope(
    ns,
    id,
    `<soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>${code}</FaultCode><FaultString>${esc(message)}</FaultString>${spv}</cwmp:Fault></detail></soap:Fault>`,
  );
}

export function transferCompleteXml(
  ns: string,
  id: string,
  t: { commandKey: string; faultCode: number; faultString: string; startTime: string; completeTime: string },
): string {
  return envelope(
    ns,
    id,
    `<cwmp:TransferComplete><CommandKey>${esc(t.commandKey)}</CommandKey><FaultStruct><FaultCode>${t.faultCode}</FaultCode>` +
      `<FaultString>${esc(t.faultString)}</FaultString></FaultStruct><StartTime>${t.startTime}</StartTime><CompleteTime>${t.completeTime}</CompleteTime></cwmp:TransferComplete>`,
  );
}

export { esc };

// ---- parsing what the ACS sends -----------------------------------------------------------

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  htmlEntities: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => ['ParameterValueStruct', 'string'].includes(name),
});

export interface AcsMessage {
  /** Namespace the ACS answered in. */
  ns: string | null;
  id: string | null;
  holdRequests: boolean;
  useVersion: string | null;
  name: string;
  body: Record<string, unknown>;
}

type N = Record<string, unknown>;
const txt = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'object' ? txt((v as N)['#text']) : String(v);

export function parseAcs(xml: string): AcsMessage {
  const nsMatch = /xmlns:[A-Za-z0-9_-]+="(urn:dslforum-org:cwmp-1-\d+)"/.exec(xml);
  const doc = parser.parse(xml) as N;
  const env = doc.Envelope as N | undefined;
  if (!env) throw new Error('not a SOAP envelope');
  const header = (env.Header ?? {}) as N;
  const body = (env.Body ?? {}) as N;
  const name = Object.keys(body).find((k) => !k.startsWith('@_')) ?? '';
  return {
    ns: nsMatch?.[1] ?? null,
    id: header.ID === undefined ? null : txt(header.ID),
    holdRequests: txt(header.HoldRequests) === '1' || txt(header.HoldRequests) === 'true',
    useVersion: header.UseCWMPVersion === undefined ? null : txt(header.UseCWMPVersion),
    name,
    body: (body[name] ?? {}) as N,
  };
}

export const text = txt;

export function strings(v: unknown): string[] {
  const s = (v as N | undefined)?.string;
  if (s === undefined) return [];
  return (Array.isArray(s) ? s : [s]).map(txt);
}

export function valueStructs(v: unknown): Array<{ path: string; value: string; type?: string }> {
  const s = (v as N | undefined)?.ParameterValueStruct;
  if (s === undefined) return [];
  return (Array.isArray(s) ? s : [s]).map((p) => {
    const val = (p as N).Value;
    const t = typeof val === 'object' && val ? ((val as N)['@_type'] as string | undefined) : undefined;
    return { path: txt((p as N).Name), value: txt(val), type: t };
  });
}
