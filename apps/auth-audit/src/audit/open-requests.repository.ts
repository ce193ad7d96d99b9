import { sql, type Kysely, type Selectable } from 'kysely';
import type {
  AuditRecordsTable,
  AuthAuditDatabase,
  OpenRequestsTable,
  TenantsTable,
  WorkerUsageTable,
} from '../database/database-schema.js';
import { tenantFromRow, type Tenant } from '../tenants/tenant.repository.js';
import type { ChainHead } from './audit-chain.js';
import type { UsageOrigin } from './usage-settlement.js';

type Db = Kysely<AuthAuditDatabase>;

/** An allowed request still waiting for its completion record: its lease and its token reservation. */
export interface OpenRequest {
  requestId: string;
  openedAt: Date;
  leaseUntil: Date;
  subjects: string[];
  reservedTokens: number;
}

/** A request whose completion record is written: what it was charged, for a worker's later report. */
export interface ClosedRequest {
  requestId: string;
  openedAt: Date;
  subjects: string[];
  chargedPromptTokens: number;
  chargedCompletionTokens: number;
}

/** Usage a worker reported for one request (summed over its generations' reports). */
export interface ReportedUsage {
  promptTokens: number;
  completionTokens: number;
  workers: string[];
  /** The generations already reported: a retried report adds nothing. */
  generations: Set<string>;
}

/** One generation's usage as its worker reported it. */
export interface UsageReport {
  requestId: string;
  generationId: string;
  worker: string;
  promptTokens: number;
  completionTokens: number;
}

/** The allowed request record a settlement refers to: who asked, for which model. */
export type RequestOrigin = UsageOrigin;

/** Everything a settlement batch reads about its requests (SettlementState.read). */
export interface SettlementState {
  /** The allowed request record of each id (the latest, should an id repeat). */
  origins: Map<string, RequestOrigin>;
  open: Map<string, OpenRequest>;
  /** Closed requests still kept: what they were charged, so a later report adds only its excess. */
  closed: Map<string, ClosedRequest>;
  /** Completion records already written (a retried Complete, a swept one): the last per id. */
  completions: Map<string, { sequence: number; outcome: string }>;
  reported: Map<string, ReportedUsage>;
  /** The tenants the origins name. */
  tenants: Map<string, Tenant>;
  /** The chain head, locked (undefined when there was nothing to read): appendToChain extends it. */
  head?: ChainHead;
}

/** The statement's JSON arrays and the head (timestamps arrive as ISO text). */
interface SettlementRows {
  origins: Pick<
    AuditRecordsTable,
    'request_id' | 'principal_id' | 'principal_kind' | 'tenant' | 'role' | 'action' | 'model'
  >[];
  requests: (Pick<
    Selectable<OpenRequestsTable>,
    'request_id' | 'subjects' | 'reserved_tokens' | 'charged_prompt_tokens' | 'charged_completion_tokens'
  > & { opened_at: string; lease_until: string; closed_at: string | null })[];
  reports: Pick<
    Selectable<WorkerUsageTable>,
    'request_id' | 'generation_id' | 'worker' | 'prompt_tokens' | 'completion_tokens'
  >[];
  completions: { request_id: string; sequence: number; outcome: string }[];
  tenants: (Omit<Selectable<TenantsTable>, 'created_at' | 'updated_at'> & {
    created_at: string;
    updated_at: string;
  })[];
  head: ChainHead;
}

/**
 * Reads a settlement batch's requests in one round trip (it ran as seven queries under the head lock, each a
 * round trip that every Authorize behind the batch waited for): their origins and tenants, their bookkeeping
 * rows (locked), the usage workers reported, for `completeIds` the completion records already written, and
 * the chain head (locked: the batch appends to it, and takes the head before the counters, as a pipelined
 * write does).
 */
export async function readSettlementState(
  trx: Db,
  requestIds: string[],
  completeIds: string[],
): Promise<SettlementState> {
  const state: SettlementState = {
    origins: new Map(),
    open: new Map(),
    closed: new Map(),
    completions: new Map(),
    reported: new Map(),
    tenants: new Map(),
  };
  if (requestIds.length === 0) return state;
  const ids = [...new Set(requestIds)];
  const { rows } = await sql<SettlementRows>`select
      (select coalesce(json_agg(r order by r.sequence desc), '[]'::json) from (
        select request_id, principal_id, principal_kind, tenant, role, action, model, sequence
        from audit_records
        where kind = 'request' and outcome = 'allowed' and request_id = any(${ids}::text[])) r) as origins,
      (select coalesce(json_agg(o), '[]'::json) from (
        select request_id, opened_at, lease_until, subjects, reserved_tokens, closed_at,
          charged_prompt_tokens, charged_completion_tokens
        from audit_open_requests where request_id = any(${ids}::text[]) for update) o) as requests,
      (select coalesce(json_agg(u), '[]'::json) from (
        select request_id, generation_id, worker, prompt_tokens, completion_tokens
        from audit_worker_usage where request_id = any(${ids}::text[])) u) as reports,
      (select coalesce(json_agg(c order by c.sequence), '[]'::json) from (
        select request_id, sequence, outcome from audit_records
        where kind = 'completion' and request_id = any(${[...new Set(completeIds)]}::text[])) c) as completions,
      (select coalesce(json_agg(t), '[]'::json) from tenants t where t.id in (
        select tenant from audit_records
        where kind = 'request' and outcome = 'allowed' and request_id = any(${ids}::text[]))) as tenants,
      (select row_to_json(h) from (
        select sequence, hash from audit_chain_head where id = 1 for update) h) as head
    `.execute(trx);
  const found = rows[0];
  for (const row of found.origins) {
    if (state.origins.has(row.request_id)) continue;
    state.origins.set(row.request_id, {
      principalId: row.principal_id,
      principalKind: row.principal_kind,
      tenant: row.tenant,
      role: row.role,
      action: row.action,
      model: row.model,
    });
  }
  for (const row of found.requests) {
    const subjects = JSON.parse(row.subjects) as string[];
    if (row.closed_at === null) {
      state.open.set(row.request_id, {
        requestId: row.request_id,
        openedAt: new Date(row.opened_at),
        leaseUntil: new Date(row.lease_until),
        subjects,
        reservedTokens: Number(row.reserved_tokens),
      });
    } else {
      state.closed.set(row.request_id, {
        requestId: row.request_id,
        openedAt: new Date(row.opened_at),
        subjects,
        chargedPromptTokens: Number(row.charged_prompt_tokens),
        chargedCompletionTokens: Number(row.charged_completion_tokens),
      });
    }
  }
  for (const row of found.reports) {
    addReport(state.reported, {
      requestId: row.request_id,
      generationId: row.generation_id,
      worker: row.worker,
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
    });
  }
  for (const row of found.completions)
    state.completions.set(row.request_id, { sequence: Number(row.sequence), outcome: row.outcome });
  for (const row of found.tenants) {
    state.tenants.set(
      row.id,
      tenantFromRow({ ...row, created_at: new Date(row.created_at), updated_at: new Date(row.updated_at) }),
    );
  }
  state.head = { sequence: Number(found.head.sequence), hash: found.head.hash };
  return state;
}

