/** Airlock's roles, as stored in keys and audit records. */
/** tenant_admin: keys and quotas of its own tenant (never global). */
export type RoleName = 'admin' | 'auditor' | 'user' | 'tenant_admin';
export type PrincipalKindName = 'api_key' | 'oidc_token';

export interface Limits {
  requestsPerMinute: number;
  tokensPerMinute: number;
  tokensPerDay: number;
  tokensPerMonth: number;
}

export const NO_LIMITS: Limits = {
  requestsPerMinute: 0,
  tokensPerMinute: 0,
  tokensPerDay: 0,
  tokensPerMonth: 0,
};

/** An authenticated caller. */
export interface Principal {
  /** "key:<id>" or "oidc:<subject>". */
  id: string;
  kind: PrincipalKindName;
  name: string;
  tenant: string;
  role: RoleName;
  /** Admins always; auditors when their key or token says so. */
  global: boolean;
  /** The key's own allowlist (empty: whatever the tenant allows). */
  allowedModels: string[];
  /** The key's own limits; tokens carry none (their tenant's apply). */
  limits: Limits;
  keyId?: string;
}

/** Why a credential or request was refused: the DenialReason enum in lower case. */
export type DenialCode =
  | 'missing_credential'
  | 'malformed_credential'
  | 'unknown_key'
  | 'key_revoked'
  | 'key_expired'
  | 'token_invalid'
  | 'token_expired'
  | 'unknown_tenant'
  | 'role_forbidden'
  | 'model_forbidden'
  | 'rate_limited_requests'
  | 'rate_limited_tokens'
  | 'budget_exhausted';

export interface Denial {
  code: DenialCode;
  /** Safe to show the client: no secrets, no content. */
  message: string;
  retryAfterSeconds?: number;
}

export const AUTHENTICATION_DENIALS: ReadonlySet<DenialCode> = new Set([
  'missing_credential',
  'malformed_credential',
  'unknown_key',
  'key_revoked',
  'key_expired',
  'token_invalid',
  'token_expired',
]);
