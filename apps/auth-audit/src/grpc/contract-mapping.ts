import type { audit } from '@airlock/contracts';
import type { DenialCode, Principal, PrincipalKindName, RoleName } from '../auth/principal.js';
import type { AuditRecordRow } from '../audit/audit-record.js';
import type { VerifyFailureKind } from '../audit/chain-verifier.js';
import type { ApiKeyRecord } from '../keys/api-key.repository.js';
import type { ContentCaptureMode, Tenant } from '../tenants/tenant.repository.js';

// Stored values are short lower-case words (they are what the hash covers); the contract speaks enums.

const upper = (prefix: string, value: string) => `${prefix}_${value.toUpperCase()}`;
const lower = (prefix: string, value: string) => value.slice(prefix.length + 1).toLowerCase();

export const roleToContract = (role: string): audit.Role =>
  role ? (upper('ROLE', role) as audit.Role) : 'ROLE_UNSPECIFIED';

export function roleFromContract(role: audit.Role | undefined): RoleName | undefined {
  return role && role !== 'ROLE_UNSPECIFIED' ? (lower('ROLE', role) as RoleName) : undefined;
}

export const principalKindToContract = (kind: string): audit.PrincipalKind =>
  kind ? (upper('PRINCIPAL_KIND', kind) as audit.PrincipalKind) : 'PRINCIPAL_KIND_UNSPECIFIED';

export const outcomeToContract = (outcome: string): audit.Outcome =>
  outcome ? (upper('OUTCOME', outcome) as audit.Outcome) : 'OUTCOME_UNSPECIFIED';

export function outcomeFromContract(outcome: audit.Outcome | undefined): string | undefined {
  return outcome && outcome !== 'OUTCOME_UNSPECIFIED' ? lower('OUTCOME', outcome) : undefined;
}

export const recordKindToContract = (kind: string): audit.RecordKind =>
  kind ? (upper('RECORD_KIND', kind) as audit.RecordKind) : 'RECORD_KIND_UNSPECIFIED';

export function recordKindFromContract(kind: audit.RecordKind | undefined): string | undefined {
  return kind && kind !== 'RECORD_KIND_UNSPECIFIED' ? lower('RECORD_KIND', kind) : undefined;
}

export const captureToContract = (mode: string): audit.ContentCapture =>
  mode ? (upper('CONTENT_CAPTURE', mode) as audit.ContentCapture) : 'CONTENT_CAPTURE_UNSPECIFIED';

export function captureFromContract(mode: audit.ContentCapture | undefined): ContentCaptureMode {
  return mode && mode !== 'CONTENT_CAPTURE_UNSPECIFIED'
    ? (lower('CONTENT_CAPTURE', mode) as ContentCaptureMode)
    : 'digest';
}

export const denialToContract = (code: DenialCode): audit.DenialReason =>
  upper('DENIAL_REASON', code) as audit.DenialReason;

export const verifyFailureToContract = (failure: VerifyFailureKind | undefined): audit.VerifyFailure =>
  failure ? (upper('VERIFY_FAILURE', failure) as audit.VerifyFailure) : 'VERIFY_FAILURE_UNSPECIFIED';

const iso = (date: Date | null | undefined) => (date ? date.toISOString() : '');

export function principalToContract(principal: Principal): audit.Principal {
  return {
    id: principal.id,
    kind: principalKindToContract(principal.kind satisfies PrincipalKindName),
    name: principal.name,
    tenant: principal.tenant,
    role: roleToContract(principal.role),
    global: principal.global,
  };
}

export function auditRecordToContract(row: AuditRecordRow): audit.AuditRecord {
  return {
    sequence: row.sequence,
    time: row.time.toISOString(),
    kind: recordKindToContract(row.kind),
    requestId: row.request_id,
    principalId: row.principal_id,
    principalKind: principalKindToContract(row.principal_kind),
    tenant: row.tenant,
    role: roleToContract(row.role),
    action: row.action,
    model: row.model,
    worker: row.worker,
    clientAddress: row.client_address,
    userAgent: row.user_agent,
    outcome: outcomeToContract(row.outcome),
    statusCode: row.status_code,
    errorClass: row.error_class,
    promptTokens: row.prompt_tokens,
    completionTokens: row.completion_tokens,
    cachedTokens: row.cached_tokens,
    latencyMs: row.latency_us / 1000,
    timeToFirstTokenMs: row.ttft_us / 1000,
    contentCapture: captureToContract(row.content_capture),
    requestDigest: row.request_digest,
    responseDigest: row.response_digest,
    contentKeyId: row.content_key_id,
    requestCiphertext: row.request_ciphertext,
    responseCiphertext: row.response_ciphertext,
    target: row.target,
    detailsJson: row.details_json,
    prevHash: row.prev_hash,
    hash: row.hash,
    clientRequestId: row.client_request_id ?? '',
    fieldFlags: row.field_flags ?? '',
    modelSha256: row.model_sha256 ?? '',
    modelSigner: row.model_signer ?? '',
  };
}

export function apiKeyToContract(key: ApiKeyRecord): audit.ApiKey {
  return {
    id: key.id,
    tenant: key.tenant,
    name: key.name,
    role: roleToContract(key.role),
    allowedModels: key.allowedModels,
    requestsPerMinute: key.limits.requestsPerMinute,
    tokensPerMinute: key.limits.tokensPerMinute,
    tokensPerDay: key.limits.tokensPerDay,
    tokensPerMonth: key.limits.tokensPerMonth,
    global: key.global,
    expiresAt: iso(key.expiresAt),
    createdBy: key.createdBy,
    createdAt: iso(key.createdAt),
    revokedAt: iso(key.revokedAt),
  };
}

export function tenantToContract(tenant: Tenant): audit.Tenant {
  return {
    id: tenant.id,
    name: tenant.name,
    allowedModels: tenant.allowedModels,
    requestsPerMinute: tenant.limits.requestsPerMinute,
    tokensPerMinute: tenant.limits.tokensPerMinute,
    tokensPerDay: tenant.limits.tokensPerDay,
    tokensPerMonth: tenant.limits.tokensPerMonth,
    contentCapture: captureToContract(tenant.contentCapture),
    disabled: tenant.disabled,
    createdAt: iso(tenant.createdAt),
    updatedAt: iso(tenant.updatedAt),
  };
}
