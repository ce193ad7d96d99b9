import { isIP } from 'node:net';
import { z } from 'zod';
import { internalTransportFromEnv, type InternalTransport } from '@airlock/contracts';

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const seconds = z.coerce.number().positive();

/** `host:port` entries, comma-separated; empty entries are dropped. */
const addressList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.length > 0),
  )
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port entries')));

/** IPs or CIDRs, comma-separated: the proxies (an ingress controller) whose X-Forwarded-For is believed. */
const proxyList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry.length > 0),
  )
  .pipe(
    z.array(
      z.string().refine((entry) => {
        const [address, prefix, ...rest] = entry.split('/');
        const family = isIP(address);
        if (family === 0 || rest.length > 0) return false;
        if (prefix === undefined) return true;
        const bits = Number(prefix);
        return /^\d{1,3}$/.test(prefix) && bits <= (family === 4 ? 32 : 128);
      }, 'expected IP addresses or CIDRs (e.g. 10.42.0.0/16)'),
    ),
  );

/** `model=limit` pairs, comma-separated: per-model caps on max_tokens. */
const perModelLimits = z.string().transform((value, ctx) => {
  const limits: Record<string, number> = {};
  for (const pair of value.split(',').filter((entry) => entry.trim().length > 0)) {
    const [model, limit] = pair.split('=').map((part) => part.trim());
    const parsed = Number(limit);
    if (!model || !Number.isInteger(parsed) || parsed <= 0) {
      ctx.addIssue({ code: 'custom', message: `expected model=limit pairs, got "${pair}"` });
      return z.NEVER;
    }
    limits[model] = parsed;
  }
  return limits;
});

/** Every gateway setting, validated once at boot. Names and defaults are shared with the chart and docs. */
export const gatewayEnvSchema = z.object({
  AIRLOCK_HOST: z.string().min(1).default('127.0.0.1'),
  AIRLOCK_PORT: port.default(8080),
  AIRLOCK_OPS_PORT: port.default(9400),
  AIRLOCK_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  AIRLOCK_AUTH_AUDIT_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
    .default('127.0.0.1:50051'),
  AIRLOCK_DISCOVERY: z.enum(['static', 'kubernetes']).default('static'),
  AIRLOCK_WORKERS: addressList.default([]),
  AIRLOCK_KUBERNETES_NAMESPACE: z.string().min(1).default('default'),
  AIRLOCK_WORKER_SELECTOR: z.string().min(1).default('app.kubernetes.io/component=worker'),
  AIRLOCK_WORKER_STATUS_INTERVAL_MS: positiveInt.default(1000),
  AIRLOCK_WORKER_ATTEMPTS: positiveInt.default(3),
  AIRLOCK_QUEUE_CAPACITY: z.coerce.number().int().min(0).default(4096),
  AIRLOCK_QUEUE_TIMEOUT_SECONDS: seconds.default(30),
  AIRLOCK_MAX_BODY_BYTES: positiveInt.default(4 * 1024 * 1024),
  AIRLOCK_MAX_HEADER_BYTES: positiveInt.default(16 * 1024),
  AIRLOCK_REQUEST_TIMEOUT_SECONDS: seconds.default(600),
  AIRLOCK_IDLE_TIMEOUT_SECONDS: seconds.default(120),
  AIRLOCK_MAX_CONNECTIONS: positiveInt.default(10_000),
  AIRLOCK_MAX_TOKENS: positiveInt.default(8192),
  AIRLOCK_MODEL_MAX_TOKENS: perModelLimits.default({}),
  AIRLOCK_MAX_N: positiveInt.default(4),
  AIRLOCK_MAX_EMBEDDING_INPUTS: positiveInt.default(256),
  AIRLOCK_AUDIT_RETRY_MAX_SECONDS: seconds.default(30),
  AIRLOCK_AUDIT_MAX_PENDING: positiveInt.default(10_000),
  AIRLOCK_AUDIT_COMPLETION_HOLD_MS: z.coerce.number().int().min(0).max(1000).default(20),
  AIRLOCK_AUDIT_LEASE_MARGIN_SECONDS: seconds.default(300),
  AIRLOCK_MAX_REPLICAS: positiveInt.default(64),
  AIRLOCK_TRUSTED_PROXIES: proxyList.default([]),
  // Browser origins allowed to call the API (CORS); empty: no CORS headers at all.
  AIRLOCK_CORS_ORIGINS: z
    .string()
    .default('')
    .transform((value) =>
      value
        .split(',')
        .map((origin) => origin.trim())
        .filter(Boolean),
    )
    .pipe(
      z.array(
        z
          .string()
          .regex(/^https?:\/\/[^/\s,*]+$/, 'exact origins such as https://app.example.org (no path, no "*")'),
      ),
    ),
});

export type GatewayEnv = z.output<typeof gatewayEnvSchema>;

/** DI token of the GatewayConfig. */
export const GATEWAY_CONFIG = Symbol('GATEWAY_CONFIG');

