import type { DeviceEvent } from '../../fleet/events.js';
import { cwmpFaultFor } from './errors.js';
import type { Notify } from './messages.js';

/**
 * The device events a USP Notify becomes: the same kinds and payload fields the CWMP ACS writes for
 * Inform event codes, so gates, verifiers and outcome classification read both protocols alike.
 */
export function eventsForNotify(
  deviceId: string,
  endpointId: string,
  msgId: string,
  n: Notify,
  at = new Date(),
): DeviceEvent[] {
  const base = { protocol: 'usp', endpointId, msgId, subscriptionId: n.subscription_id };
  if (n.on_board_req) {
    const o = n.on_board_req;
    return [
      {
        deviceId,
        at,
        kind: 'bootstrap',
        payload: {
          ...base,
          oui: o.oui,
          productClass: o.product_class,
          serialNumber: o.serial_number,
          agentSupportedProtocolVersions: o.agent_supported_protocol_versions,
        },
      },
    ];
  }
  if (n.event) {
    const e = n.event;
    const p = e.params ?? {};
    if (e.event_name === 'Boot!' && e.obj_path === 'Device.') {
      let softwareVersion: string | undefined;
      try {
        const map = JSON.parse(p.ParameterMap || '{}') as Record<string, string>;
        softwareVersion = map['Device.DeviceInfo.SoftwareVersion'];
      } catch {
        // ParameterMap is device-reported text; a broken one is kept verbatim below.
      }
      return [
        {
          deviceId,
          at,
          kind: 'boot',
          payload: {
            ...base,
            eventCodes: ['1 BOOT', ...(p.CommandKey ? ['M Reboot'] : [])],
            cause: p.Cause ?? '',
            commandKey: p.CommandKey ?? '',
            firmwareUpdated: p.FirmwareUpdated === 'true' || p.FirmwareUpdated === '1',
            parameterMap: p.ParameterMap ?? '',
            ...(softwareVersion !== undefined ? { softwareVersion } : {}),
          },
        },
      ];
    }
    if (e.event_name === 'TransferComplete!') {
      const raw = Number(p.FaultCode ?? '0');
      const code = Number.isFinite(raw) ? raw : 9002;
      return [
        {
          deviceId,
          at,
          kind: 'transfer_complete',
          payload: {
            ...base,
            // Same code a CWMP TransferComplete carries; a 7xxx code from an agent is mapped, and kept.
            faultCode: code >= 7000 && code < 8000 ? cwmpFaultFor(code) : code,
            ...(code >= 7000 && code < 8000 ? { uspFaultCode: code } : {}),
            faultString: p.FaultString ?? '',
            commandKey: p.CommandKey ?? '',
            command: p.Command ?? '',
            affected: p.Affected ?? '',
            startTime: p.StartTime ?? '',
            completeTime: p.CompleteTime ?? '',
          },
        },
      ];
    }
    const name = `${e.obj_path}${e.event_name}`;
    return [
      {
        deviceId,
        at,
        kind: 'inform',
        // Periodic! is the USP form of CWMP's periodic Inform: the same code for liveness readers.
        payload: {
          ...base,
          eventCodes: name === 'Device.LocalAgent.Periodic!' ? ['2 PERIODIC', name] : [name],
          params: p,
        },
      },
    ];
  }
  if (n.value_change) {
    return [
      {
        deviceId,
        at,
        kind: 'value_change',
        payload: {
          ...base,
          eventCodes: ['4 VALUE CHANGE'],
          parameters: { [n.value_change.param_path]: n.value_change.param_value },
        },
      },
    ];
  }
  if (n.oper_complete) {
    const c = n.oper_complete;
    return [
      {
        deviceId,
        at,
        kind: 'operation_complete',
        payload: {
          ...base,
          operation: `${c.obj_path}${c.command_name}`,
          result: c.cmd_failure ? 'failure' : 'success',
          commandKey: c.command_key ?? '',
          ...(c.cmd_failure ? { errCode: c.cmd_failure.err_code, errMsg: c.cmd_failure.err_msg } : {}),
          ...(c.req_output_args ? { outputArgs: c.req_output_args.output_args ?? {} } : {}),
        },
      },
    ];
  }
  if (n.obj_creation) {
    return [
      {
        deviceId,
        at,
        kind: 'inform',
        payload: {
          ...base,
          eventCodes: ['ObjectCreation'],
          objPath: n.obj_creation.obj_path,
          uniqueKeys: n.obj_creation.unique_keys ?? {},
        },
      },
    ];
  }
  if (n.obj_deletion) {
    return [
      {
        deviceId,
        at,
        kind: 'inform',
        payload: { ...base, eventCodes: ['ObjectDeletion'], objPath: n.obj_deletion.obj_path },
      },
    ];
  }
  return [];
}
