import type { Authenticator } from '../auth/authenticator.js';
import type { Operation } from '../auth/permissions.js';
import type { Principal } from '../auth/principal.js';
import { actorOf, type AdminJournal, type AdminRequestContext } from '../audit/admin-journal.js';
import { AuthAuditError } from '../errors.js';
import { optionalRequestId } from '../validation.js';

export interface CallerFields {
  credential?: string;
  requestId?: string;
  clientAddress?: string;
  userAgent?: string;
}

/**
 * The door of every admin and audit RPC: authenticate the caller's credential, check the role matrix, and
 * write refused attempts to the audit log (who tried what, never the credential).
 */
export class AdminGate {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly journal: AdminJournal,
  ) {}

  context(fields: CallerFields): AdminRequestContext {
    return {
      requestId: optionalRequestId(fields.requestId),
      // Stored escaped/cut with a flag by the chain, never a reason to refuse (or to skip the record).
      clientAddress: (fields.clientAddress ?? '').slice(0, 4096),
      userAgent: (fields.userAgent ?? '').slice(0, 4096),
    };
  }

  /**
   * Admits a read (keys, tenants, audit queries, verify, checkpoints) and records that it happened, with
   * its parameters, before anything is answered: who looked at what is itself evidence.
   */
  async admitRead(
    fields: CallerFields,
    operation: Operation,
    details?: Record<string, unknown>,
  ): Promise<{ principal: Principal; context: AdminRequestContext }> {
    const admitted = await this.admit(fields, operation);
    await this.recordRead(admitted, operation, details);
    return admitted;
  }

  async recordRead(
    admitted: { principal: Principal; context: AdminRequestContext },
    operation: Operation,
    details?: Record<string, unknown>,
  ): Promise<void> {
    await this.journal.run(actorOf(admitted.principal), admitted.context, () =>
      Promise.resolve({ result: undefined, record: { action: operation, details } }),
    );
  }

  /** `attempted`: what a refused attempt's record names (e.g. the record whose content was asked for). */
  async admit(
    fields: CallerFields,
    operation: Operation,
    attempted: { target?: string } = {},
  ): Promise<{ principal: Principal; context: AdminRequestContext }> {
    const context = this.context(fields);
    let principal: Principal | undefined;
    try {
      principal = await this.authenticator.authenticate(fields.credential);
      this.authenticator.require(principal, operation);
      return { principal, context };
    } catch (error) {
      if (error instanceof AuthAuditError && error.reason) {
        const actor = principal ? actorOf(principal) : { id: '', kind: '', tenant: '', role: '' };
        await this.journal.refused(actor, context, {
          action: operation,
          target: attempted.target,
          statusCode: principal ? 403 : 401,
          errorClass: error.reason,
        });
      }
      throw error;
    }
  }
}
