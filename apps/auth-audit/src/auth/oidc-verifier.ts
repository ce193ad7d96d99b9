import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OidcRoleName, OidcSettings } from '../config/auth-audit-settings.js';
import type { Denial, RoleName } from './principal.js';
import { reloadingJwksFile } from './jwks-file.js';

/** What a verified token says about its bearer, before the tenant is checked against the database. */
export interface TokenIdentity {
  subject: string;
  name: string;
  role: RoleName;
  global: boolean;
  /** Empty for admins and global auditors without a tenant claim. */
  tenant: string;
}

export type TokenVerdict = { ok: true; identity: TokenIdentity } | { ok: false; denial: Denial };

// When a token maps to several roles, the broadest wins.
const ROLE_PRECEDENCE: readonly OidcRoleName[] = ['admin', 'global-auditor', 'auditor', 'user'];
const MAX_SUBJECT_LENGTH = 256;
/** C0 and C1 controls (and DEL): a claim is written to audit records and may reach a terminal or a log. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Verifies OIDC/JWT bearer tokens from the organisation's identity provider against its JWKS (a file, or a
 * URL inside the network). Only asymmetric algorithms are accepted, so `alg: none` and HMAC tokens (including
 * ones "signed" with the provider's public key) fail before any signature check.
 */
export class OidcVerifier {
  private constructor(
    private readonly settings: OidcSettings,
    private readonly keySet: JWTVerifyGetKey,
  ) {}

  static create(settings: OidcSettings): Promise<OidcVerifier> {
    // A promise either way (a bad file rejects), so callers need not care which source it is.
    return Promise.resolve().then(() =>
      settings.jwksFile
        ? new OidcVerifier(settings, reloadingJwksFile(settings.jwksFile))
        : new OidcVerifier(
            settings,
            createRemoteJWKSet(new URL(settings.jwksUrl!), {
              timeoutDuration: 5_000,
              cooldownDuration: 30_000,
            }),
          ),
    );
  }

  private lifetimeProblem(payload: JWTPayload): string | undefined {
    return tokenLifetimeProblem(payload, this.settings);
  }

  async verify(token: string): Promise<TokenVerdict> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keySet, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: this.settings.algorithms,
        clockTolerance: this.settings.clockSkewSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      return { ok: false, denial: describeRejection(error) };
    }
    const lifetime = this.lifetimeProblem(payload);
    if (lifetime) return invalid(lifetime);
    const subject = payload.sub ?? '';
    if (subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) {
      return invalid('token subject is empty or too long');
    }
    const roleValues = claimValues(payload, this.settings.roleClaim);
    const mapped = ROLE_PRECEDENCE.find((role) =>
      roleValues.some((value) => this.settings.roleMap[value] === role),
    );
    if (!mapped) {
      return {
        ok: false,
        denial: { code: 'role_forbidden', message: 'token carries no Airlock role' },
      };
    }
    const tenantValue = claimValues(payload, this.settings.tenantClaim)[0] ?? '';
    const global = mapped === 'admin' || mapped === 'global-auditor';
    if (!global && tenantValue === '') {
      return invalid(`token has no "${this.settings.tenantClaim}" claim`);
    }
    const preferred = payload.preferred_username;
    const used = [subject, tenantValue, typeof preferred === 'string' ? preferred : '', ...roleValues];
    if (used.some((value) => CONTROL_CHARACTERS.test(value))) {
      return invalid('token claims contain control characters');
    }
    return {
      ok: true,
      identity: {
        subject,
        name: typeof preferred === 'string' && preferred.length <= MAX_SUBJECT_LENGTH ? preferred : subject,
        role: mapped === 'global-auditor' ? 'auditor' : mapped,
        global,
        tenant: tenantValue,
      },
    };
  }
}

export interface LifetimeRules {
  clockSkewSeconds: number;
  maxTokenLifetimeSeconds: number;
}

/** A token issued in the future, or one living longer than allowed (from iat, or from now without iat). */
export function tokenLifetimeProblem(
  payload: Pick<JWTPayload, 'iat' | 'exp'>,
  rules: LifetimeRules,
  nowSeconds = Date.now() / 1000,
): string | undefined {
  const { iat, exp } = payload;
  if (iat !== undefined && (typeof iat !== 'number' || iat > nowSeconds + rules.clockSkewSeconds)) {
    return 'token "iat" claim is in the future';
  }
  const from = typeof iat === 'number' ? iat : nowSeconds;
  if (
    typeof exp === 'number' &&
    exp - Math.min(from, nowSeconds) > rules.maxTokenLifetimeSeconds + rules.clockSkewSeconds
  ) {
    return `token lifetime exceeds ${rules.maxTokenLifetimeSeconds} seconds`;
  }
  return undefined;
}

function invalid(message: string): TokenVerdict {
  return { ok: false, denial: { code: 'token_invalid', message } };
}

/** A claim by dotted path (e.g. Keycloak's "realm_access.roles"), as a list of strings. */
function claimValues(payload: JWTPayload, path: string): string[] {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    value = value && typeof value === 'object' ? (value as Record<string, unknown>)[part] : undefined;
  }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}

/** Maps jose's errors to a denial whose message names the check, never the token's content. */
function describeRejection(error: unknown): Denial {
  if (error instanceof errors.JWTExpired) return { code: 'token_expired', message: 'token expired' };
  if (error instanceof errors.JWTClaimValidationFailed) {
    const message =
      error.claim === 'nbf' || error.claim === 'iat'
        ? 'token not yet valid'
        : `token "${error.claim}" claim rejected (${error.reason})`;
    return { code: 'token_invalid', message };
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return { code: 'token_invalid', message: 'token signing algorithm not allowed' };
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return { code: 'token_invalid', message: 'token signature invalid' };
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return { code: 'token_invalid', message: 'token signed by an unknown key' };
  }
  if (error instanceof errors.JOSEError) {
    return { code: 'token_invalid', message: `token rejected (${error.code})` };
  }
  return { code: 'token_invalid', message: 'token rejected' };
}
