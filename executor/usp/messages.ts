/**
 * TypeScript shapes of the USP Record and Message as protobufjs presents them (field names as in
 * the .proto files; `oneof` members optional, plus the oneof's name holding the member that is set).
 * The .proto files under proto/ are the source of truth; these types mirror them.
 */

export type StringMap = Record<string, string>;

export type MsgType =
  | 'ERROR'
  | 'GET'
  | 'GET_RESP'
  | 'NOTIFY'
  | 'SET'
  | 'SET_RESP'
  | 'OPERATE'
  | 'OPERATE_RESP'
  | 'ADD'
  | 'ADD_RESP'
  | 'DELETE'
  | 'DELETE_RESP'
  | 'GET_SUPPORTED_DM'
  | 'GET_SUPPORTED_DM_RESP'
  | 'GET_INSTANCES'
  | 'GET_INSTANCES_RESP'
  | 'NOTIFY_RESP'
  | 'GET_SUPPORTED_PROTO'
  | 'GET_SUPPORTED_PROTO_RESP'
  | 'REGISTER'
  | 'REGISTER_RESP'
  | 'DEREGISTER'
  | 'DEREGISTER_RESP';

// ---- Record ----------------------------------------------------------------------------------

export interface UspRecord {
  version: string;
  to_id: string;
  from_id: string;
  payload_security?: 'PLAINTEXT' | 'TLS12' | number;
  mac_signature?: Uint8Array;
  sender_cert?: Uint8Array;
  no_session_context?: { payload: Uint8Array };
  session_context?: {
    session_id?: string;
    sequence_id?: string;
    expected_id?: string;
    retransmit_id?: string;
    payload_sar_state?: string | number;
    payloadrec_sar_state?: string | number;
    payload?: Uint8Array[];
  };
  websocket_connect?: Record<string, never>;
  mqtt_connect?: { version?: 'V3_1_1' | 'V5' | number; subscribed_topic?: string };
  stomp_connect?: { version?: string | number; subscribed_destination?: string };
  disconnect?: { reason?: string; reason_code?: number };
  uds_connect?: Record<string, never>;
  /** Which record_type member is set (protobufjs virtual oneof). */
  record_type?:
    | 'no_session_context'
    | 'session_context'
    | 'websocket_connect'
    | 'mqtt_connect'
    | 'stomp_connect'
    | 'disconnect'
    | 'uds_connect';
}

// ---- Requests --------------------------------------------------------------------------------

export interface Get {
  param_paths: string[];
  max_depth?: number;
}
export interface GetSupportedDM {
  obj_paths: string[];
  first_level_only?: boolean;
  return_commands?: boolean;
  return_events?: boolean;
  return_params?: boolean;
  return_unique_key_sets?: boolean;
}
export interface GetInstances {
  obj_paths: string[];
  first_level_only?: boolean;
}
export interface ParamSetting {
  param: string;
  value: string;
  required?: boolean;
}
export interface SetReq {
  allow_partial?: boolean;
  update_objs: Array<{ obj_path: string; param_settings: ParamSetting[] }>;
}
export interface Add {
  allow_partial?: boolean;
  create_objs: Array<{ obj_path: string; param_settings: ParamSetting[] }>;
}
export interface Delete {
  allow_partial?: boolean;
  obj_paths: string[];
}
export interface Operate {
  command: string;
  command_key?: string;
  send_resp?: boolean;
  input_args?: StringMap;
}
export interface CommandFailure {
  err_code: number;
  err_msg: string;
}
export interface Notify {
  subscription_id: string;
  send_resp?: boolean;
  event?: { obj_path: string; event_name: string; params?: StringMap };
  value_change?: { param_path: string; param_value: string };
  obj_creation?: { obj_path: string; unique_keys?: StringMap };
  obj_deletion?: { obj_path: string };
  oper_complete?: {
    obj_path: string;
    command_name: string;
    command_key?: string;
    req_output_args?: { output_args?: StringMap };
    cmd_failure?: CommandFailure;
    operation_resp?: 'req_output_args' | 'cmd_failure';
  };
  on_board_req?: {
    oui: string;
    product_class: string;
    serial_number: string;
    agent_supported_protocol_versions: string;
  };
  notification?:
    | 'event'
    | 'value_change'
    | 'obj_creation'
    | 'obj_deletion'
    | 'oper_complete'
    | 'on_board_req';
}
export interface GetSupportedProtocol {
  controller_supported_protocol_versions: string;
}

