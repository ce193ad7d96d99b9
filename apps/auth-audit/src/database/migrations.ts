import { sql, type Kysely } from 'kysely';
import type { AuthAuditDatabase } from './database-schema.js';
import { hardenAuditGuards } from './audit-guards.js';
import { grantServiceRoles, ownsSchema, type ServiceRoles } from './service-roles.js';

/** One schema for PostgreSQL and PGlite; append new versions, never edit applied ones. */
export interface Migration {
  version: number;
  name: string;
  up(db: Kysely<AuthAuditDatabase>): Promise<void>;
}

export const GENESIS_HASH = '0'.repeat(64);
export const DEFAULT_TENANT_ID = 'default';

/** Advisory lock key that serialises migrations across replicas ("ARLK"). */
export const MIGRATION_LOCK_KEY = 0x41524c4b;

// Key settings and their quota columns are shared by tenants and api_keys.
const LIMIT_COLUMNS = [
  'requests_per_minute',
  'tokens_per_minute',
  'tokens_per_day',
  'tokens_per_month',
] as const;

async function createIdentityTables(db: Kysely<AuthAuditDatabase>): Promise<void> {
  let tenants = db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('allowed_models', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('content_capture', 'text', (c) => c.notNull().defaultTo('digest'))
    .addColumn('disabled', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull());
  for (const column of LIMIT_COLUMNS) {
    tenants = tenants.addColumn(column, column === 'requests_per_minute' ? 'integer' : 'bigint', (c) =>
      c.notNull().defaultTo(0),
    );
  }
  await tenants.execute();

  let keys = db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('allowed_models', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('global', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .addColumn('revoked_at', 'timestamptz');
  for (const column of LIMIT_COLUMNS) {
    keys = keys.addColumn(column, column === 'requests_per_minute' ? 'integer' : 'bigint', (c) =>
      c.notNull().defaultTo(0),
    );
  }
  await keys.execute();
  await db.schema.createIndex('api_keys_tenant').on('api_keys').column('tenant_id').execute();

  await db.schema
    .createTable('quota_counters')
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('window_kind', 'text', (c) => c.notNull())
    .addColumn('window_start', 'timestamptz', (c) => c.notNull())
    .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tokens', 'bigint', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('quota_counters_pk', ['subject', 'window_kind', 'window_start'])
    .execute();
}

async function createAuditTables(db: Kysely<AuthAuditDatabase>): Promise<void> {
  const text = ['kind', 'request_id', 'principal_id', 'principal_kind', 'tenant', 'role', 'action', 'model'];
  const moreText = ['worker', 'client_address', 'user_agent', 'outcome', 'error_class', 'content_capture'];
  const contentText = ['request_digest', 'response_digest', 'content_key_id', 'request_ciphertext'];
  const lastText = ['response_ciphertext', 'target', 'details_json'];
  let records = db.schema
    .createTable('audit_records')
    .addColumn('sequence', 'bigint', (c) => c.primaryKey())
    .addColumn('time', 'timestamptz', (c) => c.notNull());
  for (const column of [...text, ...moreText]) {
    records = records.addColumn(column, 'text', (c) => c.notNull().defaultTo(''));
  }
  for (const column of ['status_code', 'prompt_tokens', 'completion_tokens', 'cached_tokens']) {
    records = records.addColumn(column, 'integer', (c) => c.notNull().defaultTo(0));
  }
  for (const column of ['latency_us', 'ttft_us']) {
    records = records.addColumn(column, 'bigint', (c) => c.notNull().defaultTo(0));
  }
  for (const column of [...contentText, ...lastText]) {
    records = records.addColumn(column, 'text', (c) => c.notNull().defaultTo(''));
  }
  await records
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_records_request_id').on('audit_records').column('request_id').execute();
  await db.schema.createIndex('audit_records_time').on('audit_records').column('time').execute();
  await db.schema
    .createIndex('audit_records_tenant')
    .on('audit_records')
    .columns(['tenant', 'sequence'])
    .execute();

  await db.schema
    .createTable('audit_chain_head')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('sequence', 'bigint', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.insertInto('audit_chain_head').values({ id: 1, sequence: 0, hash: GENESIS_HASH }).execute();

  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('sequence', 'bigint', (c) => c.primaryKey())
    .addColumn('record_hash', 'text', (c) => c.notNull())
    .addColumn('time', 'timestamptz', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_signing_keys')
    .addColumn('key_id', 'text', (c) => c.primaryKey())
    .addColumn('public_key_pem', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull())
    .execute();
}

/**
 * Append-only enforcement in the database itself: UPDATE, DELETE and TRUNCATE on the audit tables raise,
 * except DELETE on audit_records inside audit_prune(), which cuts only at a signed checkpoint.
 */
async function createAppendOnlyGuards(db: Kysely<AuthAuditDatabase>): Promise<void> {
  await sql`
    create function audit_append_only() returns trigger language plpgsql as $$
    begin
      if tg_op = 'DELETE' and tg_table_name = 'audit_records'
         and current_setting('airlock.audit_prune', true) = 'on' then
        return old;
      end if;
      raise exception '% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
    end $$`.execute(db);
  for (const table of ['audit_records', 'audit_checkpoints', 'audit_signing_keys']) {
    await sql`create trigger ${sql.id(`${table}_append_only`)} before update or delete on ${sql.table(table)}
      for each row execute function audit_append_only()`.execute(db);
    await sql`create trigger ${sql.id(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
      for each statement execute function audit_append_only()`.execute(db);
    await sql`revoke update, delete, truncate on ${sql.table(table)} from public`.execute(db);
  }
  await sql`
    create function audit_prune(cut bigint) returns bigint language plpgsql security definer as $$
    declare removed bigint;
    begin
      if not exists (select 1 from audit_checkpoints where sequence = cut) then
        raise exception 'no signed checkpoint at sequence %', cut using errcode = 'check_violation';
      end if;
      perform set_config('airlock.audit_prune', 'on', true);
      delete from audit_records where sequence <= cut;
      get diagnostics removed = row_count;
      perform set_config('airlock.audit_prune', 'off', true);
      return removed;
    end $$`.execute(db);
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'tenants, api keys, quota counters, hash-chained audit log',
    async up(db) {
      await createIdentityTables(db);
      await createAuditTables(db);
      await createAppendOnlyGuards(db);
      const now = new Date();
      await db
        .insertInto('tenants')
        .values({
          id: DEFAULT_TENANT_ID,
          name: 'Default tenant',
          allowed_models: '[]',
          requests_per_minute: 0,
          tokens_per_minute: 0,
          tokens_per_day: 0,
          tokens_per_month: 0,
          content_capture: 'digest',
          disabled: false,
          created_at: now,
          updated_at: now,
        })
        .execute();
    },
  },
  {
    version: 2,
    name: 'least privilege: audit_prune() and the append-only guard closed to every role but the owner',
    up: hardenAuditGuards,
  },
  {
    version: 3,
    name: 'client request ids and field flags on records; open requests (leases, reservations); worker usage',
    async up(db) {
      await db.schema
        .alterTable('audit_records')
        .addColumn('client_request_id', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema
        .alterTable('audit_records')
        .addColumn('field_flags', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema
        .createTable('audit_open_requests')
        .addColumn('request_id', 'text', (c) => c.primaryKey())
        .addColumn('opened_at', 'timestamptz', (c) => c.notNull())
        .addColumn('lease_until', 'timestamptz', (c) => c.notNull())
        .addColumn('subjects', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('reserved_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createIndex('audit_open_requests_lease')
        .on('audit_open_requests')
        .column('lease_until')
        .execute();
      await db.schema
        .createTable('audit_worker_usage')
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('worker', 'text', (c) => c.notNull())
        .addColumn('prompt_tokens', 'integer', (c) => c.notNull())
        .addColumn('completion_tokens', 'integer', (c) => c.notNull())
        .addColumn('reported_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_worker_usage_pk', ['request_id', 'worker', 'reported_at'])
        .execute();
    },
  },
  {
    version: 6,
    name: 'stored responses of the Responses API, scoped to tenant and principal, with their own expiry',
    async up(db) {
      await db.schema
        .createTable('stored_responses')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('content_key_id', 'text', (c) => c.notNull())
        .addColumn('response_ciphertext', 'text', (c) => c.notNull())
        .addColumn('input_items_ciphertext', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('stored_responses_expiry')
        .on('stored_responses')
        .column('expires_at')
        .execute();
    },
  },
  {
    version: 12,
    name: 'checkpoints commit to an RFC 9162 Merkle tree and to the checkpoint before',
    async up(db) {
      // '' on checkpoints signed before (v1: the chain head only).
      await db.schema
        .alterTable('audit_checkpoints')
        .addColumn('root_hash', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('previous_digest', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('frontier', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
    },
  },
  {
    version: 13,
    name: 'completion records name the weights that answered: model file sha256 and signer (canonical v3)',
    async up(db) {
      // '' on every record written before: they keep hashing as v1/v2.
      await db.schema
        .alterTable('audit_records')
        .addColumn('model_sha256', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('model_signer', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
    },
  },
  {
    version: 14,
    name: 'worker usage reports once per generation; open requests kept a while after closing (what was charged)',
    async up(db) {
      await db.schema
        .alterTable('audit_open_requests')
        .addColumn('closed_at', 'timestamptz')
        .addColumn('charged_prompt_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('charged_completion_tokens', 'bigint', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createIndex('audit_open_requests_closed')
        .on('audit_open_requests')
        .column('closed_at')
        .execute();
      await db.schema
        .alterTable('audit_worker_usage')
        .addColumn('generation_id', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      // Rows from before had no generation id: each stays its own row.
      await sql`update audit_worker_usage
        set generation_id = 'legacy:' || worker || ':' || extract(epoch from reported_at)::text`.execute(db);
      await db.schema.alterTable('audit_worker_usage').dropConstraint('audit_worker_usage_pk').execute();
      await db.schema
        .alterTable('audit_worker_usage')
        .addPrimaryKeyConstraint('audit_worker_usage_pk', ['request_id', 'generation_id'])
        .execute();
      await db.schema
        .createIndex('audit_worker_usage_reported')
        .on('audit_worker_usage')
        .column('reported_at')
        .execute();
    },
  },
];

export interface MigrateOptions extends ServiceRoles {
  /** AIRLOCK_AUDIT_RETENTION_DAYS: the youngest cut audit_prune() accepts (0: pruning refused). */
  retentionDays?: number;
}

export class MigrationsPendingError extends Error {}

/** Versions not yet applied, read without DDL (a runtime role may not create tables). */
async function pendingMigrations(db: Kysely<AuthAuditDatabase>): Promise<Migration[]> {
  const { rows } = await sql<{ present: boolean }>`
    select to_regclass('airlock_schema_migrations') is not null as present`.execute(db);
  if (!rows[0]?.present) return MIGRATIONS;
  const applied = new Set(
    (await db.selectFrom('airlock_schema_migrations').select('version').execute()).map((row) => row.version),
  );
  return MIGRATIONS.filter((migration) => !applied.has(migration.version));
}

/**
 * What the service does at start-up. As the owner (single-role installs, PGlite): apply pending migrations
 * and the retention policy. As a runtime role: apply nothing, and refuse to start while migrations are
 * pending, naming the command that applies them.
 */
export async function prepareSchema(
  db: Kysely<AuthAuditDatabase>,
  options: MigrateOptions = {},
): Promise<{ applied: number[]; owner: boolean }> {
  if (!(await ownsSchema(db))) {
    const pending = await pendingMigrations(db);
    if (pending.length > 0) {
      throw new MigrationsPendingError(
        `database migrations ${pending.map((m) => m.version).join(', ')} are pending and this role does not ` +
          'own the schema: run "auth-audit migrate" with the owner\'s AIRLOCK_DATABASE_URL first',
      );
    }
    return { applied: [], owner: false };
  }
  return { applied: await migrate(db, options), owner: true };
}

/**
 * Applies pending migrations in one transaction under an advisory lock, so replicas never race; then (as
 * the owner) the retention policy and the grants of the service roles named in the options.
 */
export async function migrate(
  db: Kysely<AuthAuditDatabase>,
  options: MigrateOptions = {},
): Promise<number[]> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`.execute(trx);
    await trx.schema
      .createTable('airlock_schema_migrations')
      .ifNotExists()
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('applied_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .execute();
    const applied = new Set(
      (await trx.selectFrom('airlock_schema_migrations').select('version').execute()).map(
        (row) => row.version,
      ),
    );
    const ran: number[] = [];
    for (const migration of MIGRATIONS) {
      if (applied.has(migration.version)) continue;
      await migration.up(trx);
      await trx
        .insertInto('airlock_schema_migrations')
        .values({ version: migration.version, name: migration.name })
        .execute();
      ran.push(migration.version);
    }
    if (options.retentionDays !== undefined) {
      await sql`update audit_retention_policy set min_age_days = ${options.retentionDays} where id = 1`.execute(
        trx,
      );
    }
    await grantServiceRoles(trx, options);
    return ran;
  });
}
