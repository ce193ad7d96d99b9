import type { AuditRecordDraft } from './audit-record.js';

/**
 * Every text field of a record is made storable before it joins a batch: a bad field is never a reason to
 * skip a record (nor to fail the batch it shares a transaction with). Control characters (PostgreSQL text
 * cannot hold NUL) and lone surrogates are written as `\uXXXX` escapes, and over-long values are cut; each
 * change is named in `field_flags` (`<field>:escaped`, `<field>:truncated`) so nobody mistakes a
 * stored value for the original.
 */
const FIELD_LIMITS: Partial<Record<keyof AuditRecordDraft, number>> = {
  kind: 32,
  request_id: 128,
  client_request_id: 128,
  principal_id: 300,
  principal_kind: 32,
  tenant: 128,
  role: 32,
  action: 64,
  model: 256,
  worker: 512,
  client_address: 128,
  user_agent: 512,
  outcome: 32,
  error_class: 128,
  content_capture: 16,
  target: 512,
};

const UNSTORABLE =
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  /[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export interface BoundedText {
  value: string;
  escaped: boolean;
  truncated: boolean;
}

/** Escapes what cannot be stored or shown plainly, then cuts to `maxLength` UTF-16 units. */
export function boundText(value: string, maxLength: number): BoundedText {
  const escapedValue = value.replace(
    UNSTORABLE,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  const escaped = escapedValue !== value;
  if (escapedValue.length <= maxLength) return { value: escapedValue, escaped, truncated: false };
  let end = maxLength;
  // Never split a surrogate pair.
  const last = escapedValue.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { value: escapedValue.slice(0, end), escaped, truncated: true };
}

/** The draft with every bounded field made storable and the changes named in `field_flags`. */
export function boundDraft(draft: AuditRecordDraft): AuditRecordDraft {
  let result: AuditRecordDraft | undefined;
  const flags: string[] = draft.field_flags ? draft.field_flags.split(',') : [];
  for (const [field, limit] of Object.entries(FIELD_LIMITS) as [keyof AuditRecordDraft, number][]) {
    const value = draft[field];
    if (typeof value !== 'string' || value === '') continue;
    const bounded = boundText(value, limit);
    if (!bounded.escaped && !bounded.truncated) continue;
    result ??= { ...draft };
    (result as Record<string, unknown>)[field] = bounded.value;
    if (bounded.escaped) flags.push(`${field}:escaped`);
    if (bounded.truncated) flags.push(`${field}:truncated`);
  }
  if (!result) return draft;
  result.field_flags = [...new Set(flags)].join(',');
  return result;
}