/** What a request has been charged once its record is written (its row is then closed). */
export interface ChargedUsage {
  requestId: string;
  promptTokens: number;
  completionTokens: number;
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

  /**
   * Closes requests (their record is written) and stores what each has been charged in all. The row is kept
   * for CLOSED_RETENTION so that a worker's report arriving after the completion is charged once.
   */
  async saveCharges(trx: Db, charges: ChargedUsage[], now: Date): Promise<void> {
    if (charges.length === 0) return;
    const values = sql.join(
      charges.map((c) => sql`(${c.requestId}, ${c.promptTokens}::bigint, ${c.completionTokens}::bigint)`),
    );
    await sql`update audit_open_requests as o
      set closed_at = coalesce(o.closed_at, ${now}::timestamptz),
          charged_prompt_tokens = v.prompt_tokens, charged_completion_tokens = v.completion_tokens
      from (values ${values}) as v(request_id, prompt_tokens, completion_tokens)
      where o.request_id = v.request_id`.execute(trx);
  },

  /**
   * Forgets closed requests and worker reports older than `before` (a report later than that is not
   * charged), except the reports of requests still open. Returns how many rows went.
   */
  async prune(db: Db, before: Date, limit: number): Promise<number> {
    const closed = await sql`delete from audit_open_requests where request_id in (
        select request_id from audit_open_requests
        where closed_at is not null and closed_at < ${before}::timestamptz limit ${limit})`.execute(db);
    const reports = await sql`delete from audit_worker_usage where ctid in (
        select u.ctid from audit_worker_usage u
        where u.reported_at < ${before}::timestamptz and not exists (
          select 1 from audit_open_requests o where o.request_id = u.request_id and o.closed_at is null)
        limit ${limit})`.execute(db);
    return Number(closed.numAffectedRows ?? 0) + Number(reports.numAffectedRows ?? 0);
  },

  /** Requests whose lease ran out: their gateway is gone (or far too late), the sweeper closes them. */
  async expired(db: Db, now: Date, limit: number): Promise<string[]> {
    const rows = await db
      .selectFrom('audit_open_requests')
      .select('request_id')
      .where('lease_until', '<', now)
      .where('closed_at', 'is', null)
      .orderBy('lease_until')
      .limit(limit)
      .execute();
    return rows.map((row) => row.request_id);
  },

  async count(db: Db): Promise<number> {
    const row = await db
      .selectFrom('audit_open_requests')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('closed_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  },

  /** Stores reports; one already stored for its (request, generation) is left as it is. */
  async insertReports(trx: Db, reports: UsageReport[], now: Date): Promise<void> {
    if (reports.length === 0) return;
    await trx
      .insertInto('audit_worker_usage')
      .values(
        reports.map((report) => ({
          request_id: report.requestId,
          generation_id: report.generationId,
          worker: report.worker,
          prompt_tokens: report.promptTokens,
          completion_tokens: report.completionTokens,
          reported_at: now,
        })),
      )
      .onConflict((oc) => oc.columns(['request_id', 'generation_id']).doNothing())
      .execute();
  },
};

/** Adds one generation's report to a request's usage; false when that generation was counted already. */
export function addReport(usage: Map<string, ReportedUsage>, report: UsageReport): boolean {
  const entry = usage.get(report.requestId) ?? {
    promptTokens: 0,
    completionTokens: 0,
    workers: [],
    generations: new Set<string>(),
  };
  usage.set(report.requestId, entry);
  if (entry.generations.has(report.generationId)) return false;
  entry.generations.add(report.generationId);
  // The prompt is charged once per request, as OpenAI's usage and the gateway's Complete count it: n choices (and a
  // retry on another worker) evaluate the same prompt again. Generated tokens add up.
  entry.promptTokens = Math.max(entry.promptTokens, report.promptTokens);
  entry.completionTokens += report.completionTokens;
  if (!entry.workers.includes(report.worker)) entry.workers.push(report.worker);
  return true;
}
