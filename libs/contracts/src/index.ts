export * from './proto.js';
export * from './worker-client.js';
export type * from './worker.js';
export * from './audit-proto.js';
// A namespace: audit and worker both have CompleteRequest/CompleteResponse (import type { audit } ...).
export type * as audit from './audit.js';
export * from './internal-tls.js';
export * from './internal-pki.js';
export * from './model-signing.js';
