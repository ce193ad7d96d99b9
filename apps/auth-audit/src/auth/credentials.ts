import { parseApiKey, apiKeyHashMatches, type ParsedApiKey } from '../keys/api-key-format.js';
import type { ApiKeyRecord } from '../keys/api-key.repository.js';
import type { Tenant } from '../tenants/tenant.repository.js';
import type { TokenIdentity } from './oidc-verifier.js';
import type { Denial, Principal } from './principal.js';
import { NO_LIMITS } from './principal.js';
import { callerAllowedByRules, type CallerRule } from '@airlock/contracts';

export const MAX_CREDENTIAL_LENGTH = 8192;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export type CredentialShape =
  | { type: 'missing' }
  | { type: 'malformed' }
  | { type: 'api_key'; key: ParsedApiKey }
  | { type: 'jwt'; token: string };

/** Tells an Airlock API key from a JWT by shape alone; nothing is looked up yet. */
export function classifyCredential(raw: string | undefined): CredentialShape {
  const text = (raw ?? '').trim().replace(/^bearer(\s+|$)/i, '');
  if (text === '') return { type: 'missing' };
  if (text.length > MAX_CREDENTIAL_LENGTH) return { type: 'malformed' };
  if (text.startsWith('alk_')) {
    const key = parseApiKey(text);
    return key ? { type: 'api_key', key } : { type: 'malformed' };
  }
  return JWT_SHAPE.test(text) ? { type: 'jwt', token: text } : { type: 'malformed' };
}

export const MALFORMED_DENIAL: Record<'missing' | 'malformed', Denial> = {
  missing: {
    code: 'missing_credential',
    message: 'no credential: send "Authorization: Bearer <key or token>"',
  },
  malformed: { code: 'malformed_credential', message: 'credential is neither an Airlock API key nor a JWT' },
};

export type PrincipalVerdict =
  { ok: true; principal: Principal; tenant?: Tenant } | { ok: false; denial: Denial };

/** Decides an API key from its stored row; a revoked or expired key fails on the very next request. */
export function principalFromKey(
  presented: ParsedApiKey,
  stored: ApiKeyRecord | undefined,
  tenant: Tenant | undefined,
  now: Date,
): PrincipalVerdict {
  // One message for "no such id" and "wrong secret": the answer must not reveal which key ids exist.
  if (!stored || !apiKeyHashMatches(stored.secretHash, presented.hash)) {
    return { ok: false, denial: { code: 'unknown_key', message: 'unknown API key' } };
  }
  if (stored.revokedAt && stored.revokedAt <= now) {
    return { ok: false, denial: { code: 'key_revoked', message: 'API key revoked' } };
  }
  if (stored.expiresAt && stored.expiresAt <= now) {
    return { ok: false, denial: { code: 'key_expired', message: 'API key expired' } };
  }
  if (!tenant || tenant.disabled) {
    return {
      ok: false,
      denial: { code: 'unknown_tenant', message: `tenant "${stored.tenant}" unknown or disabled` },
    };
  }
  return {
    ok: true,
    tenant,
    principal: {
      id: `key:${stored.id}`,
      kind: 'api_key',
      name: stored.name,
      tenant: stored.tenant,
      role: stored.role,
      global: stored.role === 'admin' || stored.global,
      allowedModels: stored.allowedModels,
      limits: stored.limits,
      keyId: stored.id,
    },
  };
}

/** Decides a verified token: its tenant claim must name an enabled tenant (global roles may have none). */
export function principalFromToken(identity: TokenIdentity, tenant: Tenant | undefined): PrincipalVerdict {
  if (identity.tenant !== '' && (!tenant || tenant.disabled)) {
    return {
      ok: false,
      denial: { code: 'unknown_tenant', message: `tenant "${identity.tenant}" unknown or disabled` },
    };
  }
  return {
    ok: true,
    tenant,
    principal: {
      id: `oidc:${identity.subject}`,
      kind: 'oidc_token',
      name: identity.name,
      tenant: identity.tenant,
      role: identity.role,
      global: identity.global,
      allowedModels: [],
      limits: NO_LIMITS,
    },
  };
}

/** The credential as far as it could be decided without the database: shape checked, tokens verified. */
export type PresentedCredential =
  | { type: 'denied'; denial: Denial }
  | { type: 'api_key'; key: ParsedApiKey }
  | { type: 'token'; identity: TokenIdentity };

/** What the database holds for the presented credentials (keys by id, tenants by id). */
export interface CredentialRecords {
  keys: ReadonlyMap<string, ApiKeyRecord>;
  tenants: ReadonlyMap<string, Tenant>;
}

/**
 * The one seam for credentials, one method per kind: an end user's API key or OIDC token (both the batched
 * Authorize path and the admin/audit path decide through `principal`), and the calling service's client
 * certificate (the gRPC server asks `clientCertificate` before any handler runs).
 */
export const credentialKinds = {
  apiKey: principalFromKey,
  oidcToken: principalFromToken,
  /** A caller service, by the identities of its CA-verified certificate, for one method path. */
  clientCertificate(
    identities: readonly string[],
    methodPath: string,
    rules: readonly CallerRule[],
  ): boolean {
    return callerAllowedByRules(rules)(identities, methodPath);
  },
  /** An end user's credential, decided against what the database holds for it. */
  principal(presented: PresentedCredential, records: CredentialRecords, now: Date): PrincipalVerdict {
    if (presented.type === 'denied') return { ok: false, denial: presented.denial };
    if (presented.type === 'api_key') {
      const key = records.keys.get(presented.key.id);
      return credentialKinds.apiKey(
        presented.key,
        key,
        key ? records.tenants.get(key.tenant) : undefined,
        now,
      );
    }
    return credentialKinds.oidcToken(presented.identity, records.tenants.get(presented.identity.tenant));
  },
};
