import { Catch, type RpcExceptionFilter } from '@nestjs/common';
import { Metadata, status } from '@grpc/grpc-js';
import type { Logger } from '@airlock/telemetry';
import { throwError, type Observable } from 'rxjs';
import { asServiceError, AuthAuditError } from '../errors.js';

export const REASON_METADATA_KEY = 'airlock-reason';

/**
 * The one error mapping of the API: known errors keep their status and safe message (plus a machine-readable
 * reason in trailing metadata); anything else is INTERNAL with no details, logged by class and stack frames
 * only (a driver's message can quote values).
 */
@Catch()
export class GrpcErrorFilter implements RpcExceptionFilter<unknown> {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown): Observable<never> {
    return throwError(() => this.toStatus(exception));
  }

  private toStatus(exception: unknown): Error {
    const error = asServiceError(exception);
    if (error instanceof AuthAuditError) {
      const metadata = new Metadata();
      if (error.reason) metadata.set(REASON_METADATA_KEY, error.reason);
      return Object.assign(new Error(error.message), { code: error.code, details: error.message, metadata });
    }
    const frames = error instanceof Error ? error.stack?.split('\n').slice(1, 6).join('\n') : undefined;
    this.logger.error({ errorClass: (error as Error)?.constructor?.name, frames }, 'unexpected error');
    return Object.assign(new Error('internal error'), { code: status.INTERNAL, details: 'internal error' });
  }
}
