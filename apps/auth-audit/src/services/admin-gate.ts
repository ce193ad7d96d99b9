import type { Authenticator } from '../auth/authenticator.js';
import type { Operation } from '../auth/permissions.js';
import type { Principal } from '../auth/principal.js';
import { actorOf, type AdminJournal, type AdminRequestContext } from '../audit/admin-journal.js';
import { AuthAuditError } from '../errors.js';
import { optionalRequestId, text } from '../validation.js';

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
      clientAddress: text(fields.clientAddress, 'client_address', 128),
      userAgent: text(fields.userAgent, 'user_agent', 512),
    };
  }

  async admit(
    fields: CallerFields,
    operation: Operation,
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
          statusCode: principal ? 403 : 401,
          errorClass: error.reason,
        });
      }
      throw error;
    }
  }
}
