// The `opa` CLI is resolved (and built when missing) by the platform's tool resolver.
export { opaBin } from '../platform/tools.js';
