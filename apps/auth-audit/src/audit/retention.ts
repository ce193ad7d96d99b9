import { sql } from 'kysely';
import type { AuthAuditDb } from '../database/database.js';
import { SYSTEM_ACTOR, type AdminJournal } from './admin-journal.js';

export interface PruneResult {
  /** Records up to and including this sequence were removed; the checkpoint there anchors the chain. */
  cut: number;
  removed: number;
  sequence: number;
}

/**
 * Removes records older than the cutoff, but only up to the newest signed checkpoint among them: the
 * checkpoint at the cut stays, so verification can start from it. The removal and its own audit record
 * commit together (the record first: the database's audit_prune() insists). audit_prune() also refuses any
 * cut without a checkpoint or younger than the retention policy the owner set.
 */
export async function pruneAuditRecords(
  db: AuthAuditDb,
  journal: AdminJournal,
  cutoff: Date,
): Promise<PruneResult | undefined> {
  const oldest = await db
    .selectFrom('audit_records')
    .select((eb) => eb.fn.max<number>('sequence').as('last'))
    .where('time', '<', cutoff)
    .executeTakeFirstOrThrow();
  if (oldest.last === null) return undefined;
  const checkpoint = await db
    .selectFrom('audit_checkpoints')
    .select('sequence')
    .where('sequence', '<=', Number(oldest.last))
    .orderBy('sequence', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!checkpoint) return undefined;
  const cut = checkpoint.sequence;
  const context = { requestId: `retention-${cutoff.toISOString()}`, clientAddress: '', userAgent: '' };
  const first = await db
    .selectFrom('audit_records')
    .select((eb) => eb.fn.min<number>('sequence').as('first'))
    .executeTakeFirstOrThrow();
  const expected = first.first === null ? 0 : cut - Number(first.first) + 1;
  // audit_prune() admits a cut only after its audit.prune record was appended in the same transaction.
  const record = {
    action: 'audit.prune',
    target: String(cut),
    details: { cut, removed: expected, cutoff: cutoff.toISOString() },
  };
  const { result, sequence } = await journal.recordThen(SYSTEM_ACTOR, context, record, async (trx) => {
    const { rows } = await sql<{ removed: number }>`select audit_prune(${cut}) as removed`.execute(trx);
    return Number(rows[0]?.removed ?? 0);
  });
  return { cut, removed: result, sequence };
}
