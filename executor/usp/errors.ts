import type { TaskFault } from '../executor.js';

/** TR-369 error codes (Message errors 7000-7099, Record errors 7100-7199). */
export const USP_ERR = {
  MESSAGE_FAILED: 7000,
  MESSAGE_NOT_SUPPORTED: 7001,
  REQUEST_DENIED: 7002,
  INTERNAL_ERROR: 7003,
  INVALID_ARGUMENTS: 7004,
  RESOURCES_EXCEEDED: 7005,
  PERMISSION_DENIED: 7006,
  INVALID_CONFIGURATION: 7007,
  INVALID_PATH_SYNTAX: 7008,
  PARAMETER_ACTION_FAILED: 7009,
  UNSUPPORTED_PARAMETER: 7010,
  INVALID_TYPE: 7011,
  INVALID_VALUE: 7012,
  PARAM_READ_ONLY: 7013,
  VALUE_CONFLICT: 7014,
  CRUD_FAILURE: 7015,
  OBJECT_DOES_NOT_EXIST: 7016,
  CREATION_FAILURE: 7017,
  NOT_A_TABLE: 7018,
  OBJECT_NOT_CREATABLE: 7019,
  SET_FAILURE: 7020,
  REQUIRED_PARAM_FAILED: 7021,
  COMMAND_FAILURE: 7022,
  COMMAND_CANCELLED: 7023,
  OBJECT_NOT_DELETABLE: 7024,
  UNIQUE_KEY_CONFLICT: 7025,
  INVALID_PATH: 7026,
  INVALID_COMMAND_ARGS: 7027,
  RECORD_NOT_PARSED: 7100,
  SECURE_SESS_REQUIRED: 7101,
  SECURE_SESS_NOT_SUPPORTED: 7102,
  SEG_NOT_SUPPORTED: 7103,
  RECORD_FIELD_INVALID: 7104,
  SESSION_CONTEXT_TERMINATED: 7105,
  SESSION_CONTEXT_NOT_ALLOWED: 7106,
} as const;

export const USP_ERR_NAMES: Record<number, string> = {
  7000: 'Message failed',
  7001: 'Message not supported',
  7002: 'Request denied',
  7003: 'Internal error',
  7004: 'Invalid arguments',
  7005: 'Resources exceeded',
  7006: 'Permission denied',
  7007: 'Invalid configuration',
  7008: 'Invalid path syntax',
  7009: 'Parameter action failed',
  7010: 'Unsupported parameter',
  7011: 'Invalid type',
  7012: 'Invalid value',
  7013: 'Attempt to update non-writeable parameter',
  7014: 'Value conflict',
  7015: 'Operation error',
  7016: 'Object does not exist',
  7017: 'Object could not be created',
  7018: 'Object is not a table',
  7019: 'Attempt to create non-creatable object',
  7020: 'Object could not be updated',
  7021: 'Required parameter failed',
  7022: 'Command failure',
  7023: 'Command canceled',
  7024: 'Delete failure',
  7025: 'Object exists with duplicate key',
  7026: 'Invalid path',
  7027: 'Invalid command arguments',
  7100: 'Record could not be parsed',
  7101: 'Secure session required',
  7102: 'Secure session not supported',
  7103: 'Segmentation and reassembly not supported',
  7104: 'Invalid Record value',
  7105: 'Session Context terminated',
  7106: 'Session Context not allowed',
};

/**
 * The CWMP fault (TR-069 A.5.1) that reports the same per-item outcome, so gates and reports read USP
 * and CWMP devices alike. Download-side failures map onto 9010 (download failure).
 */
const TO_CWMP: Record<number, number> = {
  7000: 9002,
  7001: 9000,
  7002: 9001,
  7003: 9002,
  7004: 9003,
  7005: 9004,
  7006: 9001,
  7007: 9003,
  7008: 9005,
  7009: 9002,
  7010: 9005,
  7011: 9006,
  7012: 9007,
  7013: 9008,
  7014: 9007,
  7015: 9002,
  7016: 9005,
  7017: 9004,
  7018: 9005,
  7019: 9005,
  7020: 9002,
  7021: 9003,
  7022: 9010,
  7023: 9002,
  7024: 9002,
  7025: 9003,
  7026: 9005,
  7027: 9003,
};

export function cwmpFaultFor(uspCode: number): number {
  if (TO_CWMP[uspCode] !== undefined) return TO_CWMP[uspCode] as number;
  if (uspCode >= 7100 && uspCode < 7200) return 9002;
  return 9002; // 7200-7999 data-model/vendor codes: an internal error on the device's side
}

export function errName(code: number): string {
  return USP_ERR_NAMES[code] ?? (code >= 7800 ? 'Vendor-defined error' : 'Data model error');
}

/** A USP Error message or failure received from an agent. */
export class UspRequestError extends Error {
  override name = 'UspRequestError';
  constructor(
    readonly code: number,
    message: string,
    readonly params: Array<{ path: string; code: number; message: string }> = [],
  ) {
    super(`${code} ${message}`);
  }
}

/** The protocol-neutral per-device fault for a USP error: USP code kept, CWMP equivalent named. */
export function faultFrom(err: UspRequestError, reason: TaskFault['reason'] = 'device_fault'): TaskFault {
  return {
    reason,
    code: err.code,
    message: `USP ${err.code} ${errName(err.code)} (CWMP ${cwmpFaultFor(err.code)}): ${err.message.replace(/^\d+ /, '')}`,
    ...(err.params.length > 0 ? { parameters: err.params } : {}),
  };
}
