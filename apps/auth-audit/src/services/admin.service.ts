import type { audit } from '@airlock/contracts';
import { actorOf, type AdminJournal } from '../audit/admin-journal.js';
import type { ContentSealer } from '../audit/content-sealer.js';
import { generateApiKey } from '../keys/api-key-format.js';
import { apiKeyRepository, type ApiKeyRecord } from '../keys/api-key.repository.js';
import { tenantRepository, type Tenant } from '../tenants/tenant.repository.js';
import type { AuthAuditDb } from '../database/database.js';
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from '../errors.js';
import type { Principal } from '../auth/principal.js';
import {
  apiKeyToContract,
  captureFromContract,
  roleFromContract,
  tenantToContract,
} from '../grpc/contract-mapping.js';
import { count, jsonObjectText, modelList, tenantId, text, timestamp } from '../validation.js';
import type { AdminGate } from './admin-gate.js';

const ADMIN_ACTION_PATTERN = /^[a-z0-9._-]{1,64}$/;
const UINT32_MAX = 4_294_967_295;

/** Tenants, API keys and gateway-reported admin actions; each change commits with its audit record. */
export class AdminService {
  constructor(
    private readonly db: AuthAuditDb,
    private readonly gate: AdminGate,
    private readonly journal: AdminJournal,
    private readonly sealer: ContentSealer,
  ) {}

  async upsertTenant(request: audit.UpsertTenantRequest): Promise<audit.UpsertTenantResponse> {
    const { principal, context } = await this.gate.admit(request, 'tenants.write');
    const input = request.tenant ?? ({} as Partial<audit.Tenant>);
    const id = tenantId(input.id, 'tenant.id');
    requireOwnTenant(principal, id);
    const capture = captureFromContract(input.contentCapture);
    if (capture === 'full' && !this.sealer.canEncrypt) {
      throw failedPrecondition('full content capture needs AIRLOCK_AUDIT_CONTENT_KEYS_FILE');
    }
    const fields = updateFields(request.updateFields);
    if (!principal.global && [...fields].some((field) => !QUOTA_FIELDS.has(field))) {
      throw permissionDenied("a tenant admin may change only its tenant's quotas", 'tenant_scope');
    }
    const given = {
      name: text(input.name || id, 'tenant.name', 128),
      allowedModels: modelList(input.allowedModels, 'tenant.allowed_models'),
      limits: {
        requestsPerMinute: count(input.requestsPerMinute, 'tenant.requests_per_minute', UINT32_MAX),
        tokensPerMinute: count(input.tokensPerMinute, 'tenant.tokens_per_minute'),
        tokensPerDay: count(input.tokensPerDay, 'tenant.tokens_per_day'),
        tokensPerMonth: count(input.tokensPerMonth, 'tenant.tokens_per_month'),
      },
      contentCapture: capture,
      disabled: input.disabled ?? false,
    };
    const { result } = await this.journal.run(actorOf(principal), context, async (trx) => {
      const existing = await tenantRepository.findById(trx, id);
      if (!existing && !principal.global) throw notFound(`tenant "${id}" does not exist`);
      // PATCH: an existing tenant changes only the fields named; a new one takes defaults for the rest.
      const settings = existing ? mergeTenant(existing, given, fields) : given;
      if (settings.disabled && !existing?.disabled) {
        await refuseLastAdminLockout(trx, { tenant: id });
      }
      const now = new Date();
      const tenant: Tenant = { id, ...settings, createdAt: existing?.createdAt ?? now, updatedAt: now };
      const saved = await tenantRepository.upsert(trx, tenant);
      return {
        result: { tenant: tenantToContract(saved.tenant), created: !existing },
        record: { action: existing ? 'tenants.update' : 'tenants.create', target: id, details: settings },
      };
    });
    return result;
  }

  async listTenants(request: audit.ListTenantsRequest): Promise<audit.ListTenantsResponse> {
    const admitted = await this.gate.admitRead(request, 'tenants.read');
    const principal = admitted.principal;
    const tenants = await tenantRepository.list(this.db);
    return {
      tenants: tenants.filter((t) => principal.global || t.id === principal.tenant).map(tenantToContract),
    };
  }

