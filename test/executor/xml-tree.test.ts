import { describe, expect, it } from 'vitest';
import { parseEnvelope, SoapError, xmlTree } from '../../executor/cwmp/soap.js';
import { faultXml, informXml, transferCompleteXml } from '../../sim/cwmp/soap.js';
import {
  getParameterValuesResponse,
  getRpcMethods,
  inform,
  MALFORMED,
  setParameterValuesFault,
  transferComplete,
  unknownRpc,
} from './fixtures.js';

const NSS = [0, 1, 2, 3, 4].map((m) => `urn:dslforum-org:cwmp-1-${m}`);

/** What CPEs send: the hand-written fixtures (varied prefixes and layout) and the simulator's messages. */
const messages: Array<[string, string]> = NSS.flatMap(
  (ns): Array<[string, string]> => [
    [
      `fixture Inform ${ns}`,
      inform(ns, {
        events: ['0 BOOTSTRAP', '1 BOOT', 'M Reboot'],
        supported: '1.0,1.4',
        paramKey: 'k&amp;1',
      }),
    ],
    [`fixture GetParameterValuesResponse ${ns}`, getParameterValuesResponse(ns, 'gpv-1')],
    [`fixture SetParameterValuesFault ${ns}`, setParameterValuesFault(ns, 'spv-1')],
    [`fixture TransferComplete ${ns}`, transferComplete(ns, 'ck-1', 9010)],
    [`fixture GetRPCMethods ${ns}`, getRpcMethods(ns)],
    [`fixture unknown RPC ${ns}`, unknownRpc(ns)],
    [
      `sim Inform ${ns}`,
      informXml({
        ns,
        id: 'inf-1',
        manufacturer: 'Acme <&> "Co"',
        oui: '00D09E',
        productClass: 'HG',
        serial: 'S1',
        events: [
          { code: '1 BOOT', commandKey: '' },
          { code: 'M Download', commandKey: "c'k" },
        ],
        retryCount: 2,
        params: [
          { path: 'Device.DeviceInfo.SoftwareVersion', value: '1.2.3', type: 'xsd:string' },
          { path: 'Device.ManagementServer.ParameterKey', value: '', type: 'xsd:string' },
          { path: 'Device.ManagementServer.PeriodicInformInterval', value: '300', type: 'xsd:unsignedInt' },
        ],
        supportedVersions: '1.0,1.2,1.4',
      }),
    ],
    [
      `sim Fault ${ns}`,
      faultXml(ns, 'f-1', 9003, 'bad <value>', [{ path: 'Device.X', code: 9007, message: 'no' }]),
    ],
    [
      `sim TransferComplete ${ns}`,
      transferCompleteXml(ns, 'tc-1', {
        commandKey: 'ck',
        faultCode: 0,
        faultString: '',
        startTime: '2026-11-25T10:00:00Z',
        completeTime: '2026-11-25T10:00:09Z',
      }),
    ],
  ],
);

describe('envelope tree: plain fast path', () => {
  it.each(messages)('%s: the same tree as the general parser', (_, xml) => {
    const plain = xmlTree.plain(xml);
    const general = xmlTree.general(xml);
    // A fixture with a character reference (&#233;) is left to the general parser; the rest take the fast path.
    if (xml.includes('&#')) expect(plain).toBeNull();
    else expect(plain).toEqual(general);
  });

  it('leaves comments, CDATA, mixed content and other entities to the general parser, with the same result', () => {
    const base = inform(NSS[2]!);
    const variants = [
      base.replace('<RetryCount>', '<!-- retried --><RetryCount>'),
      base.replace('<SerialNumber>FX0001', '<SerialNumber><![CDATA[FX0001]]>'),
      base.replace('<OUI>00D09E</OUI>', '<OUI>00D09E&nbsp;</OUI>'),
      base.replace('<MaxEnvelopes>1</MaxEnvelopes>', '<MaxEnvelopes>1<x/></MaxEnvelopes>'),
      base.replace('<cwmp:Inform>', '<?pi x?><cwmp:Inform>'),
    ];
    for (const xml of variants) {
      expect(xmlTree.plain(xml)).toBeNull();
      // parseEnvelope still reads them (through the general parser) or refuses them as before.
      expect(() => parseEnvelope(xml)).not.toThrow(TypeError);
    }
    expect(parseEnvelope(variants[1]!).message).toMatchObject({
      type: 'Inform',
      device: { serialNumber: 'FX0001' },
    });
    expect(parseEnvelope(variants[0]!).message).toMatchObject({ type: 'Inform', retryCount: 0 });
  });

  it('takes nothing ill-formed: those meet the validator and get a 400 as before', () => {
    const ok = inform(NSS[1]!);
    const illFormed = [
      MALFORMED.unclosed,
      MALFORMED.notXml,
      ok.replace('</DeviceId>', '</DeviceID>'),
      ok.replace('<MaxEnvelopes>1</MaxEnvelopes>', '<MaxEnvelopes>1</RetryCount><MaxEnvelopes>'),
      `${ok}<SOAP-ENV:Envelope/>`,
      `${ok} trailing text`,
      ok.replace('<OUI>', '<OUI a="1" a="2">'),
      ok.replace('<OUI>', '<OUI a=1>'),
      ok.replace('<OUI>', '<OUI a="1"b="2" ="3">'),
      ok.replace('<OUI>', '<1OUI>').replace('</OUI>', '</1OUI>'),
      ok.replace('00D09E', '00D0&9E'),
      ok.replace('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="UTF-8"'),
      ok.replace('</SOAP-ENV:Envelope>', ''),
      ok.slice(0, ok.length / 2),
    ];
    for (const xml of illFormed) {
      expect(xmlTree.plain(xml), xml.slice(0, 80)).toBeNull();
      let status = 0;
      try {
        parseEnvelope(xml);
      } catch (err) {
        status = err instanceof SoapError ? err.status : -1;
      }
      expect(status, xml.slice(-120)).toBe(400);
    }
    // What the validator lets through (a control character, '<' in an attribute) is not taken by the
    // fast path either: it stays with the general parser, as before.
    for (const xml of [ok.replace('00D09E', '00D0\u00019E'), ok.replace('<OUI>', '<OUI a="<">')]) {
      expect(xmlTree.plain(xml)).toBeNull();
      expect(parseEnvelope(xml).message.type).toBe('Inform');
    }
  });

  it('keeps attribute values with ">" and both quote styles, entities decoded', () => {
    const xml = `<?xml version="1.0"?>\n<s:a xmlns:s="u" q = 'a>b' r="&lt;&amp;&quot;"><s:b>&quot;x&apos;</s:b><s:b/><s:b></s:b><c d="1">  </c></s:a>`;
    expect(xmlTree.plain(xml)).toEqual(xmlTree.general(xml));
    expect(xmlTree.plain(xml)).toEqual({
      's:a': { '@_xmlns:s': 'u', '@_q': 'a>b', '@_r': '<&"', 's:b': ['"x\'', '', ''], c: { '@_d': '1' } },
    });
  });
});
