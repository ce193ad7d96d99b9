import type { GrpcOptions } from '@nestjs/microservices';
import { Transport } from '@nestjs/microservices';
import { AUDIT_PACKAGE, AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS } from '@airlock/contracts';
import type { HealthImplementation } from 'grpc-health-check';
import { MAX_BODY_BYTES } from '../validation.js';

/** One gRPC options object for the service and for tests that boot it. */
export function auditGrpcOptions(address: string, health: HealthImplementation): GrpcOptions {
  return {
    transport: Transport.GRPC,
    options: {
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