export interface GatewayConfig {
  host: string;
  port: number;
  opsPort: number;
  logLevel: string;
  authAuditAddress: string;
  discovery:
    | { kind: 'static'; workers: string[] }
    | { kind: 'kubernetes'; namespace: string; selector: string; kubeconfig?: KubeconfigSource };
  workerStatusIntervalMs: number;
  workerAttempts: number;
  queueCapacity: number;
  queueTimeoutMs: number;
  maxBodyBytes: number;
  maxHeaderBytes: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxTokens: number;
  modelMaxTokens: Record<string, number>;
  maxN: number;
  maxEmbeddingInputs: number;
  auditRetryMaxMs: number;
  /** Completion records waiting for auth-audit at most; beyond it new requests are refused (503). */
  auditMaxPending: number;
  /** How long a completion record may wait to go out with the next Authorize (one commit for both). */
  auditCompletionHoldMs: number;
  /** Added to the request timeout for the lease after which auth-audit closes a request as interrupted. */
  auditLeaseMarginMs: number;
  /** Cap on PUT /admin/v1/models/{id}/replicas: a typo must not ask for a thousand GPU pods. */
  maxReplicas: number;
  /** mTLS to auth-audit and the workers (each checked by its URI SAN), or plaintext when asked for by name. */
  internalTransport: InternalTransport;
  /** Proxies whose X-Forwarded-For names the client (audit client_address); none: the TCP peer is the client. */
  trustedProxies: string[];
  /** Exact origins allowed by CORS; empty turns CORS off. */
  corsOrigins: string[];
}

/** Tests hand the Kubernetes client an explicit cluster (the fake API server); production loads in-cluster. */
export interface KubeconfigSource {
  server: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses the environment; a bad value throws a ConfigError naming the variable. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const result = gatewayEnvSchema.safeParse(env);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid gateway settings: ${problems.join('; ')}`);
  }
  const e = result.data;
  const transport = internalTransportFromEnv(env);
  if (!transport.ok) throw new ConfigError(`invalid gateway settings: ${transport.problem}`);
  return {
    host: e.AIRLOCK_HOST,
    port: e.AIRLOCK_PORT,
    opsPort: e.AIRLOCK_OPS_PORT,
    logLevel: e.AIRLOCK_LOG_LEVEL,
    authAuditAddress: e.AIRLOCK_AUTH_AUDIT_ADDRESS,
    discovery:
      e.AIRLOCK_DISCOVERY === 'static'
        ? { kind: 'static', workers: e.AIRLOCK_WORKERS }
        : {
            kind: 'kubernetes',
            namespace: e.AIRLOCK_KUBERNETES_NAMESPACE,
            selector: e.AIRLOCK_WORKER_SELECTOR,
          },
    workerStatusIntervalMs: e.AIRLOCK_WORKER_STATUS_INTERVAL_MS,
    workerAttempts: e.AIRLOCK_WORKER_ATTEMPTS,
    queueCapacity: e.AIRLOCK_QUEUE_CAPACITY,
    queueTimeoutMs: e.AIRLOCK_QUEUE_TIMEOUT_SECONDS * 1000,
    maxBodyBytes: e.AIRLOCK_MAX_BODY_BYTES,
    maxHeaderBytes: e.AIRLOCK_MAX_HEADER_BYTES,
    requestTimeoutMs: e.AIRLOCK_REQUEST_TIMEOUT_SECONDS * 1000,
    idleTimeoutMs: e.AIRLOCK_IDLE_TIMEOUT_SECONDS * 1000,
    maxConnections: e.AIRLOCK_MAX_CONNECTIONS,
    maxTokens: e.AIRLOCK_MAX_TOKENS,
    modelMaxTokens: e.AIRLOCK_MODEL_MAX_TOKENS,
    maxN: e.AIRLOCK_MAX_N,
    maxEmbeddingInputs: e.AIRLOCK_MAX_EMBEDDING_INPUTS,
    auditRetryMaxMs: e.AIRLOCK_AUDIT_RETRY_MAX_SECONDS * 1000,
    auditMaxPending: e.AIRLOCK_AUDIT_MAX_PENDING,
    auditCompletionHoldMs: e.AIRLOCK_AUDIT_COMPLETION_HOLD_MS,
    auditLeaseMarginMs: e.AIRLOCK_AUDIT_LEASE_MARGIN_SECONDS * 1000,
    maxReplicas: e.AIRLOCK_MAX_REPLICAS,
    internalTransport: transport.transport,
    trustedProxies: e.AIRLOCK_TRUSTED_PROXIES,
    corsOrigins: e.AIRLOCK_CORS_ORIGINS,
  };
}

/**
 * Settings for tests and embedding: defaults for everything not given. Internal hops are plaintext unless
 * `internalTransport` is given (tests against fake workers); the gateway logs that loudly at boot.
 */
export function gatewayConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadGatewayConfig({ AIRLOCK_INTERNAL_PLAINTEXT: 'true' }), ...overrides };
}
