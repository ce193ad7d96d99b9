import type { RoleName } from './principal.js';

/** Everything a caller can ask auth-audit to do or to allow. */
export type Operation =
  | 'inference'
  | 'models.list'
  | 'models.manage'
  | 'admin.action'
  | 'tenants.read'
  | 'tenants.write'
  | 'keys.create'
  | 'keys.list'
  | 'keys.revoke'
  | 'audit.query'
  | 'audit.export'
  | 'audit.verify'
  | 'audit.checkpoints'
  | 'audit.prove'
  | 'audit.consistency';

/** The role × operation matrix, as data: every check in the service reads it, and one test walks it. */
export const PERMISSIONS: Readonly<Record<Operation, readonly RoleName[]>> = {
  inference: ['admin', 'user'],
  'models.list': ['admin', 'user'],
  'models.manage': ['admin'],
  'admin.action': ['admin'],
  'tenants.read': ['admin'],
  'tenants.write': ['admin'],
  'keys.create': ['admin'],
  'keys.list': ['admin'],
  'keys.revoke': ['admin'],
  'audit.query': ['admin', 'auditor'],
  'audit.export': ['admin', 'auditor'],
  'audit.verify': ['admin', 'auditor'],
  'audit.checkpoints': ['admin', 'auditor'],
  // Hashes only, no content: anyone holding a receipt may prove their record is in the log.
  'audit.prove': ['admin', 'auditor', 'user'],
  'audit.consistency': ['admin', 'auditor'],
};

export const OPERATIONS = Object.keys(PERMISSIONS) as Operation[];

export function roleMayPerform(role: RoleName, operation: Operation): boolean {
  return PERMISSIONS[operation].includes(role);
}
