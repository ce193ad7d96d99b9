import { join } from 'node:path';
import { z } from 'zod';
import { internalTransportFromEnv, type InternalTransport } from '@airlock/contracts';
import { parseApiKey } from '../keys/api-key-format.js';

/** Every setting of the service, validated once at boot; a bad value stops the process naming the variable. */
export interface AuthAuditSettings {
  dataDir: string;
  logLevel: string;
  grpcHost: string;
  grpcPort: number;
  opsPort: number;
  /** Real PostgreSQL; when absent, PGlite under `dataDir`. */
  databaseUrl?: string;
  databasePoolSize: number;
  /** The owner's URL: migrations run with it at start-up, the service with `databaseUrl` (a runtime role). */
  databaseMigrateUrl?: string;
  /** Roles the owner grants to when migrating (docs/audit-log.md, "Database roles"). */
  databaseRuntimeRole?: string;
  databaseRetentionRole?: string;
  /** Bootstrap admin key text (a Kubernetes Secret in production). */
  adminKey?: string;
  signingKeyFile?: string;
  /** Public keys (PEM, concatenated) of earlier signing keys, so checkpoints signed before a rotation verify. */
  previousSigningKeysFile?: string;
  contentKeysFile?: string;
  checkpointEveryRecords: number;
  checkpointIntervalSeconds: number;
  retentionDays: number;
  /** How long a stored Responses API answer stays readable (AIRLOCK_RESPONSES_RETENTION_DAYS). */
  responsesRetentionDays: number;
  /** Where every signed checkpoint is appended (a volume the database's administrators do not control). */
  witnessDir: string;
  /** RFC 5424 syslog receiver for checkpoints: tcp://host:port or tls://host:port (a SIEM). */
  witnessSyslogUrl?: string;
  /** PEM CA bundle for a tls:// syslog receiver (else the system's and NODE_EXTRA_CA_CERTS). */
  witnessSyslogCaFile?: string;
  /** HTTP(S) endpoint that receives each checkpoint as a POST. */
  witnessHttpUrl?: string;
  oidc?: OidcSettings;
  /** mTLS from the platform CA (only the gateway may call), or plaintext when asked for by name. */
  transport: InternalTransport;
  /** Per client address and window, unauthenticated refusals beyond the first share one aggregate record. */
  refusalWindowSeconds?: number;
  refusalBurst?: number;
  refusalMaxSources?: number;
  /** An allowed request without a completion after this long is closed as interrupted. */
  requestLeaseSeconds?: number;
  /** How often expired leases are looked for. */
  leaseSweepSeconds?: number;
  /** Tokens reserved at admission when the gateway names no bound. */
  defaultReserveTokens?: number;
}

export const OUTCOME_DEFAULTS = {
  refusalWindowSeconds: 60,
  refusalBurst: 10,
  refusalMaxSources: 10_000,
  requestLeaseSeconds: 900,
  leaseSweepSeconds: 15,
  defaultReserveTokens: 0,
} as const;

export interface OidcSettings {
  issuer: string;
  audience: string;
  jwksFile?: string;
  jwksUrl?: string;
  roleClaim: string;
  tenantClaim: string;
  clockSkewSeconds: number;
  /** Longest accepted token lifetime (exp - iat, and exp - now), in seconds. */
  maxTokenLifetimeSeconds: number;
  algorithms: string[];
  /** Claim value → Airlock role. */
  roleMap: Record<string, OidcRoleName>;
}

export const OIDC_ROLE_NAMES = ['admin', 'auditor', 'global-auditor', 'user'] as const;
export type OidcRoleName = (typeof OIDC_ROLE_NAMES)[number];

/** Asymmetric algorithms only: HMAC tokens (a shared secret) and `none` are refused. */
export const DEFAULT_OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

const port = z.coerce.number().int().min(0).max(65_535);
const positiveInt = z.coerce.number().int().min(1);
const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((value) => (value ? value : undefined));

const roleName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a PostgreSQL role name: [a-z_][a-z0-9_]*')
  .optional();

const roleMapSchema = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const map: Record<string, OidcRoleName> = {};
    for (const pair of text.split(',').filter((item) => item.trim() !== '')) {
      const [claimValue, role] = pair.split('=').map((part) => part.trim());
      if (!claimValue || !(OIDC_ROLE_NAMES as readonly string[]).includes(role ?? '')) {
        ctx.addIssue({
          code: 'custom',
          message: `expected claimValue=role pairs with role one of ${OIDC_ROLE_NAMES.join(', ')}`,
        });
        return z.NEVER;
      }
      map[claimValue] = role as OidcRoleName;
    }
    return map;
  });

