import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { AuditRecordsTable } from '../database/database-schema.js';

/** One stored audit record, exactly as the hash covers it. */
export type AuditRecordRow = Selectable<AuditRecordsTable>;
/** A record before the chain gives it a sequence number, a time and its hashes. */
export type AuditRecordDraft = Omit<AuditRecordRow, 'sequence' | 'time' | 'prev_hash' | 'hash'>;

export const CANONICAL_VERSION = 'airlock.audit.v1';
/** v1 plus client_request_id and field_flags; used when either is non-empty (docs/audit-log.md). */
export const CANONICAL_VERSION_2 = 'airlock.audit.v2';
/** v2 plus model_sha256 and model_signer; used when either is non-empty. */
export const CANONICAL_VERSION_3 = 'airlock.audit.v3';

/**
 * The fields the hash covers, in this order (docs/audit-log.md). Changing the order, adding a field or
 * changing a field's rendering is a new CANONICAL_VERSION.
 */
export const CANONICAL_FIELDS = [
  'sequence',
  'time',
  'kind',
  'request_id',
  'principal_id',
  'principal_kind',
  'tenant',
  'role',
  'action',
  'model',
  'worker',
  'client_address',
  'user_agent',
  'outcome',
  'status_code',
  'error_class',
  'prompt_tokens',
  'completion_tokens',
  'cached_tokens',
  'latency_us',
  'ttft_us',
  'content_capture',
  'request_digest',
  'response_digest',
  'content_key_id',
  'request_ciphertext',
  'response_ciphertext',
  'target',
  'details_json',
  'prev_hash',
] as const satisfies readonly (keyof AuditRecordRow)[];

/** Appended after CANONICAL_FIELDS in version 2. */
export const CANONICAL_FIELDS_V2 = [
  'client_request_id',
  'field_flags',
] as const satisfies readonly (keyof AuditRecordRow)[];

/** Appended after CANONICAL_FIELDS_V2 in version 3. */
export const CANONICAL_FIELDS_V3 = [
  'model_sha256',
  'model_signer',
] as const satisfies readonly (keyof AuditRecordRow)[];

type CanonicalInput = Pick<AuditRecordRow, (typeof CANONICAL_FIELDS)[number]> &
  Partial<Pick<AuditRecordRow, (typeof CANONICAL_FIELDS_V2)[number] | (typeof CANONICAL_FIELDS_V3)[number]>>;

/**
 * The canonical text: a JSON array (ECMAScript JSON.stringify: no whitespace, UTF-8) of the version tag
 * followed by the fields above; `time` as RFC 3339 UTC with milliseconds, numbers as integers.
 */
export function canonicalRecordText(record: CanonicalInput): string {
  const v1 = CANONICAL_FIELDS.map((field) => (field === 'time' ? record.time.toISOString() : record[field]));
  const v2 = CANONICAL_FIELDS_V2.map((field) => record[field] ?? '');
  // The lowest version that holds every non-empty field: records written before a version hash as before.
  if (record.model_sha256 || record.model_signer)
    return JSON.stringify([
      CANONICAL_VERSION_3,
      ...v1,
      ...v2,
      ...CANONICAL_FIELDS_V3.map((field) => record[field] ?? ''),
    ]);
  if (!record.client_request_id && !record.field_flags) return JSON.stringify([CANONICAL_VERSION, ...v1]);
  return JSON.stringify([CANONICAL_VERSION_2, ...v1, ...v2]);
}

/** Hex SHA-256 of the canonical text. */
export function recordHash(record: CanonicalInput): string {
  return createHash('sha256').update(canonicalRecordText(record), 'utf8').digest('hex');
}

export function emptyDraft(): AuditRecordDraft {
  return {
    kind: '',
    request_id: '',
    principal_id: '',
    principal_kind: '',
    tenant: '',
    role: '',
    action: '',
    model: '',
    worker: '',
    client_address: '',
    user_agent: '',
    outcome: '',
    status_code: 0,
    error_class: '',
    prompt_tokens: 0,
    completion_tokens: 0,
    cached_tokens: 0,
    latency_us: 0,
    ttft_us: 0,
    content_capture: 'none',
    request_digest: '',
    response_digest: '',
    content_key_id: '',
    request_ciphertext: '',
    response_ciphertext: '',
    target: '',
    details_json: '',
    client_request_id: '',
    field_flags: '',
    model_sha256: '',
    model_signer: '',
  };
}
