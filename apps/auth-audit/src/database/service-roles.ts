import { sql, type Kysely } from 'kysely';
import { APPEND_ONLY_TABLES } from './audit-guards.js';
import type { AuthAuditDatabase } from './database-schema.js';

export interface ServiceRoles {
  /** The role auth-audit runs as: reads what it needs, appends to the audit tables, owns nothing. */
  runtimeRole?: string;
  /** The role of the retention job: may call audit_prune() and append the prune's own record. */
  retentionRole?: string;
}

// Tables whose rows the runtime role may read but never change.
const READ_ONLY_TABLES = new Set(['airlock_schema_migrations', 'audit_retention_policy']);

/**
 * Grants, run by the owner after every migration so tables added later are covered too. The runtime role
 * gets SELECT + INSERT on the append-only tables, SELECT + UPDATE on the chain head (it moves with every
 * append) and full DML on the mutable tables (tenants, keys, quota counters, …); never ownership, so it
 * cannot ALTER a table or disable its triggers. EXECUTE on audit_prune() goes to the retention role only.
 */
export async function grantServiceRoles(db: Kysely<AuthAuditDatabase>, roles: ServiceRoles): Promise<void> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const schema = rows[0].schema;
  const tables = await sql<{ name: string }>`
    select tablename as name from pg_catalog.pg_tables where schemaname = ${schema} order by tablename`.execute(
    db,
  );
  const appendOnly = new Set<string>(APPEND_ONLY_TABLES);
  for (const role of [roles.runtimeRole, roles.retentionRole]) {
    if (role) await sql`grant usage on schema ${sql.id(schema)} to ${sql.id(role)}`.execute(db);
  }
  if (roles.runtimeRole) {
    const role = sql.id(roles.runtimeRole);
    for (const { name } of tables.rows) {
      const table = sql.id(schema, name);
      await sql`revoke all on ${table} from ${role}`.execute(db);
      if (appendOnly.has(name)) await sql`grant select, insert on ${table} to ${role}`.execute(db);
      else if (name === 'audit_chain_head')
        await sql`grant select, update on ${table} to ${role}`.execute(db);
      else if (READ_ONLY_TABLES.has(name)) await sql`grant select on ${table} to ${role}`.execute(db);
      else await sql`grant select, insert, update, delete on ${table} to ${role}`.execute(db);
    }
    await sql`grant usage on all sequences in schema ${sql.id(schema)} to ${role}`.execute(db);
  }
  if (roles.retentionRole) {
    const role = sql.id(roles.retentionRole);
    await sql`grant select on ${sql.id(schema, 'audit_records')}, ${sql.id(schema, 'audit_checkpoints')},
      ${sql.id(schema, 'audit_signing_keys')} to ${role}`.execute(db);
    await sql`grant insert on ${sql.id(schema, 'audit_records')} to ${role}`.execute(db);
    await sql`grant select, update on ${sql.id(schema, 'audit_chain_head')} to ${role}`.execute(db);
    await sql`grant execute on function ${sql.id(schema, 'audit_prune')}(bigint) to ${role}`.execute(db);
  }
}

/** Whether the connected role may call audit_prune() (the owner, or a role granted EXECUTE). */
export async function canPrune(db: Kysely<AuthAuditDatabase>): Promise<boolean> {
  const { rows } = await sql<{ allowed: boolean }>`
    select has_function_privilege(current_user, 'audit_prune(bigint)', 'execute') as allowed`.execute(db);
  return rows[0]?.allowed === true;
}

/** Whether the connected role owns the audit tables (then it may migrate and set the retention policy). */
export async function ownsSchema(db: Kysely<AuthAuditDatabase>): Promise<boolean> {
  const { rows } = await sql<{ owns: boolean }>`
    select coalesce((select pg_has_role(current_user, c.relowner, 'USAGE') from pg_catalog.pg_class c
                     where c.oid = to_regclass('audit_records')), true) as owns`.execute(db);
  return rows[0]?.owns === true;
}
