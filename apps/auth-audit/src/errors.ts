import { status } from '@grpc/grpc-js';

/**
 * Errors the API answers with a gRPC status and a message that is safe to show (no secrets, no content).
 * Anything else becomes INTERNAL with no details.
 */
export class AuthAuditError extends Error {
  constructor(
    readonly code: status,
    message: string,
    /** Machine-readable reason, e.g. a denial code. */
    readonly reason?: string,
  ) {
    super(message);
  }
}

export const invalidArgument = (message: string) => new AuthAuditError(status.INVALID_ARGUMENT, message);
export const unauthenticated = (message: string, reason?: string) =>
  new AuthAuditError(status.UNAUTHENTICATED, message, reason);
export const permissionDenied = (message: string, reason?: string) =>
  new AuthAuditError(status.PERMISSION_DENIED, message, reason);
export const notFound = (message: string) => new AuthAuditError(status.NOT_FOUND, message);
export const failedPrecondition = (message: string, reason?: string) =>
  new AuthAuditError(status.FAILED_PRECONDITION, message, reason);

/** The database is unreachable or went away mid-transaction: nothing was written, try again. */
export class DatabaseUnavailableError extends AuthAuditError {
  constructor() {
    super(status.UNAVAILABLE, 'audit database unavailable; nothing was recorded, retry');
  }
}

// SQLSTATE classes that mean "the database, not the request": connection (08), operator intervention (57),
// insufficient resources (53), system errors (58); plus node-level socket errors.
const UNAVAILABLE_SQLSTATE = /^(08|53|57|58)/;
const UNAVAILABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND']);

export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))) {
    return true;
  }
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(
    error.message,
  );
}

/** Normalises database failures: unreachable → DatabaseUnavailableError; others pass through. */
export function asServiceError(error: unknown): unknown {
  return isDatabaseUnavailable(error) ? new DatabaseUnavailableError() : error;
}