export interface Request {
  get?: Get;
  get_supported_dm?: GetSupportedDM;
  get_instances?: GetInstances;
  set?: SetReq;
  add?: Add;
  delete?: Delete;
  operate?: Operate;
  notify?: Notify;
  get_supported_protocol?: GetSupportedProtocol;
  register?: unknown;
  deregister?: unknown;
  req_type?: RequestType;
}
export type RequestType =
  | 'get'
  | 'get_supported_dm'
  | 'get_instances'
  | 'set'
  | 'add'
  | 'delete'
  | 'operate'
  | 'notify'
  | 'get_supported_protocol'
  | 'register'
  | 'deregister';

// ---- Responses -------------------------------------------------------------------------------

export interface GetResp {
  req_path_results: Array<{
    requested_path: string;
    err_code: number;
    err_msg: string;
    resolved_path_results: Array<{ resolved_path: string; result_params: StringMap }>;
  }>;
}
export interface SupportedParam {
  param_name: string;
  access?: string | number;
  value_type?: string | number;
  value_change?: string | number;
}
export interface SupportedObject {
  supported_obj_path: string;
  access?: string | number;
  is_multi_instance?: boolean;
  supported_commands?: Array<{
    command_name: string;
    input_arg_names?: string[];
    output_arg_names?: string[];
    command_type?: string | number;
  }>;
  supported_events?: Array<{ event_name: string; arg_names?: string[] }>;
  supported_params?: SupportedParam[];
  divergent_paths?: string[];
  unique_key_sets?: Array<{ key_names: string[] }>;
}
export interface GetSupportedDMResp {
  req_obj_results: Array<{
    req_obj_path: string;
    err_code: number;
    err_msg: string;
    data_model_inst_uri?: string;
    supported_objs: SupportedObject[];
  }>;
}
export interface GetInstancesResp {
  req_path_results: Array<{
    requested_path: string;
    err_code: number;
    err_msg: string;
    curr_insts: Array<{ instantiated_obj_path: string; unique_keys?: StringMap }>;
  }>;
}
export interface ParameterError {
  param: string;
  err_code: number;
  err_msg: string;
}
export interface OperationFailure {
  err_code: number;
  err_msg: string;
}
export interface SetResp {
  updated_obj_results: Array<{
    requested_path: string;
    oper_status: {
      oper_failure?: OperationFailure & {
        updated_inst_failures?: Array<{ affected_path: string; param_errs: ParameterError[] }>;
      };
      oper_success?: {
        updated_inst_results: Array<{
          affected_path: string;
          param_errs?: ParameterError[];
          updated_params?: StringMap;
        }>;
      };
    };
  }>;
}
export interface AddResp {
  created_obj_results: Array<{
    requested_path: string;
    oper_status: {
      oper_failure?: OperationFailure;
      oper_success?: { instantiated_path: string; param_errs?: ParameterError[]; unique_keys?: StringMap };
    };
  }>;
}
export interface DeleteResp {
  deleted_obj_results: Array<{
    requested_path: string;
    oper_status: {
      oper_failure?: OperationFailure;
      oper_success?: {
        affected_paths: string[];
        unaffected_path_errs?: Array<{ unaffected_path: string; err_code: number; err_msg: string }>;
      };
    };
  }>;
}
export interface OperateResp {
  operation_results: Array<{
    executed_command: string;
    req_obj_path?: string;
    req_output_args?: { output_args?: StringMap };
    cmd_failure?: CommandFailure;
    operation_resp?: 'req_obj_path' | 'req_output_args' | 'cmd_failure';
  }>;
}
export interface NotifyResp {
  subscription_id: string;
}
export interface GetSupportedProtocolResp {
  agent_supported_protocol_versions: string;
}

export interface Response {
  get_resp?: GetResp;
  get_supported_dm_resp?: GetSupportedDMResp;
  get_instances_resp?: GetInstancesResp;
  set_resp?: SetResp;
  add_resp?: AddResp;
  delete_resp?: DeleteResp;
  operate_resp?: OperateResp;
  notify_resp?: NotifyResp;
  get_supported_protocol_resp?: GetSupportedProtocolResp;
  register_resp?: unknown;
  deregister_resp?: unknown;
  resp_type?: string;
}

export interface UspError {
  err_code: number;
  err_msg: string;
  param_errs?: Array<{ param_path: string; err_code: number; err_msg: string }>;
}

export interface UspMsg {
  header: { msg_id: string; msg_type: MsgType | number };
  body: {
    request?: Request;
    response?: Response;
    error?: UspError;
    msg_body?: 'request' | 'response' | 'error';
  };
}
