import type { Insertable, Kysely, Selectable } from 'kysely';
import type { ApiKeysTable, AuthAuditDatabase } from '../database/database-schema.js';
import type { Limits, RoleName } from '../auth/principal.js';
import { tenantFromRow, type Tenant } from '../tenants/tenant.repository.js';

/** An API key as stored: everything but the key text, of which only the hash is kept. */
export interface ApiKeyRecord {
  id: string;
  tenant: string;
  name: string;
  role: RoleName;
  secretHash: string;
  allowedModels: string[];
  limits: Limits;
  global: boolean;
  expiresAt: Date | null;
  createdBy: string;
  createdAt: Date;
  revokedAt: Date | null;
}

type Db = Kysely<AuthAuditDatabase>;

export function apiKeyFromRow(row: Selectable<ApiKeysTable>): ApiKeyRecord {
  return {
    id: row.id,
    tenant: row.tenant_id,
    name: row.name,
    role: row.role as RoleName,
    secretHash: row.secret_hash,
    allowedModels: JSON.parse(row.allowed_models) as string[],
    limits: {
      requestsPerMinute: row.requests_per_minute,
      tokensPerMinute: row.tokens_per_minute,
      tokensPerDay: row.tokens_per_day,
      tokensPerMonth: row.tokens_per_month,
    },
    global: row.global,
    expiresAt: row.expires_at,
    createdBy: row.created_by,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

function apiKeyToRow(key: ApiKeyRecord): Insertable<ApiKeysTable> {
  return {
    id: key.id,
    tenant_id: key.tenant,
    name: key.name,
    role: key.role,
    secret_hash: key.secretHash,
    allowed_models: JSON.stringify(key.allowedModels),
    requests_per_minute: key.limits.requestsPerMinute,
    tokens_per_minute: key.limits.tokensPerMinute,
    tokens_per_day: key.limits.tokensPerDay,
    tokens_per_month: key.limits.tokensPerMonth,
    global: key.global,
    expires_at: key.expiresAt,
    created_by: key.createdBy,
    created_at: key.createdAt,
    revoked_at: key.revokedAt,
  };
}

export const apiKeyRepository = {
  async findByIds(db: Db, ids: string[]): Promise<Map<string, ApiKeyRecord>> {
    if (ids.length === 0) return new Map();
    const rows = await db.selectFrom('api_keys').selectAll().where('id', 'in', ids).execute();
    return new Map(rows.map((row) => [row.id, apiKeyFromRow(row)]));
  },

  /** Keys and the tenants they belong to, in one round trip (the hot path of every batch). */
  async findWithTenants(
    db: Db,
    ids: string[],
  ): Promise<{ keys: Map<string, ApiKeyRecord>; tenants: Map<string, Tenant> }> {
    const keys = new Map<string, ApiKeyRecord>();
    const tenants = new Map<string, Tenant>();
    if (ids.length === 0) return { keys, tenants };
    const rows = await db
      .selectFrom('api_keys')
      .leftJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
      .selectAll('api_keys')
      .select([
        'tenants.id as tenant_row_id',
        'tenants.name as tenant_name',
        'tenants.allowed_models as tenant_allowed_models',
        'tenants.requests_per_minute as tenant_requests_per_minute',
        'tenants.tokens_per_minute as tenant_tokens_per_minute',
        'tenants.tokens_per_day as tenant_tokens_per_day',
        'tenants.tokens_per_month as tenant_tokens_per_month',
        'tenants.content_capture as tenant_content_capture',
        'tenants.disabled as tenant_disabled',
        'tenants.created_at as tenant_created_at',
        'tenants.updated_at as tenant_updated_at',
      ])
      .where('api_keys.id', 'in', ids)
      .execute();
    for (const row of rows) {
      keys.set(row.id, apiKeyFromRow(row));
      if (row.tenant_row_id !== null) {
        tenants.set(
          row.tenant_row_id,
          tenantFromRow({
            id: row.tenant_row_id,
            name: row.tenant_name!,
            allowed_models: row.tenant_allowed_models!,
            requests_per_minute: row.tenant_requests_per_minute!,
            tokens_per_minute: row.tenant_tokens_per_minute!,
            tokens_per_day: row.tenant_tokens_per_day!,
            tokens_per_month: row.tenant_tokens_per_month!,
            content_capture: row.tenant_content_capture!,
            disabled: row.tenant_disabled!,
            created_at: row.tenant_created_at!,
            updated_at: row.tenant_updated_at!,
          }),
        );
      }
    }
    return { keys, tenants };
  },

  async findById(db: Db, id: string): Promise<ApiKeyRecord | undefined> {
    const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? apiKeyFromRow(row) : undefined;
  },

  async insert(db: Db, key: ApiKeyRecord): Promise<void> {
    await db.insertInto('api_keys').values(apiKeyToRow(key)).execute();
  },

  /** Replaces the hash of an existing key (the bootstrap admin key after its Secret changed). */
  async replaceSecretHash(db: Db, id: string, secretHash: string): Promise<void> {
    await db
      .updateTable('api_keys')
      .set({ secret_hash: secretHash, revoked_at: null })
      .where('id', '=', id)
      .execute();
  },

  /** Revokes every active bootstrap-created key but `keepId` (an admin key rotated to a new id); returns their ids. */
  async revokeOtherBootstrapKeys(db: Db, keepId: string, createdBy: string, at: Date): Promise<string[]> {
    const rows = await db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('created_by', '=', createdBy)
      .where('id', '!=', keepId)
      .where('revoked_at', 'is', null)
      .returning('id')
      .execute();
    return rows.map((row) => row.id).sort();
  },

  async list(db: Db, filter: { tenant?: string; includeRevoked: boolean }): Promise<ApiKeyRecord[]> {
    let query = db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id');
    if (filter.tenant) query = query.where('tenant_id', '=', filter.tenant);
    if (!filter.includeRevoked) query = query.where('revoked_at', 'is', null);
    return (await query.execute()).map(apiKeyFromRow);
  },

  /** Sets revoked_at once; revoking again keeps the first time. */
  async revoke(db: Db, id: string, at: Date): Promise<ApiKeyRecord | undefined> {
    await db
      .updateTable('api_keys')
      .set({ revoked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    return this.findById(db, id);
  },

  /** Admin keys that are usable now (not revoked or expired, tenant enabled), optionally leaving some out. */
  async countActiveAdmins(
    db: Db,
    now: Date,
    without: { tenant?: string; keyId?: string } = {},
  ): Promise<number> {
    let query = db
      .selectFrom('api_keys')
      .innerJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
      .select((eb) => eb.fn.countAll<number>().as('count'))
      .where('api_keys.role', '=', 'admin')
      .where('api_keys.revoked_at', 'is', null)
      .where('tenants.disabled', '=', false)
      .where((eb) => eb.or([eb('api_keys.expires_at', 'is', null), eb('api_keys.expires_at', '>', now)]));
    if (without.tenant !== undefined) query = query.where('api_keys.tenant_id', '!=', without.tenant);
    if (without.keyId !== undefined) query = query.where('api_keys.id', '!=', without.keyId);
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.count);
  },
};
