import type { Kysely } from 'kysely';
import type { AuthAuditDatabase } from '../database/database-schema.js';
import { recordHash, type AuditRecordDraft, type AuditRecordRow } from './audit-record.js';

// Rows per INSERT statement: 32 columns × 500 stays well under PostgreSQL's 65 535 parameters.
const INSERT_CHUNK = 500;

/**
 * Appends records to the hash chain inside the caller's transaction. The chain head row is locked first,
 * so appends from every replica take their turn; sequence numbers and hashes are computed here, in order.
 */
export async function appendToChain(
  trx: Kysely<AuthAuditDatabase>,
  drafts: AuditRecordDraft[],
  time: Date,
): Promise<AuditRecordRow[]> {
  if (drafts.length === 0) return [];
  const head = await trx
    .selectFrom('audit_chain_head')
    .select(['sequence', 'hash'])
    .where('id', '=', 1)
    .forUpdate()
    .executeTakeFirstOrThrow();
  let sequence = head.sequence;
  let prevHash = head.hash;
  const rows: AuditRecordRow[] = drafts.map((draft) => {
    sequence += 1;
    const withoutHash = { ...draft, sequence, time, prev_hash: prevHash };
    const hash = recordHash(withoutHash);
    prevHash = hash;
    return { ...withoutHash, hash };
  });
  for (let start = 0; start < rows.length; start += INSERT_CHUNK) {
    await trx
      .insertInto('audit_records')
      .values(rows.slice(start, start + INSERT_CHUNK))
      .execute();
  }
  await trx.updateTable('audit_chain_head').set({ sequence, hash: prevHash }).where('id', '=', 1).execute();
  return rows;
}