const environmentSchema = z.object({
  AIRLOCK_DATA_DIR: z.string().trim().min(1).default('./data'),
  AIRLOCK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AIRLOCK_GRPC_HOST: optionalText,
  AIRLOCK_HOST: optionalText,
  AIRLOCK_GRPC_PORT: port.default(50051),
  AIRLOCK_OPS_PORT: port.default(9401),
  AIRLOCK_DATABASE_URL: optionalText.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
      .optional(),
  ),
  AIRLOCK_DATABASE_MIGRATE_URL: optionalText.pipe(
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
      .optional(),
  ),
  AIRLOCK_DATABASE_RUNTIME_ROLE: optionalText.pipe(roleName),
  AIRLOCK_DATABASE_RETENTION_ROLE: optionalText.pipe(roleName),
  AIRLOCK_DATABASE_POOL_SIZE: positiveInt.max(100).default(10),
  AIRLOCK_ADMIN_KEY: optionalText.pipe(
    z
      .string()
      .refine(
        (text) => parseApiKey(text) !== undefined,
        'expected "alk_<id>_<secret>" (id: 4-32 of [a-z0-9]; secret: 32+ of [A-Za-z0-9_-])',
      )
      .optional(),
  ),
  AIRLOCK_AUDIT_SIGNING_KEY_FILE: optionalText,
  AIRLOCK_AUDIT_CONTENT_KEYS_FILE: optionalText,
  AIRLOCK_AUDIT_PREVIOUS_SIGNING_KEYS_FILE: optionalText,
  AIRLOCK_AUDIT_CHECKPOINT_EVERY_RECORDS: positiveInt.default(1000),
  AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS: positiveInt.default(60),
  AIRLOCK_AUDIT_WITNESS_DIR: optionalText,
  AIRLOCK_AUDIT_WITNESS_SYSLOG_URL: optionalText.pipe(
    z
      .string()
      .regex(/^(tcp|tls):\/\/[^/]+:\d+\/?$/, 'expected tcp://host:port or tls://host:port')
      .optional(),
  ),
  AIRLOCK_AUDIT_WITNESS_SYSLOG_CA_FILE: optionalText,
  AIRLOCK_AUDIT_WITNESS_HTTP_URL: optionalText.pipe(z.url({ protocol: /^https?$/ }).optional()),
  AIRLOCK_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).default(0),
  // OpenAI keeps stored responses for 30 days; they are content, so they never outlive this.
  AIRLOCK_RESPONSES_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  AIRLOCK_AUDIT_REFUSAL_WINDOW_SECONDS: positiveInt
    .max(86_400)
    .default(OUTCOME_DEFAULTS.refusalWindowSeconds),
  AIRLOCK_AUDIT_REFUSAL_BURST: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(OUTCOME_DEFAULTS.refusalBurst),
  AIRLOCK_AUDIT_REFUSAL_MAX_SOURCES: positiveInt.max(1_000_000).default(OUTCOME_DEFAULTS.refusalMaxSources),
  AIRLOCK_AUDIT_REQUEST_LEASE_SECONDS: positiveInt.max(86_400).default(OUTCOME_DEFAULTS.requestLeaseSeconds),
  AIRLOCK_AUDIT_LEASE_SWEEP_SECONDS: positiveInt.max(3600).default(OUTCOME_DEFAULTS.leaseSweepSeconds),
  AIRLOCK_QUOTA_DEFAULT_RESERVE_TOKENS: z.coerce
    .number()
    .int()
    .min(0)
    .default(OUTCOME_DEFAULTS.defaultReserveTokens),
  AIRLOCK_OIDC_ISSUER: optionalText,
  AIRLOCK_OIDC_AUDIENCE: optionalText,
  AIRLOCK_OIDC_JWKS_FILE: optionalText,
  // https only: a JWKS fetched in clear could be swapped by anyone on the path, and with it every token.
  AIRLOCK_OIDC_JWKS_URL: optionalText.pipe(z.url({ protocol: /^https$/ }).optional()),
  AIRLOCK_OIDC_ROLE_CLAIM: z.string().trim().min(1).default('roles'),
  AIRLOCK_OIDC_TENANT_CLAIM: z.string().trim().min(1).default('tenant'),
  AIRLOCK_OIDC_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(600).default(30),
  AIRLOCK_OIDC_MAX_TOKEN_LIFETIME_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .max(7 * 86_400)
    .default(86_400),
  AIRLOCK_OIDC_ALGORITHMS: z
    .string()
    .trim()
    .default(DEFAULT_OIDC_ALGORITHMS.join(','))
    .transform((text) => text.split(',').map((item) => item.trim()))
    .pipe(z.array(z.enum(DEFAULT_OIDC_ALGORITHMS as [string, ...string[]])).min(1)),
  AIRLOCK_OIDC_ROLE_MAP: z
    .string()
    .default(
      'airlock-admin=admin,airlock-auditor=auditor,airlock-global-auditor=global-auditor,airlock-user=user',
    )
    .pipe(roleMapSchema),
});

export class SettingsError extends Error {}

