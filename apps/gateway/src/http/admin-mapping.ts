import { z } from 'zod';
import type { audit } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import { paramName } from '../openai/validation.js';

/** Enum prefixes of airlock.audit.v1: the admin API speaks `admin`, `succeeded`, … instead. */
const ENUM_PREFIXES = [
  'ROLE_',
  'OUTCOME_',
  'RECORD_KIND_',
  'PRINCIPAL_KIND_',
  'CONTENT_CAPTURE_',
  'VERIFY_FAILURE_',
  'DENIAL_REASON_',
  'EXPORT_FORMAT_',
];

/** Contract objects (camelCase, prefixed enums) → admin API JSON (snake_case, short lower-case enums). */
export function toAdminJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toAdminJson);
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [
        key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
        toAdminJson(inner),
      ]),
    );
  }
  if (typeof value === 'string') {
    const prefix = ENUM_PREFIXES.find((p) => value.startsWith(p) && /^[A-Z_]+$/.test(value));
    if (prefix) return value.slice(prefix.length).toLowerCase();
  }
  return value;
}

const roleName = z.enum(['admin', 'auditor', 'user', 'tenant_admin']);
const toRole = (r: z.output<typeof roleName>) => `ROLE_${r.toUpperCase()}` as audit.Role;
const outcome = z
  .enum(['allowed', 'denied', 'succeeded', 'failed', 'cancelled'])
  .transform((o) => `OUTCOME_${o.toUpperCase()}` as audit.Outcome);
const kind = z
  .enum(['request', 'completion', 'admin_action', 'usage'])
  .transform((k) => `RECORD_KIND_${k.toUpperCase()}` as audit.RecordKind);
const count = z.coerce.number().int().min(0);

export const createKeyBody = z.strictObject({
  tenant: z.string().min(1).default('default'),
  name: z.string().min(1).max(128),
  role: roleName.default('user').transform(toRole),
  allowed_models: z.array(z.string().min(1)).default([]),
  requests_per_minute: count.default(0),
  tokens_per_minute: count.default(0),
  tokens_per_day: count.default(0),
  tokens_per_month: count.default(0),
  global: z.boolean().default(false),
  expires_at: z.iso.datetime({ offset: true }).optional(),
});

/**
 * A tenant update: only the fields given change (PATCH semantics, for PUT too); a new tenant takes the
 * defaults for the rest. The names given become the update mask auth-audit applies.
 */
export const upsertTenantBody = z.strictObject({
  name: z.string().min(1).max(128).optional(),
  allowed_models: z.array(z.string().min(1)).optional(),
  requests_per_minute: count.optional(),
  tokens_per_minute: count.optional(),
  tokens_per_day: count.optional(),
  tokens_per_month: count.optional(),
  content_capture: z
    .enum(['none', 'digest', 'full'])
    .transform((c) => `CONTENT_CAPTURE_${c.toUpperCase()}` as audit.ContentCapture)
    .optional(),
  disabled: z.boolean().optional(),
});

export const auditFilterQuery = z.object({
  start_time: z.iso.datetime({ offset: true }).optional(),
  end_time: z.iso.datetime({ offset: true }).optional(),
  tenant: z.string().optional(),
  principal_id: z.string().optional(),
  model: z.string().optional(),
  outcome: outcome.optional(),
  kind: kind.optional(),
  request_id: z.string().optional(),
  from_sequence: count.optional(),
  to_sequence: count.optional(),
  page_size: z.coerce.number().int().min(1).max(1000).optional(),
  page_token: z.string().optional(),
  format: z.enum(['jsonl', 'csv']).default('jsonl'),
});

export function toAuditFilter(q: z.output<typeof auditFilterQuery>): audit.AuditFilter {
  return {
    startTime: q.start_time ?? '',
    endTime: q.end_time ?? '',
    tenant: q.tenant ?? '',
    principalId: q.principal_id ?? '',
    model: q.model ?? '',
    outcome: q.outcome ?? 'OUTCOME_UNSPECIFIED',
    kind: q.kind ?? 'RECORD_KIND_UNSPECIFIED',
    requestId: q.request_id ?? '',
    fromSequence: q.from_sequence ?? 0,
    toSequence: q.to_sequence ?? 0,
  };
}

/** Strict parse of an admin body or query; the first problem becomes a 400 naming the field. */
export function parseAdmin<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  const param = paramName(path);
  throw ApiError.badRequest(
    issue.code === 'unrecognized_keys'
      ? `Unknown field '${param}'.`
      : `Invalid value for '${param}': ${issue.message}.`,
    param,
  );
}
