export const AUDIT_PROTO_FILE = 'airlock/audit/v1/audit_service.proto';
export const AUDIT_PACKAGE = 'airlock.audit.v1';
export const AUDIT_SERVICE = 'AuditService';
