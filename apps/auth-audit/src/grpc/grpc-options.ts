import type { GrpcOptions } from '@nestjs/microservices';
import { Transport } from '@nestjs/microservices';
import {
  AUDIT_PACKAGE,
  AUDIT_PROTO_FILE,
  AUDIT_SERVICE,
  PROTO_LOADER_OPTIONS,
  SERVICE_IDENTITY,
  internalServerCredentials,
  type InternalTransport,
} from '@airlock/contracts';
import type { HealthImplementation } from 'grpc-health-check';
import { MAX_BODY_BYTES } from '../validation.js';
import { credentialKinds } from '../auth/credentials.js';

/**
 * ReportUsage from the workers (usage they did survives the gateway) and the gateway; Authorize, Complete
 * and every admin call only from the gateway; health from any platform certificate. The first rule whose
 * prefix matches wins, and the full method path (no other method begins with it) names only ReportUsage.
 */
export const AUDIT_CALLERS = [
  {
    methodPrefix: `/${AUDIT_PACKAGE}.${AUDIT_SERVICE}/ReportUsage`,
    callers: [SERVICE_IDENTITY.gateway, SERVICE_IDENTITY.worker],
  },
  { methodPrefix: `/${AUDIT_PACKAGE}.${AUDIT_SERVICE}/`, callers: [SERVICE_IDENTITY.gateway] },
  { methodPrefix: '/grpc.health.v1.Health/', callers: 'any' },
] as const;

/** One gRPC options object for the service and for tests that boot it. */
export function auditGrpcOptions(
  address: string,
  health: HealthImplementation,
  transport: InternalTransport,
): GrpcOptions {
  return {
    transport: Transport.GRPC,
    options: {
      credentials: internalServerCredentials(transport, (identities, path) =>
        credentialKinds.clientCertificate(identities, path, AUDIT_CALLERS),
      ),
      package: AUDIT_PACKAGE,
      protoPath: AUDIT_PROTO_FILE,
      url: address,
      loader: { ...PROTO_LOADER_OPTIONS, includeDirs: PROTO_LOADER_OPTIONS.includeDirs },
      // Room for a request and a response body of MAX_BODY_BYTES each, plus the other fields.
      maxReceiveMessageLength: 2 * MAX_BODY_BYTES + 1024 * 1024,
      gracefulShutdown: true,
      onLoadPackageDefinition: (_definition, server) =>
        health.addToServer(server as Parameters<HealthImplementation['addToServer']>[0]),
    },
  };
}
