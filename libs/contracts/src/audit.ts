// Hand-kept TypeScript shapes of airlock.audit.v1, as @grpc/proto-loader decodes them with
// PROTO_LOADER_OPTIONS: camelCase fields, enums as their names, 64-bit integers as numbers, bytes as
// Buffers. Keep in step with audit_service.proto. Requests: fields may be omitted (proto3 defaults);
// responses: every scalar field is present (defaults: true).

export type Role = 'ROLE_UNSPECIFIED' | 'ROLE_ADMIN' | 'ROLE_AUDITOR' | 'ROLE_USER' | 'ROLE_TENANT_ADMIN';
export type PrincipalKind =
  'PRINCIPAL_KIND_UNSPECIFIED' | 'PRINCIPAL_KIND_API_KEY' | 'PRINCIPAL_KIND_OIDC_TOKEN';
export type Action =
  | 'ACTION_UNSPECIFIED'
  | 'ACTION_CHAT_COMPLETIONS'
  | 'ACTION_COMPLETIONS'
  | 'ACTION_EMBEDDINGS'
  | 'ACTION_LIST_MODELS'
  | 'ACTION_MANAGE_MODELS'
  | 'ACTION_RESPONSES'
  | 'ACTION_GET_STORED_RESPONSE'
  | 'ACTION_DELETE_STORED_RESPONSE'
  | 'ACTION_CONSOLE_SIGN_IN';
export type DenialReason =
  | 'DENIAL_REASON_UNSPECIFIED'
  | 'DENIAL_REASON_MISSING_CREDENTIAL'
  | 'DENIAL_REASON_MALFORMED_CREDENTIAL'
  | 'DENIAL_REASON_UNKNOWN_KEY'
  | 'DENIAL_REASON_KEY_REVOKED'
  | 'DENIAL_REASON_KEY_EXPIRED'
  | 'DENIAL_REASON_TOKEN_INVALID'
  | 'DENIAL_REASON_TOKEN_EXPIRED'
  | 'DENIAL_REASON_UNKNOWN_TENANT'
  | 'DENIAL_REASON_ROLE_FORBIDDEN'
  | 'DENIAL_REASON_MODEL_FORBIDDEN'
  | 'DENIAL_REASON_RATE_LIMITED_REQUESTS'
  | 'DENIAL_REASON_RATE_LIMITED_TOKENS'
  | 'DENIAL_REASON_BUDGET_EXHAUSTED';
export type Outcome =
  | 'OUTCOME_UNSPECIFIED'
  | 'OUTCOME_ALLOWED'
  | 'OUTCOME_DENIED'
  | 'OUTCOME_SUCCEEDED'
  | 'OUTCOME_FAILED'
  | 'OUTCOME_CANCELLED'
  | 'OUTCOME_INTERRUPTED';
export type RecordKind =
  | 'RECORD_KIND_UNSPECIFIED'
  | 'RECORD_KIND_REQUEST'
  | 'RECORD_KIND_COMPLETION'
  | 'RECORD_KIND_ADMIN_ACTION'
  | 'RECORD_KIND_USAGE';
export type ContentCapture =
  'CONTENT_CAPTURE_UNSPECIFIED' | 'CONTENT_CAPTURE_NONE' | 'CONTENT_CAPTURE_DIGEST' | 'CONTENT_CAPTURE_FULL';
export type ExportFormat = 'EXPORT_FORMAT_UNSPECIFIED' | 'EXPORT_FORMAT_JSONL' | 'EXPORT_FORMAT_CSV';
export type VerifyFailure =
  | 'VERIFY_FAILURE_UNSPECIFIED'
  | 'VERIFY_FAILURE_RECORD_ALTERED'
  | 'VERIFY_FAILURE_RECORD_MISSING'
  | 'VERIFY_FAILURE_RECORD_INSERTED'
  | 'VERIFY_FAILURE_CHAIN_BROKEN'
  | 'VERIFY_FAILURE_CHECKPOINT_MISMATCH'
  | 'VERIFY_FAILURE_CHECKPOINT_SIGNATURE_INVALID'
  | 'VERIFY_FAILURE_CHECKPOINT_MISSING'
  | 'VERIFY_FAILURE_WITNESS_MISMATCH'
  | 'VERIFY_FAILURE_LOG_TRUNCATED';

export interface Principal {
  id: string;
  kind: PrincipalKind;
  name: string;
  tenant: string;
  role: Role;
  global: boolean;
}

