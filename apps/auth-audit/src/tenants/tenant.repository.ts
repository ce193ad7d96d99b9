import type { Insertable, Kysely, Selectable } from 'kysely';
import type { AuthAuditDatabase, TenantsTable } from '../database/database-schema.js';
import type { Limits } from '../auth/principal.js';

export type ContentCaptureMode = 'none' | 'digest' | 'full';

/** A tenant's policy: which models, how much, and what of the content the audit log keeps. */
export interface Tenant {
  id: string;
  name: string;
  allowedModels: string[];
  limits: Limits;
  contentCapture: ContentCaptureMode;
  disabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

type Db = Kysely<AuthAuditDatabase>;

export function tenantFromRow(row: Selectable<TenantsTable>): Tenant {
  return {
    id: row.id,
    name: row.name,
    allowedModels: JSON.parse(row.allowed_models) as string[],
    limits: {
      requestsPerMinute: row.requests_per_minute,
      tokensPerMinute: row.tokens_per_minute,
      tokensPerDay: row.tokens_per_day,
      tokensPerMonth: row.tokens_per_month,
    },
    contentCapture: row.content_capture as ContentCaptureMode,
    disabled: row.disabled,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function tenantToRow(tenant: Tenant): Insertable<TenantsTable> {
  return {
    id: tenant.id,
    name: tenant.name,
    allowed_models: JSON.stringify(tenant.allowedModels),
    requests_per_minute: tenant.limits.requestsPerMinute,
    tokens_per_minute: tenant.limits.tokensPerMinute,
    tokens_per_day: tenant.limits.tokensPerDay,
    tokens_per_month: tenant.limits.tokensPerMonth,
    content_capture: tenant.contentCapture,
    disabled: tenant.disabled,
    created_at: tenant.createdAt,
    updated_at: tenant.updatedAt,
  };
}

export const tenantRepository = {
  async findByIds(db: Db, ids: string[]): Promise<Map<string, Tenant>> {
    if (ids.length === 0) return new Map();
    const rows = await db.selectFrom('tenants').selectAll().where('id', 'in', ids).execute();
    return new Map(rows.map((row) => [row.id, tenantFromRow(row)]));
  },

  async findById(db: Db, id: string): Promise<Tenant | undefined> {
    const row = await db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? tenantFromRow(row) : undefined;
  },

  async list(db: Db): Promise<Tenant[]> {
    const rows = await db.selectFrom('tenants').selectAll().orderBy('id').execute();
    return rows.map(tenantFromRow);
  },

  /** Inserts or replaces the tenant's settings; created_at survives an update. */
  async upsert(db: Db, tenant: Tenant): Promise<{ tenant: Tenant; created: boolean }> {
    const row = tenantToRow(tenant);
    const saved = await db
      .insertInto('tenants')
      .values(row)
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({
          name: row.name,
          allowed_models: row.allowed_models,
          requests_per_minute: row.requests_per_minute,
          tokens_per_minute: row.tokens_per_minute,
          tokens_per_day: row.tokens_per_day,
          tokens_per_month: row.tokens_per_month,
          content_capture: row.content_capture,
          disabled: row.disabled,
          updated_at: row.updated_at,
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    const result = tenantFromRow(saved);
    return { tenant: result, created: result.createdAt.getTime() === tenant.createdAt.getTime() };
  },
};