  async createApiKey(request: audit.CreateApiKeyRequest): Promise<audit.CreateApiKeyResponse> {
    const { principal, context } = await this.gate.admit(request, 'keys.create');
    const role = roleFromContract(request.role);
    if (!role) throw invalidArgument('role must be ROLE_ADMIN, ROLE_AUDITOR or ROLE_USER');
    if (request.global && (role === 'user' || role === 'tenant_admin'))
      throw invalidArgument('global applies to admin and auditor keys only');
    if (!principal.global && (role === 'admin' || request.global)) {
      throw permissionDenied('a tenant admin may not create admin or global keys', 'tenant_scope');
    }
    const expiresAt = timestamp(request.expiresAt, 'expires_at') ?? null;
    if (expiresAt && expiresAt <= new Date()) throw invalidArgument('expires_at is in the past');
    const tenant = tenantId(request.tenant);
    requireOwnTenant(principal, tenant);
    const generated = generateApiKey();
    const key: ApiKeyRecord = {
      id: generated.id,
      tenant,
      name: text(request.name, 'name', 128, true),
      role,
      secretHash: generated.hash,
      allowedModels: modelList(request.allowedModels, 'allowed_models'),
      limits: {
        requestsPerMinute: count(request.requestsPerMinute, 'requests_per_minute', UINT32_MAX),
        tokensPerMinute: count(request.tokensPerMinute, 'tokens_per_minute'),
        tokensPerDay: count(request.tokensPerDay, 'tokens_per_day'),
        tokensPerMonth: count(request.tokensPerMonth, 'tokens_per_month'),
      },
      global: role === 'admin' || (request.global ?? false),
      expiresAt,
      createdBy: principal.id,
      createdAt: new Date(),
      revokedAt: null,
    };
    await this.journal.run(actorOf(principal), context, async (trx) => {
      if (!(await tenantRepository.findById(trx, tenant)))
        throw notFound(`tenant "${tenant}" does not exist`);
      await apiKeyRepository.insert(trx, key);
      const details: Partial<ApiKeyRecord> = { ...key };
      delete details.secretHash;
      return { result: undefined, record: { action: 'keys.create', target: key.id, details } };
    });
    return { key: apiKeyToContract(key), secret: generated.text };
  }

  async listApiKeys(request: audit.ListApiKeysRequest): Promise<audit.ListApiKeysResponse> {
    const admitted = await this.gate.admit(request, 'keys.list');
    const principal = admitted.principal;
    let tenant = request.tenant ? tenantId(request.tenant) : undefined;
    if (!principal.global) {
      if (tenant) requireOwnTenant(principal, tenant);
      tenant = principal.tenant;
    }
    await this.gate.recordRead(admitted, 'keys.list', {
      tenant: tenant ?? '',
      includeRevoked: request.includeRevoked ?? false,
    });
    const keys = await apiKeyRepository.list(this.db, {
      tenant,
      includeRevoked: request.includeRevoked ?? false,
    });
    return { keys: keys.map(apiKeyToContract) };
  }

  async revokeApiKey(request: audit.RevokeApiKeyRequest): Promise<audit.RevokeApiKeyResponse> {
    const { principal, context } = await this.gate.admit(request, 'keys.revoke');
    const keyId = text(request.keyId, 'key_id', 32, true);
    const { result } = await this.journal.run(actorOf(principal), context, async (trx) => {
      if (!principal.global) {
        const target = await apiKeyRepository.findById(trx, keyId);
        // Another tenant's key is "not found" to a tenant admin: ids of other tenants are not revealed.
        if (!target || target.tenant !== principal.tenant) throw notFound(`no API key with id "${keyId}"`);
      }
      await refuseLastAdminLockout(trx, { keyId });
      const revoked = await apiKeyRepository.revoke(trx, keyId, new Date());
      if (!revoked) throw notFound(`no API key with id "${keyId}"`);
      return { result: revoked, record: { action: 'keys.revoke', target: keyId } };
    });
    return { key: apiKeyToContract(result) };
  }

