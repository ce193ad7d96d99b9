import type { Kysely } from 'kysely';
import type { AuthAuditDatabase } from '../database/database-schema.js';

type Db = Kysely<AuthAuditDatabase>;

/** An allowed request still waiting for its completion record: its lease and its token reservation. */
export interface OpenRequest {
  requestId: string;
  openedAt: Date;
  leaseUntil: Date;
  subjects: string[];
  reservedTokens: number;
}

/** Usage a worker reported for one request (summed over its reports). */
export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  workers: string[];
}

/**
 * Open requests (one row from an allowed Authorize until its completion or interruption) and the usage
 * workers report. Neither table is part of the chain: they are bookkeeping the chain's records settle.
 */
export const openRequestsRepository = {
  async open(trx: Db, rows: OpenRequest[]): Promise<void> {
    if (rows.length === 0) return;
    await trx
      .insertInto('audit_open_requests')
      .values(
        rows.map((row) => ({
          request_id: row.requestId,
          opened_at: row.openedAt,
          lease_until: row.leaseUntil,
          subjects: JSON.stringify(row.subjects),
          reserved_tokens: row.reservedTokens,
        })),
      )
      // Request ids are issued by the gateway (UUIDs); a repeat must not fail the batch it shares.
      .onConflict((oc) => oc.column('request_id').doNothing())
      .execute();
  },

  async find(trx: Db, requestIds: string[]): Promise<Map<string, OpenRequest>> {
    const found = new Map<string, OpenRequest>();
    if (requestIds.length === 0) return found;
    const rows = await trx
      .selectFrom('audit_open_requests')
      .selectAll()
      .where('request_id', 'in', [...new Set(requestIds)])
      .forUpdate()
      .execute();
    for (const row of rows) {
      found.set(row.request_id, {
        requestId: row.request_id,
        openedAt: row.opened_at,
        leaseUntil: row.lease_until,
        subjects: JSON.parse(row.subjects) as string[],
        reservedTokens: row.reserved_tokens,
      });
    }
    return found;
  },

  async close(trx: Db, requestIds: string[]): Promise<void> {
    if (requestIds.length === 0) return;
    await trx.deleteFrom('audit_open_requests').where('request_id', 'in', requestIds).execute();
    await trx.deleteFrom('audit_worker_usage').where('request_id', 'in', requestIds).execute();
  },

  /** Requests whose lease ran out: their gateway is gone (or far too late), the sweeper closes them. */
  async expired(db: Db, now: Date, limit: number): Promise<string[]> {
    const rows = await db
      .selectFrom('audit_open_requests')
      .select('request_id')
      .where('lease_until', '<', now)
      .orderBy('lease_until')
      .limit(limit)
      .execute();
    return rows.map((row) => row.request_id);
  },

  async count(db: Db): Promise<number> {
    const row = await db
      .selectFrom('audit_open_requests')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  },

  async reportUsage(
    db: Db,
    report: { requestId: string; worker: string; promptTokens: number; completionTokens: number },
    now: Date,
  ): Promise<void> {
    await db
      .insertInto('audit_worker_usage')
      .values({
        request_id: report.requestId,
        worker: report.worker,
        prompt_tokens: report.promptTokens,
        completion_tokens: report.completionTokens,
        reported_at: now,
      })
      .onConflict((oc) => oc.columns(['request_id', 'worker', 'reported_at']).doNothing())
      .execute();
  },

  async reportedUsage(trx: Db, requestIds: string[]): Promise<Map<string, ReportedUsage>> {
    const usage = new Map<string, ReportedUsage>();
    if (requestIds.length === 0) return usage;
    const rows = await trx
      .selectFrom('audit_worker_usage')
      .select(['request_id', 'worker', 'prompt_tokens', 'completion_tokens'])
      .where('request_id', 'in', [...new Set(requestIds)])
      .execute();
    for (const row of rows) {
      const entry = usage.get(row.request_id) ?? { promptTokens: 0, completionTokens: 0, workers: [] };
      entry.promptTokens += row.prompt_tokens;
      entry.completionTokens += row.completion_tokens;
      if (!entry.workers.includes(row.worker)) entry.workers.push(row.worker);
      usage.set(row.request_id, entry);
    }
    return usage;
  },

  /** Completion records already written for these requests (a retried Complete, a swept one). */
  async completions(
    trx: Db,
    requestIds: string[],
  ): Promise<Map<string, { sequence: number; outcome: string }>> {
    const found = new Map<string, { sequence: number; outcome: string }>();
    if (requestIds.length === 0) return found;
    const rows = await trx
      .selectFrom('audit_records')
      .select(['request_id', 'sequence', 'outcome'])
      .where('kind', '=', 'completion')
      .where('request_id', 'in', [...new Set(requestIds)])
      .orderBy('sequence')
      .execute();
    for (const row of rows) found.set(row.request_id, { sequence: row.sequence, outcome: row.outcome });
    return found;
  },
};
