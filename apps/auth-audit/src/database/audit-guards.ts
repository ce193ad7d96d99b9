import { sql, type Kysely } from 'kysely';
import type { AuthAuditDatabase } from './database-schema.js';

/** Tables that only ever grow: the runtime role may SELECT and INSERT, never UPDATE, DELETE or TRUNCATE. */
export const APPEND_ONLY_TABLES = ['audit_records', 'audit_checkpoints', 'audit_signing_keys'] as const;

/** The transaction-local marker audit_prune() sets; the guard also requires current_user = its owner. */
export const PRUNE_MARKER = 'airlock.audit_prune_xact';

/** A quoted identifier for text spliced into a function body (dollar-quoted, so sql.id cannot reach it). */
function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Migration 2: the append-only guard and audit_prune() hardened against roles that are not the owner.
 *  - both functions run with `search_path = pg_catalog, pg_temp` and name every table with its schema, so a
 *    temporary table cannot shadow audit_checkpoints;
 *  - the guard lets a DELETE on audit_records through only while audit_prune() runs: its transaction-local
 *    marker must hold this transaction's id AND current_user must be the function's owner (inside a
 *    SECURITY DEFINER call it is), so no session setting opens the table to anyone else;
 *  - audit_prune() is not executable by PUBLIC (the owner grants it to the retention role), refuses a cut
 *    without a signed checkpoint, any cut while retention is off, cuts younger than the retention policy,
 *    and any cut whose own audit.prune record was not appended earlier in the same transaction.
 */
export async function hardenAuditGuards(db: Kysely<AuthAuditDatabase>): Promise<void> {
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
  const s = quoteIdent(rows[0].schema);
  await sql`create table audit_retention_policy (
      id integer primary key check (id = 1),
      min_age_days integer not null check (min_age_days >= 0))`.execute(db);
  await sql`insert into audit_retention_policy (id, min_age_days) values (1, 0)`.execute(db);
  await sql`revoke all on audit_retention_policy from public`.execute(db);

  await sql
    .raw(
      `create or replace function ${s}.audit_append_only() returns trigger language plpgsql
      set search_path = pg_catalog, pg_temp as $$
    begin
      if tg_op = 'DELETE' and tg_table_name = 'audit_records'
         and current_setting('${PRUNE_MARKER}', true) = pg_current_xact_id()::text
         and current_user = (select pg_get_userbyid(p.proowner) from pg_proc p
                             where p.oid = '${s}.audit_prune(bigint)'::regprocedure) then
        return old;
      end if;
      raise exception '% is append-only: % refused', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
    end $$`,
    )
    .execute(db);
  await sql.raw(`drop function if exists ${s}.audit_prune(bigint)`).execute(db);
  await sql
    .raw(
      `create function ${s}.audit_prune(cut bigint) returns bigint language plpgsql security definer
      set search_path = pg_catalog, pg_temp as $$
    declare
      removed bigint;
      min_age integer;
      newest timestamptz;
    begin
      if not exists (select 1 from ${s}.audit_checkpoints c where c.sequence = cut) then
        raise exception 'no signed checkpoint at sequence %', cut using errcode = 'check_violation';
      end if;
      select p.min_age_days into min_age from ${s}.audit_retention_policy p where p.id = 1;
      if coalesce(min_age, 0) <= 0 then
        raise exception 'audit retention is off: no record may be pruned' using errcode = 'insufficient_privilege';
      end if;
      select max(r.time) into newest from ${s}.audit_records r where r.sequence <= cut;
      if newest > now() - make_interval(days => min_age) then
        raise exception 'cut at % holds records younger than % days', cut, min_age
          using errcode = 'check_violation';
      end if;
      if not exists (select 1 from ${s}.audit_records r
                     where r.kind = 'admin_action' and r.action = 'audit.prune' and r.target = cut::text
                       and r.xmin = pg_current_xact_id()::xid) then
        raise exception 'audit_prune(%) must follow its own audit.prune record in the same transaction', cut
          using errcode = 'check_violation';
      end if;
      perform set_config('${PRUNE_MARKER}', pg_current_xact_id()::text, true);
      delete from ${s}.audit_records r where r.sequence <= cut;
      get diagnostics removed = row_count;
      perform set_config('${PRUNE_MARKER}', '', true);
      return removed;
    end $$`,
    )
    .execute(db);
  await sql.raw(`revoke all on function ${s}.audit_prune(bigint) from public`).execute(db);
}