/** Reads and validates the AIRLOCK_* variables; throws a SettingsError naming each bad variable. */
export function loadAuthAuditSettings(
  env: NodeJS.ProcessEnv = process.env,
  /** "job": migrate / prune, which serve no gRPC and need no certificates. */
  purpose: 'serve' | 'job' = 'serve',
): AuthAuditSettings {
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new SettingsError(`invalid settings: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const transport: ReturnType<typeof internalTransportFromEnv> =
    purpose === 'job' ? { ok: true, transport: { kind: 'plaintext' } } : internalTransportFromEnv(env);
  if (!transport.ok) throw new SettingsError(`invalid settings: ${transport.problem}`);
  const oidcNamed = [e.AIRLOCK_OIDC_ISSUER, e.AIRLOCK_OIDC_JWKS_FILE, e.AIRLOCK_OIDC_JWKS_URL].some(Boolean);
  let oidc: OidcSettings | undefined;
  if (oidcNamed) {
    const missing: string[] = [];
    if (!e.AIRLOCK_OIDC_ISSUER) missing.push('AIRLOCK_OIDC_ISSUER');
    if (!e.AIRLOCK_OIDC_AUDIENCE) missing.push('AIRLOCK_OIDC_AUDIENCE');
    if (!e.AIRLOCK_OIDC_JWKS_FILE === !e.AIRLOCK_OIDC_JWKS_URL) {
      missing.push('exactly one of AIRLOCK_OIDC_JWKS_FILE / AIRLOCK_OIDC_JWKS_URL');
    }
    if (missing.length > 0) {
      throw new SettingsError(`invalid settings: OIDC is partly configured; set ${missing.join(', ')}`);
    }
    oidc = {
      issuer: e.AIRLOCK_OIDC_ISSUER!,
      audience: e.AIRLOCK_OIDC_AUDIENCE!,
      jwksFile: e.AIRLOCK_OIDC_JWKS_FILE,
      jwksUrl: e.AIRLOCK_OIDC_JWKS_URL,
      roleClaim: e.AIRLOCK_OIDC_ROLE_CLAIM,
      tenantClaim: e.AIRLOCK_OIDC_TENANT_CLAIM,
      clockSkewSeconds: e.AIRLOCK_OIDC_CLOCK_SKEW_SECONDS,
      maxTokenLifetimeSeconds: e.AIRLOCK_OIDC_MAX_TOKEN_LIFETIME_SECONDS,
      algorithms: e.AIRLOCK_OIDC_ALGORITHMS,
      roleMap: e.AIRLOCK_OIDC_ROLE_MAP,
    };
  }
  return {
    dataDir: e.AIRLOCK_DATA_DIR,
    logLevel: e.AIRLOCK_LOG_LEVEL,
    grpcHost: e.AIRLOCK_GRPC_HOST ?? e.AIRLOCK_HOST ?? '127.0.0.1',
    grpcPort: e.AIRLOCK_GRPC_PORT,
    opsPort: e.AIRLOCK_OPS_PORT,
    databaseUrl: e.AIRLOCK_DATABASE_URL,
    databasePoolSize: e.AIRLOCK_DATABASE_POOL_SIZE,
    databaseMigrateUrl: e.AIRLOCK_DATABASE_MIGRATE_URL,
    databaseRuntimeRole: e.AIRLOCK_DATABASE_RUNTIME_ROLE,
    databaseRetentionRole: e.AIRLOCK_DATABASE_RETENTION_ROLE,
    adminKey: e.AIRLOCK_ADMIN_KEY,
    signingKeyFile: e.AIRLOCK_AUDIT_SIGNING_KEY_FILE,
    previousSigningKeysFile: e.AIRLOCK_AUDIT_PREVIOUS_SIGNING_KEYS_FILE,
    contentKeysFile: e.AIRLOCK_AUDIT_CONTENT_KEYS_FILE,
    checkpointEveryRecords: e.AIRLOCK_AUDIT_CHECKPOINT_EVERY_RECORDS,
    checkpointIntervalSeconds: e.AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS,
    retentionDays: e.AIRLOCK_AUDIT_RETENTION_DAYS,
    responsesRetentionDays: e.AIRLOCK_RESPONSES_RETENTION_DAYS,
    witnessDir: e.AIRLOCK_AUDIT_WITNESS_DIR ?? join(e.AIRLOCK_DATA_DIR, 'audit-witness'),
    witnessSyslogUrl: e.AIRLOCK_AUDIT_WITNESS_SYSLOG_URL,
    witnessSyslogCaFile: e.AIRLOCK_AUDIT_WITNESS_SYSLOG_CA_FILE,
    witnessHttpUrl: e.AIRLOCK_AUDIT_WITNESS_HTTP_URL,
    oidc,
    transport: transport.transport,
    refusalWindowSeconds: e.AIRLOCK_AUDIT_REFUSAL_WINDOW_SECONDS,
    refusalBurst: e.AIRLOCK_AUDIT_REFUSAL_BURST,
    refusalMaxSources: e.AIRLOCK_AUDIT_REFUSAL_MAX_SOURCES,
    requestLeaseSeconds: e.AIRLOCK_AUDIT_REQUEST_LEASE_SECONDS,
    leaseSweepSeconds: e.AIRLOCK_AUDIT_LEASE_SWEEP_SECONDS,
    defaultReserveTokens: e.AIRLOCK_QUOTA_DEFAULT_RESERVE_TOKENS,
  };
}