/** For x-ratelimit-* headers; a limit of 0 means unlimited. */
export interface RateLimit {
  requestsLimit: number;
  requestsRemaining: number;
  requestsResetSeconds: number;
  tokensLimit: number;
  tokensRemaining: number;
  tokensResetSeconds: number;
}

export interface AuthorizeRequest {
  credential: string;
  model?: string;
  action: Action;
  requestId: string;
  clientAddress?: string;
  userAgent?: string;
  requestBody?: Buffer | Uint8Array;
  endUser?: string;
  clientRequestId?: string;
  reserveTokens?: number;
  leaseSeconds?: number;
}

export interface AuthorizeResponse {
  allowed: boolean;
  denialReason: DenialReason;
  grpcStatus: number;
  message: string;
  /** Absent (null) when the credential was not authenticated. */
  principal: Principal | null;
  rateLimit: RateLimit | null;
  retryAfterSeconds: number;
  auditSequence: number;
  allowedModels: string[];
  allModels: boolean;
  contentCapture: ContentCapture;
  /** x-airlock-audit-receipt; '' when no record was committed. */
  auditReceipt: string;
}

export interface StreamingAuthorizeRequest {
  request: AuthorizeRequest;
}

export interface StreamingAuthorizeResponse {
  authorization: AuthorizeResponse | null;
  /** false on the early decision, true once the request record has committed. */
  recorded: boolean;
}

export interface CompleteRequest {
  requestId: string;
  outcome: Outcome;
  statusCode?: number;
  errorClass?: string;
  promptTokens?: number;
  completionTokens?: number;
  cachedTokens?: number;
  latencyMs?: number;
  timeToFirstTokenMs?: number;
  worker?: string;
  responseBody?: Buffer | Uint8Array;
  responseBodyBytes?: number;
  /** The answering model's file SHA-256 and signer, as its worker reported them. */
  modelSha256?: string;
  modelSigner?: string;
}

export interface CompleteResponse {
  auditSequence: number;
}

export interface RecordRefusalRequest {
  requestId: string;
  clientRequestId?: string;
  action?: string;
  model?: string;
  clientAddress?: string;
  userAgent?: string;
  statusCode?: number;
  errorClass?: string;
}

export interface RecordRefusalResponse {
  auditSequence: number;
}

export interface ReportUsageRequest {
  requestId: string;
  worker?: string;
  promptTokens?: number;
  completionTokens?: number;
  generationId?: string;
}

export type ReportUsageResponse = Record<string, never>;

export interface AppendAdminActionRequest {
  credential: string;
  requestId: string;
  action: string;
  target?: string;
  detailsJson?: string;
  outcome: Outcome;
  statusCode?: number;
  errorClass?: string;
  clientAddress?: string;
  userAgent?: string;
}

export interface AppendAdminActionResponse {
  auditSequence: number;
}

