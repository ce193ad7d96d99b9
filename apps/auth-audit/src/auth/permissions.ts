import type { RoleName } from './principal.js';

/** Everything a caller can ask auth-audit to do or to allow. */
export type Operation =
  | 'inference'
  | 'models.list'
  | 'console.sign_in'
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
  | 'audit.consistency'
  | 'audit.content_read';

/** The role × operation matrix, as data: every check in the service reads it, and one test walks it. */
export const PERMISSIONS: Readonly<Record<Operation, readonly RoleName[]>> = {
  inference: ['admin', 'user'],
  'models.list': ['admin', 'user'],
  // Every role may open the console; what it shows follows the role, and each call is checked again.
  'console.sign_in': ['admin', 'auditor', 'user', 'tenant_admin'],
  'models.manage': ['admin'],
  'admin.action': ['admin'],
  // tenant_admin: its own tenant only (AdminService narrows every call to principal.tenant).
  'tenants.read': ['admin', 'tenant_admin'],
  'tenants.write': ['admin', 'tenant_admin'],
  'keys.create': ['admin', 'tenant_admin'],
  'keys.list': ['admin', 'tenant_admin'],
  'keys.revoke': ['admin', 'tenant_admin'],
  'audit.query': ['admin', 'auditor', 'tenant_admin'],
  'audit.export': ['admin', 'auditor', 'tenant_admin'],
  'audit.verify': ['admin', 'auditor', 'tenant_admin'],
  'audit.checkpoints': ['admin', 'auditor', 'tenant_admin'],
  // Hashes only, no content: anyone holding a receipt may prove their record is in the log.
  'audit.prove': ['admin', 'auditor', 'user', 'tenant_admin'],
  'audit.consistency': ['admin', 'auditor', 'tenant_admin'],
  // Decrypted request/response bodies: the audit roles only (a tenant auditor: its tenant), never a
  // tenant admin, whose job is keys and quotas. Each read is itself recorded.
  'audit.content_read': ['admin', 'auditor'],
};

export const OPERATIONS = Object.keys(PERMISSIONS) as Operation[];

export function roleMayPerform(role: RoleName, operation: Operation): boolean {
  return PERMISSIONS[operation].includes(role);
}
