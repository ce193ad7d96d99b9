// Shapes of the gateway's /console/api and /admin/v1 answers (snake_case, short enum names).

export type Role = 'admin' | 'auditor' | 'user' | 'tenant_admin';

export type Session =
  | { signed_in: false; oidc: boolean }
  | {
      signed_in: true;
      principal: string;
      name: string;
      tenant: string;
      role: Role;
      global: boolean;
      kind: 'api_key' | 'oidc';
      expires_at: string;
      csrf_token: string;
    };

export type SignedIn = Extract<Session, { signed_in: true }>;

export interface AuditRecord {
  sequence: number;
  time: string;
  kind: 'request' | 'completion' | 'usage' | 'admin_action';
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
  latency_ms: number;
  time_to_first_token_ms: number;
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
  client_request_id: string;
  field_flags: string;
}

export interface RecordPage {
  data: AuditRecord[];
  next_page_token: string | null;
}

export interface VerifyResult {
  ok: boolean;
  failed_sequence: number;
  failure: string;
  message: string;
  records_checked: number;
  first_sequence: number;
  last_sequence: number;
  anchor_checkpoint_sequence: number;
  checkpoints_checked: number;
  last_checkpoint_sequence: number;
  unsigned_tail: number;
  witnessed_checkpoints: number;
  last_witnessed_tree_size: number;
}

export interface Checkpoint {
  sequence: number;
  record_hash: string;
  time: string;
  key_id: string;
  signature: string;
  root_hash: string;
  previous_digest: string;
}

export interface CheckpointList {
  checkpoints: Checkpoint[];
  signing_keys: { key_id: string; public_key_pem: string }[];
}

export interface ApiKey {
  id: string;
  tenant: string;
  name: string;
  role: Role;
  allowed_models: string[];
  requests_per_minute: number;
  tokens_per_minute: number;
  tokens_per_day: number;
  tokens_per_month: number;
  global: boolean;
  expires_at: string;
  created_by: string;
  created_at: string;
  revoked_at: string;
}

export interface Tenant {
  id: string;
  name: string;
  allowed_models: string[];
  requests_per_minute: number;
  tokens_per_minute: number;
  tokens_per_day: number;
  tokens_per_month: number;
  content_capture: 'none' | 'digest' | 'full';
  disabled: boolean;
  created_at: string;
  updated_at: string;
}

export interface ModelReplicas {
  deployment: string | null;
  desired: number | null;
  current: number | null;
  ready: number;
  error?: string;
}

export interface ModelStatus {
  id: string;
  workers: string[];
  queued: number;
  load: {
    workers_alive: number;
    slots_busy: number;
    slots_total: number;
    worker_queue: number;
    tokens_per_second: number;
  };
  replicas: ModelReplicas | null;
}

export interface WorkerStatus {
  address: string;
  worker_id: string | null;
  alive: boolean;
  draining: boolean;
  models: { model_id?: string; id?: string; state?: string }[];
}

export interface ModelsAnswer {
  data: ModelStatus[];
  workers: WorkerStatus[];
}

export interface InclusionProof {
  sequence: number;
  record_hash: string;
  leaf_hash: string;
  audit_path: string[];
  checkpoint: Checkpoint;
  receipt_valid: boolean;
}

/** GET /admin/v1/audit/records/{sequence}/content: decrypted bodies (null when none was captured). */
export interface RecordContent {
  object: 'audit.record_content';
  sequence: number;
  request_id: string;
  request_sequence: number | null;
  request_body: string | null;
  response_sequence: number | null;
  response_body: string | null;
  read_sequence: number;
}
