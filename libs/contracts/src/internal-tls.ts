import type { PeerCertificate } from 'node:tls';
import {
  ChannelCredentials,
  ServerCredentials,
  ServerInterceptingCall,
  credentials,
  experimental,
  status,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { z } from 'zod';

/**
 * Every internal hop (gateway → auth-audit, gateway → worker) is mutual TLS: both ends present a certificate
 * from the platform's CA, and each end checks who the other is by its URI SAN, never by host name (worker
 * addresses are pod IPs from EndpointSlices). Plaintext only when asked for by name.
 */
export const SERVICE_IDENTITY = {
  gateway: 'spiffe://airlock/gateway',
  authAudit: 'spiffe://airlock/auth-audit',
  worker: 'spiffe://airlock/worker',
} as const;
export type ServiceIdentity = (typeof SERVICE_IDENTITY)[keyof typeof SERVICE_IDENTITY];

export type InternalTransport =
  | { kind: 'mtls'; caFile: string; certFile: string; keyFile: string; refreshMs: number }
  | { kind: 'plaintext' };

/** The loud line every service logs at boot when it runs its internal hops without TLS. */
export const PLAINTEXT_WARNING =
  'INTERNAL TRAFFIC IS PLAINTEXT (AIRLOCK_INTERNAL_PLAINTEXT=true): any host that reaches the gRPC ports can ' +
  'call them as the gateway; never run like this outside a test';

const optionalPath = z
  .string()
  .trim()
  .optional()
  .transform((value) => (value ? value : undefined));

export const internalTransportEnvSchema = z.object({
  AIRLOCK_TLS_CA_FILE: optionalPath,
  AIRLOCK_TLS_CERT_FILE: optionalPath,
  AIRLOCK_TLS_KEY_FILE: optionalPath,
  AIRLOCK_TLS_REFRESH_SECONDS: z.coerce.number().int().min(1).max(86_400).default(60),
  AIRLOCK_INTERNAL_PLAINTEXT: z.enum(['true', 'false']).default('false'),
});

/** Reads the transport settings; returns the problem (naming the variables) instead of throwing. */
export function internalTransportFromEnv(
  env: NodeJS.ProcessEnv,
): { ok: true; transport: InternalTransport } | { ok: false; problem: string } {
  const parsed = internalTransportEnvSchema.safeParse(env);
  if (!parsed.success) {
    return {
      ok: false,
      problem: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
    };
  }
  const e = parsed.data;
  const files = [e.AIRLOCK_TLS_CA_FILE, e.AIRLOCK_TLS_CERT_FILE, e.AIRLOCK_TLS_KEY_FILE];
  if (e.AIRLOCK_INTERNAL_PLAINTEXT === 'true') {
    if (files.some(Boolean)) {
      return {
        ok: false,
        problem: 'AIRLOCK_INTERNAL_PLAINTEXT=true and AIRLOCK_TLS_* files are both set; choose one',
      };
    }
    return { ok: true, transport: { kind: 'plaintext' } };
  }
  if (!files.every(Boolean)) {
    return {
      ok: false,
      problem:
        'internal gRPC needs mutual TLS: set AIRLOCK_TLS_CA_FILE, AIRLOCK_TLS_CERT_FILE and AIRLOCK_TLS_KEY_FILE ' +
        '(PEM files; `npm start` writes them under the data dir), or AIRLOCK_INTERNAL_PLAINTEXT=true for a test',
    };
  }
  return {
    ok: true,
    transport: {
      kind: 'mtls',
      caFile: e.AIRLOCK_TLS_CA_FILE!,
      certFile: e.AIRLOCK_TLS_CERT_FILE!,
      keyFile: e.AIRLOCK_TLS_KEY_FILE!,
      refreshMs: e.AIRLOCK_TLS_REFRESH_SECONDS * 1000,
    },
  };
}

/** Helm's genSignedCert cannot write URI SANs: the chart's evaluation certificates carry this DNS SAN. */
const DNS_IDENTITY = /^([a-z][a-z-]{0,30})\.identity\.airlock$/;

/**
 * The identities a certificate names: its URI SANs (`URI:spiffe://…` entries of Node's subjectaltname), and
 * `spiffe://airlock/<name>` for a DNS SAN `<name>.identity.airlock`. Only certificates the platform CA
 * signed get this far, so both forms carry the same trust.
 */
export function certificateIdentities(
  certificate: Pick<PeerCertificate, 'subjectaltname'> | undefined,
): string[] {
  const entries = (certificate?.subjectaltname ?? '').split(',').map((entry) => entry.trim());
  const identities: string[] = [];
  for (const entry of entries) {
    if (entry.startsWith('URI:')) identities.push(entry.slice('URI:'.length));
    const dns = entry.startsWith('DNS:') ? DNS_IDENTITY.exec(entry.slice('DNS:'.length)) : null;
    if (dns) identities.push(`spiffe://airlock/${dns[1]}`);
  }
  return identities;
}

/** Which caller identities may call which methods: the first rule whose prefix matches a method path wins. */
export interface CallerRule {
  /** A gRPC method path prefix, e.g. `/airlock.audit.v1.AuditService/`. */
  methodPrefix: string;
  /** Allowed URI SANs; `'any'` = any certificate the CA issued (health checks). */
  callers: readonly ServiceIdentity[] | 'any';
}

/** Files are re-read every refreshMs: a rotated certificate is served without a restart. */
function certificateProvider(transport: Extract<InternalTransport, { kind: 'mtls' }>) {
  return new experimental.FileWatcherCertificateProvider({
    caCertificateFile: transport.caFile,
    certificateFile: transport.certFile,
    privateKeyFile: transport.keyFile,
    refreshIntervalMs: transport.refreshMs,
  });
}

/**
 * Server credentials: a client certificate from the CA is required, and a server interceptor refuses a
 * call whose caller identity no rule allows (PERMISSION_DENIED naming neither the rule nor the identity list).
 * A method no rule names is refused too.
 */
export function internalServerCredentials(
  transport: InternalTransport,
  allows: readonly CallerRule[] | CallerDecision,
): ServerCredentials {
  if (transport.kind === 'plaintext') return ServerCredentials.createInsecure();
  const provider = certificateProvider(transport);
  const secure = experimental.createCertificateProviderServerCredentials(provider, provider, true);
  const decide = typeof allows === 'function' ? allows : callerAllowedByRules(allows);
  return experimental.createServerCredentialsWithInterceptors(secure, [callerCheck(decide)]);
}

/** Whether the identities of a caller's (CA-verified) certificate may call a method path. */
export type CallerDecision = (identities: readonly string[], methodPath: string) => boolean;

/** The first rule whose prefix matches the method decides; a method no rule names is refused. */
export function callerAllowedByRules(rules: readonly CallerRule[]): CallerDecision {
  return (identities, methodPath) => {
    const rule = rules.find((candidate) => methodPath.startsWith(candidate.methodPrefix));
    return (
      rule !== undefined &&
      identities.length > 0 &&
      (rule.callers === 'any' || identities.some((id) => (rule.callers as readonly string[]).includes(id)))
    );
  };
}

function callerCheck(decide: CallerDecision): ServerInterceptor {
  return (descriptor, call) =>
    new ServerInterceptingCall(call, {
      start: (next) => {
        const identities = certificateIdentities(call.getAuthContext().sslPeerCertificate);
        if (decide(identities, descriptor.path)) {
          next();
          return;
        }
        // Refuse before the handler runs: no message is read, nothing reaches the service.
        next({
          onReceiveMetadata: () => undefined,
          onReceiveMessage: () => undefined,
          onReceiveHalfClose: () => undefined,
          onCancel: () => undefined,
        });
        call.sendStatus({
          code: status.PERMISSION_DENIED,
          details: 'caller certificate identity is not allowed to call this method',
        });
      },
    });
}

/**
 * Channel credentials: the client's certificate, the platform CA, and the server's identity checked by its
 * URI SAN instead of its host name.
 */
export function internalChannelCredentials(
  transport: InternalTransport,
  expectedServer: ServiceIdentity,
): ChannelCredentials {
  if (transport.kind === 'plaintext') return credentials.createInsecure();
  const provider = certificateProvider(transport);
  return experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: (_host, certificate) =>
      certificateIdentities(certificate).includes(expectedServer)
        ? undefined
        : new Error(`server certificate is not ${expectedServer}`),
  });
}
