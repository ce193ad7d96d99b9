import { randomUUID } from 'node:crypto';
import { invalidArgument } from './errors.js';

// Field rules for everything the API takes in. A bad value is refused with INVALID_ARGUMENT naming the
// field; values are never echoed back (they may be secrets or content).

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const MAX_BODY_BYTES = 16 * 1024 * 1024;
export const MAX_DETAILS_BYTES = 16 * 1024;

export function requireRequestId(value: string | undefined, field = 'request_id'): string {
  if (!value || !REQUEST_ID_PATTERN.test(value)) {
    throw invalidArgument(`${field} must be 1..128 characters of [A-Za-z0-9._:-]`);
  }
  return value;
}

/** Admin RPCs may leave the request id out; one is made up so the audit record still has one. */
export function optionalRequestId(value: string | undefined): string {
  return value ? requireRequestId(value) : randomUUID();
}

/** Free text bound for a column: a length cap and no control characters. */
export function text(value: string | undefined, field: string, maxLength: number, required = false): string {
  const result = value ?? '';
  if (required && result.length === 0) throw invalidArgument(`${field} is required`);
  if (result.length > maxLength) throw invalidArgument(`${field} is longer than ${maxLength} characters`);
  if (CONTROL_CHARACTERS.test(result)) throw invalidArgument(`${field} contains control characters`);
  return result;
}

const MODEL_DIGESTS = /^[0-9a-f]{64}(,[0-9a-f]{64}){0,15}$/;

/** The answering model's file digests: lower-case hex SHA-256s, comma-separated (at most 16), or none. */
export function modelDigests(value: string | undefined, field: string): string {
  const result = value ?? '';
  if (result && !MODEL_DIGESTS.test(result))
    throw invalidArgument(`${field} must be lower-case hex SHA-256 digests, comma-separated (at most 16)`);
  return result;
}

export function tenantId(value: string | undefined, field = 'tenant'): string {
  if (!value || !TENANT_ID_PATTERN.test(value)) {
    throw invalidArgument(`${field} must be 1..64 characters of [a-z0-9_-], starting with a letter or digit`);
  }
  return value;
}

export function modelList(values: string[] | undefined, field: string): string[] {
  const list = values ?? [];
  if (list.length > 1000) throw invalidArgument(`${field} has more than 1000 entries`);
  return [...new Set(list.map((model, index) => text(model, `${field}[${index}]`, 256, true)))];
}

export function body(value: Uint8Array | undefined, field: string): Uint8Array | undefined {
  if (value && value.length > MAX_BODY_BYTES)
    throw invalidArgument(`${field} is larger than ${MAX_BODY_BYTES} bytes`);
  return value;
}

export function count(value: number | undefined, field: string, max = Number.MAX_SAFE_INTEGER): number {
  const result = value ?? 0;
  if (!Number.isInteger(result) || result < 0 || result > max) {
    throw invalidArgument(`${field} must be a whole number between 0 and ${max}`);
  }
  return result;
}

/** Milliseconds (double) → whole microseconds, as stored and hashed. */
export function durationMicros(value: number | undefined, field: string): number {
  const result = value ?? 0;
  if (!Number.isFinite(result) || result < 0 || result > 86_400_000 * 30) {
    throw invalidArgument(`${field} must be a non-negative number of milliseconds`);
  }
  return Math.round(result * 1000);
}

export function timestamp(value: string | undefined, field: string): Date | undefined {
  if (!value) return undefined;
  const parsed = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(value)
    ? new Date(value)
    : undefined;
  if (!parsed || Number.isNaN(parsed.getTime()))
    throw invalidArgument(`${field} must be an RFC 3339 timestamp`);
  return parsed;
}

export function jsonObjectText(value: string | undefined, field: string): string {
  if (!value) return '';
  if (Buffer.byteLength(value, 'utf8') > MAX_DETAILS_BYTES) {
    throw invalidArgument(`${field} is larger than ${MAX_DETAILS_BYTES} bytes`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw invalidArgument(`${field} is not valid JSON`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidArgument(`${field} must be a JSON object`);
  }
  // Stored re-serialised, so the hashed text has one form.
  return JSON.stringify(parsed);
}
