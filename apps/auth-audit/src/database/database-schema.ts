import type { ColumnType, Generated } from 'kysely';

// Kysely's view of the one schema both drivers (pg, PGlite) serve. int8 columns arrive as numbers (see
// database.ts); model allowlists are JSON text so both drivers pass them alike.

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface TenantsTable {
  id: string;
  name: string;
  allowed_models: string;
  requests_per_minute: number;
  tokens_per_minute: number;
  tokens_per_day: number;
  tokens_per_month: number;
  content_capture: string;
  disabled: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  role: string;
  /** Hex SHA-256 of the secret part; the key itself is never stored. */
  secret_hash: string;
  allowed_models: string;
  requests_per_minute: number;
  tokens_per_minute: number;
  tokens_per_day: number;
  tokens_per_month: number;
  global: boolean;
  expires_at: Timestamp | null;
  created_by: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface QuotaCountersTable {
  /** "key:<id>" or "tenant:<id>". */
  subject: string;
  /** "minute" | "day" | "month". */
  window_kind: string;
  window_start: Timestamp;
  requests: number;
  tokens: number;
}

export interface AuditRecordsTable {
  sequence: number;
  time: Timestamp;
  kind: string;
  request_id: string;
  principal_id: string;
  principal_kind: string;
  tenant: string;
  role: string;
  action: string;
  model: string;
  worker: string;
  client_address: string;
  user_agent: string;
  outcome: string;
  status_code: number;
  error_class: string;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  latency_us: number;
  ttft_us: number;
  content_capture: string;
  request_digest: string;
  response_digest: string;
  content_key_id: string;
  request_ciphertext: string;
  response_ciphertext: string;
  target: string;
  details_json: string;
  prev_hash: string;
  hash: string;
  /** The client's own x-request-id, kept beside the server-issued request_id (canonical v2). */
  client_request_id: string;
  /** Fields stored altered to be storable, e.g. "user_agent:truncated,model:escaped" (canonical v2). */
  field_flags: string;
  /** Completions: hex SHA-256 of the answering model's file (comma-separated when several; canonical v3). */
  model_sha256: string;
  /** Completions: who signed it, "sha256:<key fingerprint>", '' when unsigned (aligned with model_sha256). */
  model_signer: string;
}

/** Allowed requests whose completion record is not in yet: the lease the sweeper closes, the reservation. */
export interface OpenRequestsTable {
  request_id: string;
  opened_at: Timestamp;
  /** When the sweeper may close it as interrupted (the gateway's request timeout plus a margin). */
  lease_until: Timestamp;
  /** Quota subjects the reservation was charged to, JSON array of "key:<id>" / "tenant:<id>". */
  subjects: string;
  reserved_tokens: number;
  /**
   * Set once its completion (or interruption) record is written; the row stays a while after, so that a
   * worker's later usage report is charged only its excess over what was charged (`charged_*`).
   */
  closed_at: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  charged_prompt_tokens: ColumnType<number, number | undefined, number>;
  charged_completion_tokens: ColumnType<number, number | undefined, number>;
}

/** Usage a worker reports for generations it ran, so a gateway crash cannot lose it. */
export interface WorkerUsageTable {
  request_id: string;
  /** The worker's id per generation: a retried report is one row. */
  generation_id: ColumnType<string, string | undefined, string>;
  worker: string;
  prompt_tokens: number;
  completion_tokens: number;
  reported_at: Timestamp;
}

export interface AuditChainHeadTable {
  id: number;
  sequence: number;
  hash: string;
}

export interface AuditCheckpointsTable {
  sequence: number;
  record_hash: string;
  time: Timestamp;
  key_id: string;
  signature: string;
  /** v2: hex RFC 9162 root over records 1..sequence; '' on v1 checkpoints. */
  root_hash: string;
  /** v2: hex SHA-256 of the previous checkpoint's signed text (64 zeros for the first). */
  previous_digest: string;
  /** v2: JSON array of the tree's right-edge subtree roots (hex), to resume the tree at a retention cut. */
  frontier: string;
}

export interface AuditSigningKeysTable {
  key_id: string;
  public_key_pem: string;
  created_at: Timestamp;
}

/** One row: the youngest records audit_prune() may remove (AIRLOCK_AUDIT_RETENTION_DAYS, set by the owner). */
export interface AuditRetentionPolicyTable {
  id: number;
  min_age_days: number;
}

/** Responses API answers kept for `previous_response_id` and GET; both bodies sealed like `full` capture. */
export interface StoredResponsesTable {
  id: string;
  tenant_id: string;
  principal_id: string;
  request_id: string;
  content_key_id: string;
  response_ciphertext: string;
  input_items_ciphertext: string;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: Generated<Timestamp>;
}

export interface AuthAuditDatabase {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  quota_counters: QuotaCountersTable;
  stored_responses: StoredResponsesTable;
  audit_records: AuditRecordsTable;
  audit_chain_head: AuditChainHeadTable;
  audit_open_requests: OpenRequestsTable;
  audit_worker_usage: WorkerUsageTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_signing_keys: AuditSigningKeysTable;
  audit_retention_policy: AuditRetentionPolicyTable;
  airlock_schema_migrations: SchemaMigrationsTable;
}