  async appendAdminAction(request: audit.AppendAdminActionRequest): Promise<audit.AppendAdminActionResponse> {
    const { principal, context } = await this.gate.admit(request, 'admin.action');
    if (!request.action || !ADMIN_ACTION_PATTERN.test(request.action)) {
      throw invalidArgument('action must be 1..64 characters of [a-z0-9._-]');
    }
    if (request.outcome !== 'OUTCOME_SUCCEEDED' && request.outcome !== 'OUTCOME_FAILED') {
      throw invalidArgument('outcome must be OUTCOME_SUCCEEDED or OUTCOME_FAILED');
    }
    const record = {
      action: request.action,
      target: text(request.target, 'target', 256),
      detailsJson: jsonObjectText(request.detailsJson, 'details_json'),
      outcome: request.outcome === 'OUTCOME_SUCCEEDED' ? ('succeeded' as const) : ('failed' as const),
      statusCode: count(request.statusCode, 'status_code', 999),
      errorClass: text(request.errorClass, 'error_class', 128),
    };
    const { sequence } = await this.journal.run(actorOf(principal), context, () =>
      Promise.resolve({ result: undefined, record }),
    );
    return { auditSequence: sequence };
  }
}

/** A principal that is not global (a tenant admin) acts on its own tenant only. */
function requireOwnTenant(principal: Principal, tenant: string): void {
  if (!principal.global && principal.tenant !== tenant) {
    throw permissionDenied(`role "${principal.role}" acts on its own tenant only`, 'tenant_scope');
  }
}

const QUOTA_FIELDS: ReadonlySet<string> = new Set([
  'requests_per_minute',
  'tokens_per_minute',
  'tokens_per_day',
  'tokens_per_month',
]);

const TENANT_FIELDS = [
  'name',
  'allowed_models',
  'requests_per_minute',
  'tokens_per_minute',
  'tokens_per_day',
  'tokens_per_month',
  'content_capture',
  'disabled',
] as const;
type TenantField = (typeof TENANT_FIELDS)[number];

/** The update mask, checked; empty means every field. */
function updateFields(names: string[] | undefined): ReadonlySet<TenantField> {
  if (!names || names.length === 0) return new Set(TENANT_FIELDS);
  for (const name of names) {
    if (!(TENANT_FIELDS as readonly string[]).includes(name)) {
      throw invalidArgument(`update_fields: unknown tenant field "${name.slice(0, 64)}"`);
    }
  }
  return new Set(names as TenantField[]);
}

type TenantSettings = Omit<Tenant, 'id' | 'createdAt' | 'updatedAt'>;

function mergeTenant(
  existing: Tenant,
  given: TenantSettings,
  fields: ReadonlySet<TenantField>,
): TenantSettings {
  const pick = <T>(field: TenantField, value: T, stored: T): T => (fields.has(field) ? value : stored);
  return {
    name: pick('name', given.name, existing.name),
    allowedModels: pick('allowed_models', given.allowedModels, existing.allowedModels),
    limits: {
      requestsPerMinute: pick(
        'requests_per_minute',
        given.limits.requestsPerMinute,
        existing.limits.requestsPerMinute,
      ),
      tokensPerMinute: pick(
        'tokens_per_minute',
        given.limits.tokensPerMinute,
        existing.limits.tokensPerMinute,
      ),
      tokensPerDay: pick('tokens_per_day', given.limits.tokensPerDay, existing.limits.tokensPerDay),
      tokensPerMonth: pick('tokens_per_month', given.limits.tokensPerMonth, existing.limits.tokensPerMonth),
    },
    contentCapture: pick('content_capture', given.contentCapture, existing.contentCapture),
    disabled: pick('disabled', given.disabled, existing.disabled),
  };
}

/**
 * Disabling a tenant or revoking a key must leave at least one active admin key in an enabled tenant:
 * otherwise nobody could administer the platform again (short of a new AIRLOCK_ADMIN_KEY and a restart).
 */
async function refuseLastAdminLockout(
  trx: Parameters<typeof apiKeyRepository.countActiveAdmins>[0],
  without: { tenant?: string; keyId?: string },
): Promise<void> {
  const remaining = await apiKeyRepository.countActiveAdmins(trx, new Date(), without);
  const before = await apiKeyRepository.countActiveAdmins(trx, new Date());
  if (before > 0 && remaining === 0) {
    throw failedPrecondition('this would lock out the last active admin; create another admin key first');
  }
}
