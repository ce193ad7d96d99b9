import { Controller } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata, ServerWritableStream } from '@grpc/grpc-js';
import { AUDIT_SERVICE, type audit } from '@airlock/contracts';
import { Observable } from 'rxjs';
import { AuthorizationService } from '../services/authorization.service.js';
import { AdminService } from '../services/admin.service.js';
import { AuditLogService } from '../services/audit-log.service.js';
import { ResponseStoreService } from '../responses/response-store.service.js';

/** airlock.audit.v1.AuditService: each method delegates to one service call. */
@Controller()
export class AuditGrpcController {
  constructor(
    private readonly authorization: AuthorizationService,
    private readonly admin: AdminService,
    private readonly auditLog: AuditLogService,
    private readonly responses: ResponseStoreService,
  ) {}

  @GrpcMethod(AUDIT_SERVICE, 'Authorize')
  authorize(request: audit.AuthorizeRequest): Promise<audit.AuthorizeResponse> {
    return this.authorization.authorize(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'StreamingAuthorize')
  streamingAuthorize(request: audit.StreamingAuthorizeRequest): Observable<audit.StreamingAuthorizeResponse> {
    return this.authorization.streamingAuthorize(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'Complete')
  complete(request: audit.CompleteRequest): Promise<audit.CompleteResponse> {
    return this.authorization.complete(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'RecordRefusal')
  recordRefusal(request: audit.RecordRefusalRequest): Promise<audit.RecordRefusalResponse> {
    return this.authorization.recordRefusal(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'ReportUsage')
  reportUsage(request: audit.ReportUsageRequest): Promise<audit.ReportUsageResponse> {
    return this.authorization.reportUsage(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'AppendAdminAction')
  appendAdminAction(request: audit.AppendAdminActionRequest): Promise<audit.AppendAdminActionResponse> {
    return this.admin.appendAdminAction(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'UpsertTenant')
  upsertTenant(request: audit.UpsertTenantRequest): Promise<audit.UpsertTenantResponse> {
    return this.admin.upsertTenant(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'ListTenants')
  listTenants(request: audit.ListTenantsRequest): Promise<audit.ListTenantsResponse> {
    return this.admin.listTenants(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'CreateApiKey')
  createApiKey(request: audit.CreateApiKeyRequest): Promise<audit.CreateApiKeyResponse> {
    return this.admin.createApiKey(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'ListApiKeys')
  listApiKeys(request: audit.ListApiKeysRequest): Promise<audit.ListApiKeysResponse> {
    return this.admin.listApiKeys(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'RevokeApiKey')
  revokeApiKey(request: audit.RevokeApiKeyRequest): Promise<audit.RevokeApiKeyResponse> {
    return this.admin.revokeApiKey(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'QueryAuditRecords')
  queryAuditRecords(request: audit.QueryAuditRecordsRequest): Promise<audit.QueryAuditRecordsResponse> {
    return this.auditLog.query(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'ExportAuditRecords')
  exportAuditRecords(
    request: audit.ExportAuditRecordsRequest,
    _metadata: Metadata,
    call: ServerWritableStream<unknown, unknown>,
  ): Observable<audit.ExportAuditRecordsResponse> {
    return pullWithBackpressure(this.auditLog.export(request), call);
  }

  @GrpcMethod(AUDIT_SERVICE, 'VerifyAuditChain')
  verifyAuditChain(request: audit.VerifyAuditChainRequest): Promise<audit.VerifyAuditChainResponse> {
    return this.auditLog.verify(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'GetAuditInclusionProof')
  getAuditInclusionProof(
    request: audit.GetAuditInclusionProofRequest,
  ): Promise<audit.GetAuditInclusionProofResponse> {
    return this.auditLog.inclusionProof(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'GetAuditConsistencyProof')
  getAuditConsistencyProof(
    request: audit.GetAuditConsistencyProofRequest,
  ): Promise<audit.GetAuditConsistencyProofResponse> {
    return this.auditLog.consistencyProof(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'GetAuditRecordContent')
  getAuditRecordContent(
    request: audit.GetAuditRecordContentRequest,
  ): Promise<audit.GetAuditRecordContentResponse> {
    return this.auditLog.recordContent(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'ListAuditCheckpoints')
  listAuditCheckpoints(
    request: audit.ListAuditCheckpointsRequest,
  ): Promise<audit.ListAuditCheckpointsResponse> {
    return this.auditLog.listCheckpoints(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'StoreResponse')
  storeResponse(request: audit.StoreResponseRequest): Promise<audit.StoreResponseResponse> {
    return this.responses.store(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'GetStoredResponse')
  getStoredResponse(request: audit.GetStoredResponseRequest): Promise<audit.GetStoredResponseResponse> {
    return this.responses.get(request);
  }

  @GrpcMethod(AUDIT_SERVICE, 'DeleteStoredResponse')
  deleteStoredResponse(
    request: audit.DeleteStoredResponseRequest,
  ): Promise<audit.DeleteStoredResponseResponse> {
    return this.responses.delete(request);
  }
}

/**
 * Feeds a generator into a server stream, pulling the next chunk only once the call's buffer has drained,
 * so a slow reader of a large export never makes the service hold the whole log in memory. Stops when the
 * client cancels.
 */
function pullWithBackpressure<T>(
  source: AsyncGenerator<T>,
  call: ServerWritableStream<unknown, unknown>,
): Observable<T> {
  return new Observable<T>((subscriber) => {
    let stopped = false;
    const drained = () =>
      new Promise<void>((resolve) => {
        const done = () => {
          call.off('drain', done);
          call.off('close', done);
          resolve();
        };
        call.on('drain', done);
        call.on('close', done);
      });
    const pump = async () => {
      for await (const chunk of source) {
        if (stopped || call.cancelled) return;
        subscriber.next(chunk);
        if (call.writableNeedDrain) await drained();
      }
      subscriber.complete();
    };
    pump().catch((error: unknown) => subscriber.error(error));
    return () => {
      stopped = true;
      void source.return(undefined);
    };
  });
}
