export * from './proto.js';
export type * from './worker.js';
