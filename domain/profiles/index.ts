export * from './fleet.js';
export * from './ownership.js';
export * from './paths.js';
export * from './precedence.js';
export * from './profile.js';
