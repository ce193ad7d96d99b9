import type { Insertable, Kysely, QueryCreator } from 'kysely';
import type { AuthAuditDatabase, QuotaCountersTable } from '../database/database-schema.js';
import { recordHash, type AuditRecordDraft, type AuditRecordRow } from './audit-record.js';
import { boundDraft } from './record-fields.js';

// Rows per INSERT statement: 32 columns × 500 stays well under PostgreSQL's 65 535 parameters.
const INSERT_CHUNK = 500;

/**
 * Appends records to the hash chain inside the caller's transaction. The chain head row is locked first,
 * so appends from every replica take their turn; sequence numbers and hashes are computed here, in order.
 * The last INSERT also moves the head and, when given, writes the batch's new quota totals: one round trip
 * for all three.
 */
export async function appendToChain(
  trx: Kysely<AuthAuditDatabase>,
  drafts: AuditRecordDraft[],
  time: Date,
  quotaTotals: Insertable<QuotaCountersTable>[] = [],
): Promise<AuditRecordRow[]> {
  if (drafts.length === 0) {
    await saveQuotaTotals(trx, quotaTotals);
    return [];
  }
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
    // Validated here, before it joins the batch: one unstorable field cannot fail the others' commit.
    const withoutHash = { ...boundDraft(draft), sequence, time, prev_hash: prevHash };
    const hash = recordHash(withoutHash);
    prevHash = hash;
    return { ...withoutHash, hash };
  });
  const lastChunk = Math.floor((rows.length - 1) / INSERT_CHUNK) * INSERT_CHUNK;
  for (let start = 0; start < lastChunk; start += INSERT_CHUNK) {
    await trx
      .insertInto('audit_records')
      .values(rows.slice(start, start + INSERT_CHUNK))
      .execute();
  }
  const newHead = { sequence, hash: prevHash };
  const remaining = rows.slice(lastChunk);
  if (quotaTotals.length > 0) {
    await trx
      .with('saved_quota', (db) => upsertQuotaTotals(db, quotaTotals).returning('subject'))
      .with('moved_head', (db) =>
        db.updateTable('audit_chain_head').set(newHead).where('id', '=', 1).returning('id'),
      )
      .insertInto('audit_records')
      .values(remaining)
      .execute();
  } else {
    await trx
      .with('moved_head', (db) =>
        db.updateTable('audit_chain_head').set(newHead).where('id', '=', 1).returning('id'),
      )
      .insertInto('audit_records')
      .values(remaining)
      .execute();
  }
  return rows;
}

function upsertQuotaTotals(db: QueryCreator<AuthAuditDatabase>, totals: Insertable<QuotaCountersTable>[]) {
  return db
    .insertInto('quota_counters')
    .values(totals)
    .onConflict((oc) =>
      oc.columns(['subject', 'window_kind', 'window_start']).doUpdateSet((eb) => ({
        requests: eb.ref('excluded.requests'),
        tokens: eb.ref('excluded.tokens'),
      })),
    );
}

async function saveQuotaTotals(trx: Kysely<AuthAuditDatabase>, totals: Insertable<QuotaCountersTable>[]) {
  if (totals.length > 0) await upsertQuotaTotals(trx, totals).execute();
}