export interface Tenant {
  id: string;
  name: string;
  allowedModels: string[];
  requestsPerMinute: number;
  tokensPerMinute: number;
  tokensPerDay: number;
  tokensPerMonth: number;
  contentCapture: ContentCapture;
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface UpsertTenantRequest {
  credential: string;
  tenant: Partial<Tenant> & { id: string };
  requestId?: string;
  clientAddress?: string;
  userAgent?: string;
  /** Tenant fields to change (proto names); others keep their stored values. Empty: all of them. */
  updateFields?: string[];
}

export interface UpsertTenantResponse {
  tenant: Tenant;
  created: boolean;
}

export interface ListTenantsRequest {
  credential: string;
}

export interface ListTenantsResponse {
  tenants: Tenant[];
}

export interface ApiKey {
  id: string;
  tenant: string;
  name: string;
  role: Role;
  allowedModels: string[];
  requestsPerMinute: number;
  tokensPerMinute: number;
  tokensPerDay: number;
  tokensPerMonth: number;
  global: boolean;
  expiresAt: string;
  createdBy: string;
  createdAt: string;
  revokedAt: string;
}

export interface CreateApiKeyRequest {
  credential: string;
  tenant: string;
  name: string;
  role: Role;
  allowedModels?: string[];
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  tokensPerDay?: number;
  tokensPerMonth?: number;
  global?: boolean;
  expiresAt?: string;
  requestId?: string;
  clientAddress?: string;
  userAgent?: string;
}

export interface CreateApiKeyResponse {
  key: ApiKey;
  /** The whole key text, shown once. */
  secret: string;
}

export interface ListApiKeysRequest {
  credential: string;
  tenant?: string;
  includeRevoked?: boolean;
}

export interface ListApiKeysResponse {
  keys: ApiKey[];
}

export interface RevokeApiKeyRequest {
  credential: string;
  keyId: string;
  requestId?: string;
  clientAddress?: string;
  userAgent?: string;
}

export interface RevokeApiKeyResponse {
  key: ApiKey;
}

export interface AuditRecord {
  sequence: number;
  time: string;
  kind: RecordKind;
  requestId: string;
  principalId: string;
  principalKind: PrincipalKind;
  tenant: string;
  role: Role;
  action: string;
  model: string;
  worker: string;
  clientAddress: string;
  userAgent: string;
  outcome: Outcome;
  statusCode: number;
  errorClass: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  latencyMs: number;
  timeToFirstTokenMs: number;
  contentCapture: ContentCapture;
  requestDigest: string;
  responseDigest: string;
  contentKeyId: string;
  requestCiphertext: string;
  responseCiphertext: string;
  target: string;
  detailsJson: string;
  prevHash: string;
  hash: string;
  clientRequestId: string;
  fieldFlags: string;
  modelSha256: string;
  modelSigner: string;
}

export interface AuditFilter {
  startTime?: string;
  endTime?: string;
  tenant?: string;
  principalId?: string;
  model?: string;
  outcome?: Outcome;
  kind?: RecordKind;
  requestId?: string;
  fromSequence?: number;
  toSequence?: number;
}

export interface QueryAuditRecordsRequest {
  credential: string;
  filter?: AuditFilter;
  pageSize?: number;
  pageToken?: string;
}

export interface QueryAuditRecordsResponse {
  records: AuditRecord[];
  nextPageToken: string;
}

export interface ExportAuditRecordsRequest {
  credential: string;
  filter?: AuditFilter;
  format?: ExportFormat;
  requestId?: string;
  clientAddress?: string;
  userAgent?: string;
}

export interface ExportAuditRecordsResponse {
  data: Buffer;
  recordCount: number;
}

export interface VerifyAuditChainRequest {
  credential: string;
  fromLastCheckpoint?: boolean;
}

export interface VerifyAuditChainResponse {
  ok: boolean;
  failedSequence: number;
  failure: VerifyFailure;
  message: string;
  recordsChecked: number;
  firstSequence: number;
  lastSequence: number;
  anchorCheckpointSequence: number;
  checkpointsChecked: number;
  lastCheckpointSequence: number;
  unsignedTail: number;
  witnessedCheckpoints: number;
  lastWitnessedTreeSize: number;
}

export interface Checkpoint {
  sequence: number;
  recordHash: string;
  time: string;
  keyId: string;
  signature: string;
  rootHash: string;
  previousDigest: string;
}

export interface SigningKey {
  keyId: string;
  publicKeyPem: string;
}

export interface ListAuditCheckpointsRequest {
  credential: string;
  fromSequence?: number;
  pageSize?: number;
}

export interface ListAuditCheckpointsResponse {
  checkpoints: Checkpoint[];
  signingKeys: SigningKey[];
}

export interface StoreResponseRequest {
  credential: string;
  requestId: string;
  responseId: string;
  responseJson: Buffer | Uint8Array;
  inputItemsJson: Buffer | Uint8Array;
}

export interface StoreResponseResponse {
  expiresAt: string;
}

export interface GetStoredResponseRequest {
  credential: string;
  responseId: string;
}

export interface GetStoredResponseResponse {
  responseJson: Buffer;
  inputItemsJson: Buffer;
}

export interface DeleteStoredResponseRequest {
  credential: string;
  responseId: string;
}

export type DeleteStoredResponseResponse = Record<string, never>;
export interface GetAuditInclusionProofRequest {
  credential: string;
  sequence?: number;
  treeSize?: number;
  receipt?: string;
}

export interface GetAuditInclusionProofResponse {
  sequence: number;
  recordHash: string;
  leafHash: string;
  auditPath: string[];
  checkpoint: Checkpoint | null;
  receiptValid: boolean;
}

export interface GetAuditConsistencyProofRequest {
  credential: string;
  firstTreeSize: number;
  secondTreeSize?: number;
}

export interface GetAuditConsistencyProofResponse {
  first: Checkpoint | null;
  second: Checkpoint | null;
  proof: string[];
}

export interface GetAuditRecordContentRequest {
  credential: string;
  sequence: number;
  requestId?: string;
  clientAddress?: string;
  userAgent?: string;
}

export interface GetAuditRecordContentResponse {
  sequence: number;
  requestId: string;
  requestSequence: number;
  requestBody: Uint8Array;
  responseSequence: number;
  responseBody: Uint8Array;
  readSequence: number;
}
