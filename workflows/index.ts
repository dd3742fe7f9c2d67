// Every workflow the worker bundles. One use case per file.
export { probe } from './probe.js';
export { approvalDemo } from './approvalDemo.js';
export { firmwareRollout } from './firmwareRollout.js';
export { rolloutWave } from './rolloutWave.js';
export { profileReconcile } from './profileReconcile.js';
export { profileResolution } from './profileResolution.js';
export { changeRequest } from './change-request.js';
