import type { AuthAuditDb } from '../database/database.js';
import { apiKeyRepository } from '../keys/api-key.repository.js';
import { tenantRepository } from '../tenants/tenant.repository.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import type { PresentedCredential } from '../authorization/batch-decisions.js';
import { AuthAuditError, permissionDenied, unauthenticated } from '../errors.js';
import { classifyCredential, credentialKinds, MALFORMED_DENIAL } from './credentials.js';
import type { OidcVerifier } from './oidc-verifier.js';
import { roleMayPerform, type Operation } from './permissions.js';
import { AUTHENTICATION_DENIALS, type Denial, type Principal } from './principal.js';

/** Turns the credential every RPC carries into a principal, and checks the role matrix. */
export class Authenticator {
  constructor(
    private readonly db: AuthAuditDb,
    private readonly oidc: OidcVerifier | undefined,
    private readonly metrics: AuthAuditMetrics,
  ) {}

  /** What can be decided without the database: the credential's shape, and a token's signature and claims. */
  async present(credential: string | undefined): Promise<PresentedCredential> {
    const shape = classifyCredential(credential);
    if (shape.type === 'missing' || shape.type === 'malformed') {
      return { type: 'denied', denial: MALFORMED_DENIAL[shape.type] };
    }
    if (shape.type === 'api_key') return { type: 'api_key', key: shape.key };
    if (!this.oidc) {
      return {
        type: 'denied',
        denial: {
          code: 'token_invalid',
          message: 'bearer tokens are not enabled (no OIDC issuer configured)',
        },
      };
    }
    const verdict = await this.oidc.verify(shape.token);
    return verdict.ok
      ? { type: 'token', identity: verdict.identity }
      : { type: 'denied', denial: verdict.denial };
  }

  /** For admin and audit RPCs: the principal, or UNAUTHENTICATED / PERMISSION_DENIED. */
  async authenticate(credential: string | undefined): Promise<Principal> {
    const presented = await this.present(credential);
    // The same decision as the batched Authorize path, on the same records.
    const keyIds = presented.type === 'api_key' ? [presented.key.id] : [];
    const { keys, tenants } = await apiKeyRepository.findWithTenants(this.db, keyIds);
    if (presented.type === 'token' && presented.identity.tenant && !tenants.has(presented.identity.tenant)) {
      for (const [id, tenant] of await tenantRepository.findByIds(this.db, [presented.identity.tenant]))
        tenants.set(id, tenant);
    }
    const verdict = credentialKinds.principal(presented, { keys, tenants }, new Date());
    if (!verdict.ok) throw this.refusal(verdict.denial);
    return verdict.principal;
  }

  /** Throws PERMISSION_DENIED unless the role may perform the operation. */
  require(principal: Principal, operation: Operation): void {
    if (!roleMayPerform(principal.role, operation)) {
      throw this.refusal({
        code: 'role_forbidden',
        message: `role "${principal.role}" may not perform ${operation}`,
      });
    }
  }

  /** Counts a refusal for /metrics and turns it into the gRPC error. */
  refusal(denial: Denial): AuthAuditError {
    this.metrics.authFailures.inc({ reason: denial.code });
    return AUTHENTICATION_DENIALS.has(denial.code)
      ? unauthenticated(denial.message, denial.code)
      : permissionDenied(denial.message, denial.code);
  }
}
