import { loadSync } from '@grpc/proto-loader';
import { AUDIT_PACKAGE, AUDIT_PROTO_FILE, AUDIT_SERVICE, PROTO_LOADER_OPTIONS } from '../src/index.js';

describe('audit contract', () => {
  const definition = loadSync(AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS);

  it('defines the audit service with a streaming export, a streaming Authorize and unary everything else', () => {
    const service = definition[`${AUDIT_PACKAGE}.${AUDIT_SERVICE}`] as Record<
      string,
      { responseStream: boolean }
    >;
    expect(Object.keys(service).sort()).toEqual([
      'AppendAdminAction',
      'Authorize',
      'Complete',
      'CreateApiKey',
      'DeleteStoredResponse',
      'ExportAuditRecords',
      'GetAuditConsistencyProof',
      'GetAuditInclusionProof',
      'GetAuditRecordContent',
      'GetStoredResponse',
      'ListApiKeys',
      'ListAuditCheckpoints',
      'ListTenants',
      'QueryAuditRecords',
      'RecordRefusal',
      'ReportUsage',
      'RevokeApiKey',
      'StoreResponse',
      'StreamingAuthorize',
      'UpsertTenant',
      'VerifyAuditChain',
    ]);
    expect(service.ExportAuditRecords.responseStream).toBe(true);
    expect(service.Authorize.responseStream).toBe(false);
    expect(service.StreamingAuthorize.responseStream).toBe(true);
  });
});
