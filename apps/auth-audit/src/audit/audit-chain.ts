import { sql, type Insertable, type Kysely, type QueryCreator } from 'kysely';
import type { AuthAuditDatabase, QuotaCountersTable } from '../database/database-schema.js';
import type { OpenRequest } from './open-requests.repository.js';
import { recordHash, type AuditRecordDraft, type AuditRecordRow } from './audit-record.js';
import { boundDraft } from './record-fields.js';

/** Where the chain ends: the last record's sequence and hash (0 and the genesis hash when empty). */
export interface ChainHead {
  sequence: number;
  hash: string;
}

// Rows per INSERT statement: 32 columns × 500 stays well under PostgreSQL's 65 535 parameters.
const INSERT_CHUNK = 500;

/**
 * Appends records to the hash chain inside the caller's transaction. The chain head row is locked first (or
 * already was, by the caller), so appends from every replica take their turn; sequence numbers and hashes
 * are computed here, in order.
 * The last INSERT also moves the head and, when given, writes the batch's new quota totals: one round trip
 * for all three.
 */
export async function appendToChain(
  trx: Kysely<AuthAuditDatabase>,
  drafts: AuditRecordDraft[],
  time: Date,
  quotaTotals: Insertable<QuotaCountersTable>[] = [],
  /** The head as this transaction already locked it (readSettlementState); read and locked here if not. */
  lockedHead?: ChainHead,
): Promise<AuditRecordRow[]> {
  if (drafts.length === 0) {
    await saveQuotaTotals(trx, quotaTotals);
    return [];
  }
  const head =
    lockedHead ??
    (await trx
      .selectFrom('audit_chain_head')
      .select(['sequence', 'hash'])
      .where('id', '=', 1)
      .forUpdate()
      .executeTakeFirstOrThrow());
  const rows = chainRecords(head, drafts, time);
  const { sequence, hash: prevHash } = rows.at(-1)!;
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

/** The chain head as committed now, without a lock. */
export async function readChainHead(db: Kysely<AuthAuditDatabase>): Promise<ChainHead> {
  return db
    .selectFrom('audit_chain_head')
    .select(['sequence', 'hash'])
    .where('id', '=', 1)
    .executeTakeFirstOrThrow();
}

/** The records that extend `head`, numbered and hashed in order. */
export function chainRecords(head: ChainHead, drafts: AuditRecordDraft[], time: Date): AuditRecordRow[] {
  let sequence = head.sequence;
  let prevHash = head.hash;
  return drafts.map((draft) => {
    sequence += 1;
    // Validated here, before it joins the batch: one unstorable field cannot fail the others' commit.
    const withoutHash = { ...boundDraft(draft), sequence, time, prev_hash: prevHash };
    const hash = recordHash(withoutHash);
    prevHash = hash;
    return { ...withoutHash, hash };
  });
}

/** The SQL types of audit_records' non-text columns, for the arrays appendOnHead sends (others: text). */
const COLUMN_TYPES: Partial<Record<keyof AuditRecordRow, string>> = {
  sequence: 'int8',
  status_code: 'int4',
  prompt_tokens: 'int4',
  completion_tokens: 'int4',
  cached_tokens: 'int4',
  latency_us: 'int8',
  ttft_us: 'int8',
};
export interface HeadedAppend {
  /** The head the rows extend: the write happens only if the database's head is still exactly this. */
  head: ChainHead;
  rows: AuditRecordRow[];
  /** What each quota counter gained (tokens: or lost, settling below a reservation), added to the totals. */
  quotaDeltas: Insertable<QuotaCountersTable>[];
  opened: OpenRequest[];
}

/**
 * The pipelined append: one statement, its own transaction, no lock taken beforehand. It moves the head
 * from `head` to the last row only if the committed head is still exactly `head` (a writer that holds the
 * row at that same head makes the UPDATE wait and re-check against what it commits; records not yet
 * committed are not seen at all), and every other write in it — records, quota deltas, open requests —
 * joins the one row that UPDATE returns. So when the head has moved or is not there yet (another replica,
 * the admin journal, an earlier batch that failed or has not committed) the statement writes nothing, and
 * this returns false: nothing commits on top of a hole or of a head this process did not know.
 */
export async function appendOnHead(db: Kysely<AuthAuditDatabase>, append: HeadedAppend): Promise<boolean> {
  const { head, rows, quotaDeltas, opened } = append;
  if (rows.length === 0) throw new RangeError('appendOnHead needs at least one record');
  const last = rows.at(-1)!;
  const time = rows[0].time;
  // Every column the rows carry (as the locked path's INSERT), `time` once for the whole batch.
  const recordColumns = (Object.keys(rows[0]) as (keyof AuditRecordRow)[]).filter((key) => key !== 'time');
  const columns = sql.join(recordColumns.map((column) => sql.id(column)));
  const arrays = sql.join(
    recordColumns.map(
      (column) => sql`${rows.map((row) => row[column])}::${sql.raw(COLUMN_TYPES[column] ?? 'text')}[]`,
    ),
  );
  const quota = sql.join([
    sql`${quotaDeltas.map((row) => row.subject)}::text[]`,
    sql`${quotaDeltas.map((row) => row.window_kind)}::text[]`,
    sql`${quotaDeltas.map((row) => new Date(row.window_start))}::timestamptz[]`,
    sql`${quotaDeltas.map((row) => row.requests ?? 0)}::int8[]`,
    sql`${quotaDeltas.map((row) => row.tokens ?? 0)}::int8[]`,
  ]);
  const open = sql.join([
    sql`${opened.map((row) => row.requestId)}::text[]`,
    sql`${opened.map((row) => row.openedAt)}::timestamptz[]`,
    sql`${opened.map((row) => row.leaseUntil)}::timestamptz[]`,
    sql`${opened.map((row) => JSON.stringify(row.subjects))}::text[]`,
    sql`${opened.map((row) => row.reservedTokens)}::int8[]`,
  ]);
  const result = await sql<{ inserted: number }>`
    with moved_head as (
      update audit_chain_head set sequence = ${last.sequence}, hash = ${last.hash}
      where id = 1 and sequence = ${head.sequence} and hash = ${head.hash}
      returning id
    ), inserted as (
      insert into audit_records (time, ${columns})
      select ${time}::timestamptz, r.* from unnest(${arrays}) as r(${columns}), moved_head
      returning 1
    ), counted as (
      insert into quota_counters (subject, window_kind, window_start, requests, tokens)
      select q.subject, q.window_kind, q.window_start, q.requests, q.tokens
      from unnest(${quota}) as q(subject, window_kind, window_start, requests, tokens), moved_head
      on conflict (subject, window_kind, window_start) do update set
        requests = greatest(0, quota_counters.requests + excluded.requests),
        tokens = greatest(0, quota_counters.tokens + excluded.tokens)
      returning 1
    ), opened as (
      insert into audit_open_requests (request_id, opened_at, lease_until, subjects, reserved_tokens)
      select o.* from unnest(${open}) as o(request_id, opened_at, lease_until, subjects, reserved_tokens),
        moved_head
      on conflict (request_id) do nothing
      returning 1
    )
    select (select count(*) from inserted)::int4 as inserted`.execute(db);
  // All or nothing: every row joins the one row the head UPDATE returned, or none does.
  return (result.rows[0]?.inserted ?? 0) > 0;
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
