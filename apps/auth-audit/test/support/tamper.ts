import { sql, type RawBuilder } from 'kysely';
import type { AuthAuditDb } from '../../src/database/database.js';
import type { AuditRecordRow } from '../../src/audit/audit-record.js';

/**
 * Runs statements the way an attacker with superuser access to the database would: in one transaction
 * with triggers switched off (session_replication_role = replica), bypassing the append-only guard.
 */
export async function asAttacker(
  db: AuthAuditDb,
  statements: (RawBuilder<unknown> | ((trx: AuthAuditDb) => Promise<unknown>))[],
) {
  await db.transaction().execute(async (trx) => {
    await sql`set local session_replication_role = replica`.execute(trx);
    for (const statement of statements) {
      if (typeof statement === 'function') await statement(trx);
      else await statement.execute(trx);
    }
  });
}

export async function snapshotRecords(db: AuthAuditDb): Promise<AuditRecordRow[]> {
  return db.selectFrom('audit_records').selectAll().orderBy('sequence').execute();
}

/** Puts the audit table back exactly as it was (undoing a tampering case). */
export async function restoreRecords(db: AuthAuditDb, rows: AuditRecordRow[]): Promise<void> {
  await asAttacker(db, [
    sql`delete from audit_records`,
    (trx) => trx.insertInto('audit_records').values(rows).execute(),
  ]);
}
