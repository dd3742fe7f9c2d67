// The fleet's public surface for other areas (executor, rollouts, planner, API).
export { appendEvents, DeviceEvent, DeviceEventKind } from './events.js';
export { DeviceId, DeviceUpsert, upsertDevices } from './devices.js';
export { ParameterValue, ParamType, updateLastValues } from './parameters.js';
export { compareVersions, versionKey } from './version-key.js';
export type { DbOrTx } from './db.js';
