/**
 * Hand-written CWMP envelopes, authored for these tests after the message layouts of TR-069
 * (Annex A). Deliberately varied: different prefixes (SOAP-ENV, soapenv, s), default namespaces,
 * whitespace and self-closing elements, so the ACS cannot rely on one serializer's habits.
 */

export const DEVICE = {
  oui: '00D09E',
  productClass: 'FixtureGW',
  serial: 'FX0001',
  manufacturer: 'Fixture & Co',
};
export const DEVICE_ID = `${DEVICE.oui}-${DEVICE.productClass}-${DEVICE.serial}`;

export function inform(
  ns: string,
  opts: {
    id?: string;
    events?: string[];
    serial?: string;
    sw?: string;
    supported?: string;
    paramKey?: string;
  } = {},
): string {
  const events = (opts.events ?? ['1 BOOT'])
    .map(
      (e) => `
        <EventStruct>
          <EventCode>${e}</EventCode>
          <CommandKey></CommandKey>
        </EventStruct>`,
    )
    .join('');
  const supported = opts.supported
    ? `<cwmp:SupportedCWMPVersions SOAP-ENV:mustUnderstand="0">${opts.supported}</cwmp:SupportedCWMPVersions>`
    : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:cwmp="${ns}">
  <SOAP-ENV:Header>
    <cwmp:ID SOAP-ENV:mustUnderstand="1">${opts.id ?? 'inform-42'}</cwmp:ID>
    ${supported}
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <cwmp:Inform>
      <DeviceId>
        <Manufacturer>Fixture &amp; Co</Manufacturer>
        <OUI>${DEVICE.oui}</OUI>
        <ProductClass>${DEVICE.productClass}</ProductClass>
        <SerialNumber>${opts.serial ?? DEVICE.serial}</SerialNumber>
      </DeviceId>
      <Event SOAP-ENC:arrayType="cwmp:EventStruct[${(opts.events ?? ['1 BOOT']).length}]">${events}
      </Event>
      <MaxEnvelopes>1</MaxEnvelopes>
      <CurrentTime>2026-11-25T10:00:00Z</CurrentTime>
      <RetryCount>0</RetryCount>
      <ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[5]">
        <ParameterValueStruct>
          <Name>Device.DeviceInfo.HardwareVersion</Name>
          <Value xsi:type="xsd:string">HW1</Value>
        </ParameterValueStruct>
        <ParameterValueStruct>
          <Name>Device.DeviceInfo.SoftwareVersion</Name>
          <Value xsi:type="xsd:string">${opts.sw ?? '1.0.0'}</Value>
        </ParameterValueStruct>
        <ParameterValueStruct>
          <Name>Device.ManagementServer.ConnectionRequestURL</Name>
          <Value xsi:type="xsd:string">http://127.0.0.1:1/cr</Value>
        </ParameterValueStruct>
        <ParameterValueStruct>
          <Name>Device.ManagementServer.ParameterKey</Name>
          <Value xsi:type="xsd:string">${opts.paramKey ?? ''}</Value>
        </ParameterValueStruct>
        <ParameterValueStruct>
          <Name>Device.ManagementServer.PeriodicInformInterval</Name>
          <Value xsi:type="xsd:unsignedInt">300</Value>
        </ParameterValueStruct>
      </ParameterList>
    </cwmp:Inform>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>`;
}

/** Same message with other prefixes: `soapenv` for SOAP and `c` for cwmp. */
export function getParameterValuesResponse(ns: string, id: string): string {
  return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="${ns}"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
 <soapenv:Header><c:ID soapenv:mustUnderstand="1">${id}</c:ID></soapenv:Header>
 <soapenv:Body>
  <c:GetParameterValuesResponse>
   <ParameterList>
    <ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name><Value xsi:type="xsd:unsignedInt">1234</Value></ParameterValueStruct>
    <ParameterValueStruct><Name>Device.WiFi.SSID.1.SSID</Name><Value xsi:type="xsd:string">caf&#233; &lt;guest&gt;</Value></ParameterValueStruct>
   </ParameterList>
  </c:GetParameterValuesResponse>
 </soapenv:Body>
</soapenv:Envelope>`;
}

export function setParameterValuesFault(ns: string, id: string): string {
  return `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="${ns}">
<s:Header><cwmp:ID s:mustUnderstand="1">${id}</cwmp:ID></s:Header>
<s:Body><s:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>
<detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>
<SetParameterValuesFault><ParameterName>Device.WiFi.Radio.1.Channel</ParameterName><FaultCode>9007</FaultCode><FaultString>Invalid parameter value</FaultString></SetParameterValuesFault>
<SetParameterValuesFault><ParameterName>Device.WiFi.SSID.1.SSID</ParameterName><FaultCode>9008</FaultCode><FaultString>Attempt to set a non-writable parameter</FaultString></SetParameterValuesFault>
</cwmp:Fault></detail></s:Fault></s:Body></s:Envelope>`;
}

export function transferComplete(ns: string, commandKey: string, faultCode: number): string {
  return `<?xml version="1.0"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="${ns}">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">tc-1</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:TransferComplete>
<CommandKey>${commandKey}</CommandKey>
<FaultStruct><FaultCode>${faultCode}</FaultCode><FaultString>${faultCode ? 'Download failure' : ''}</FaultString></FaultStruct>
<StartTime>2026-11-25T10:00:01Z</StartTime><CompleteTime>2026-11-25T10:00:09Z</CompleteTime>
</cwmp:TransferComplete></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}

export function getRpcMethods(ns: string): string {
  return `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="${ns}">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">grm-7</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:GetRPCMethods/></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}

export function unknownRpc(ns: string): string {
  return `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="${ns}">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">x-1</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body><cwmp:X_VENDOR_Frobnicate><Level>11</Level></cwmp:X_VENDOR_Frobnicate></SOAP-ENV:Body></SOAP-ENV:Envelope>`;
}

export const MALFORMED = {
  unclosed: `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><cwmp:Inform></SOAP-ENV:Body>`,
  notXml: `hello, ACS`,
  dtd: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><SOAP-ENV:Body><cwmp:Inform>&lol2;</cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
  wrongEnvelopeNs: `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><e:Body><cwmp:Inform/></e:Body></e:Envelope>`,
  noCwmpNs: `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:x="urn:example"><SOAP-ENV:Body><x:Inform/></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
  informWithoutOui: `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-1"><SOAP-ENV:Body><cwmp:Inform><DeviceId><SerialNumber>1</SerialNumber></DeviceId></cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
  badInteger: inform('urn:dslforum-org:cwmp-1-0').replace(
    '<RetryCount>0</RetryCount>',
    '<RetryCount>zero</RetryCount>',
  ),
};
