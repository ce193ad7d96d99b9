import {
  credentials,
  loadPackageDefinition,
  type ChannelCredentials,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS, type audit } from '@airlock/contracts';

/** A plain grpc-js client of airlock.audit.v1.AuditService, as the gateway would build one. */
export interface AuditClient {
  authorize(request: audit.AuthorizeRequest): Promise<audit.AuthorizeResponse>;
  complete(request: audit.CompleteRequest): Promise<audit.CompleteResponse>;
  recordRefusal(request: audit.RecordRefusalRequest): Promise<audit.RecordRefusalResponse>;
  reportUsage(request: audit.ReportUsageRequest): Promise<audit.ReportUsageResponse>;
  appendAdminAction(request: audit.AppendAdminActionRequest): Promise<audit.AppendAdminActionResponse>;
  upsertTenant(request: audit.UpsertTenantRequest): Promise<audit.UpsertTenantResponse>;
  listTenants(request: audit.ListTenantsRequest): Promise<audit.ListTenantsResponse>;
  createApiKey(request: audit.CreateApiKeyRequest): Promise<audit.CreateApiKeyResponse>;
  listApiKeys(request: audit.ListApiKeysRequest): Promise<audit.ListApiKeysResponse>;
  revokeApiKey(request: audit.RevokeApiKeyRequest): Promise<audit.RevokeApiKeyResponse>;
  queryAuditRecords(request: audit.QueryAuditRecordsRequest): Promise<audit.QueryAuditRecordsResponse>;
  verifyAuditChain(request: audit.VerifyAuditChainRequest): Promise<audit.VerifyAuditChainResponse>;
  listAuditCheckpoints(
    request: audit.ListAuditCheckpointsRequest,
  ): Promise<audit.ListAuditCheckpointsResponse>;
  storeResponse(request: audit.StoreResponseRequest): Promise<audit.StoreResponseResponse>;
  getStoredResponse(request: audit.GetStoredResponseRequest): Promise<audit.GetStoredResponseResponse>;
  deleteStoredResponse(
    request: audit.DeleteStoredResponseRequest,
  ): Promise<audit.DeleteStoredResponseResponse>;
  getAuditInclusionProof(
    request: audit.GetAuditInclusionProofRequest,
  ): Promise<audit.GetAuditInclusionProofResponse>;
  getAuditConsistencyProof(
    request: audit.GetAuditConsistencyProofRequest,
  ): Promise<audit.GetAuditConsistencyProofResponse>;
  getAuditRecordContent(
    request: audit.GetAuditRecordContentRequest,
  ): Promise<audit.GetAuditRecordContentResponse>;
  /** The whole export, chunks concatenated. */
  exportAuditRecords(
    request: audit.ExportAuditRecordsRequest,
  ): Promise<{ text: string; chunks: number; records: number }>;
  close(): void;
}

type Callback<T> = (error: ServiceError | null, response: T) => void;
type RawClient = Client & Record<string, (request: unknown, callback: Callback<unknown>) => void>;

const UNARY = [
  'Authorize',
  'Complete',
  'RecordRefusal',
  'ReportUsage',
  'AppendAdminAction',
  'UpsertTenant',
  'ListTenants',
  'CreateApiKey',
  'ListApiKeys',
  'RevokeApiKey',
  'QueryAuditRecords',
  'VerifyAuditChain',
  'ListAuditCheckpoints',
  'StoreResponse',
  'GetStoredResponse',
  'DeleteStoredResponse',
  'GetAuditInclusionProof',
  'GetAuditConsistencyProof',
  'GetAuditRecordContent',
] as const;

/** Plaintext by default (the service's own suites); pass mTLS credentials to call it as a given service. */
export function createAuditClient(
  address: string,
  channelCredentials: ChannelCredentials = credentials.createInsecure(),
): AuditClient {
  const definition = loadSync(AUDIT_PROTO_FILE, PROTO_LOADER_OPTIONS);
  const grpcObject = loadPackageDefinition(definition) as unknown as {
    airlock: {
      audit: { v1: { AuditService: new (address: string, creds: unknown, options: object) => RawClient } };
    };
  };
  const raw = new grpcObject.airlock.audit.v1.AuditService(address, channelCredentials, {
    'grpc.ssl_target_name_override': 'airlock.internal',
  });
  const client: Record<string, unknown> = {};
  for (const method of UNARY) {
    const name = method[0].toLowerCase() + method.slice(1);
    client[name] = (request: unknown) =>
      new Promise((resolve, reject) =>
        raw[method](request, (error, response) => (error ? reject(error) : resolve(response))),
      );
  }
  client.exportAuditRecords = (request: unknown) =>
    new Promise((resolve, reject) => {
      const stream = (
        raw as unknown as Record<string, (r: unknown) => NodeJS.ReadableStream>
      ).ExportAuditRecords(request);
      const parts: Buffer[] = [];
      let records = 0;
      stream.on('data', (chunk: audit.ExportAuditRecordsResponse) => {
        parts.push(chunk.data);
        records += chunk.recordCount;
      });
      stream.on('error', reject);
      stream.on('end', () =>
        resolve({ text: Buffer.concat(parts).toString('utf8'), chunks: parts.length, records }),
      );
    });
  client.close = () => raw.close();
  return client as unknown as AuditClient;
}

/** The gRPC status code of a rejected call (for expect(...).rejects). */
export async function grpcCode(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (error) {
    return (error as ServiceError).code;
  }
  throw new Error('expected the call to fail');
}
