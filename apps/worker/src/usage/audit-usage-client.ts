import {
  loadPackageDefinition,
  type ChannelCredentials,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  AUDIT_PROTO_FILE,
  PROTO_LOADER_OPTIONS,
  SERVICE_IDENTITY,
  internalChannelCredentials,
  type InternalTransport,
  type audit,
} from '@airlock/contracts';

type ReportUsageStub = Client & {
  reportUsage(
    request: audit.ReportUsageRequest,
    options: { deadline: Date },
    callback: (error: ServiceError | null) => void,
  ): void;
};

/** A delivery that takes longer than this is retried (the report is idempotent per generation). */
const REPORT_TIMEOUT_MS = 5_000;

/**
 * The worker's one call to auth-audit: ReportUsage, under the worker's own certificate identity (auth-audit
 * lets that identity call nothing else), checking the server is auth-audit by its URI SAN.
 */
export function auditUsageClient(
  address: string,
  transport: InternalTransport,
): { send: (request: audit.ReportUsageRequest) => Promise<void>; close: () => void } {
  const definition = loadPackageDefinition(loadSync(AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS)) as unknown as {
    airlock: {
      audit: {
        v1: {
          AuditService: new (
            address: string,
            credentials: ChannelCredentials,
            options: object,
          ) => ReportUsageStub;
        };
      };
    };
  };
  const stub = new definition.airlock.audit.v1.AuditService(
    address,
    internalChannelCredentials(transport, SERVICE_IDENTITY.authAudit),
    {
      'grpc.keepalive_time_ms': 30_000,
      // Servers are checked by their certificate's URI SAN, not by address; a name (not an IP) as TLS SNI.
      'grpc.ssl_target_name_override': 'airlock.internal',
    },
  );
  return {
    send: (request) =>
      new Promise<void>((resolve, reject) =>
        stub.reportUsage(request, { deadline: new Date(Date.now() + REPORT_TIMEOUT_MS) }, (error) =>
          error ? reject(error) : resolve(),
        ),
      ),
    close: () => stub.close(),
  };
}
