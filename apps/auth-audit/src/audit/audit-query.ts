import type { AuthAuditDb } from '../database/database.js';
import { invalidArgument } from '../errors.js';
import type { AuditRecordRow } from './audit-record.js';

/** Filters over the audit log; every value is bound as a parameter, never spliced into SQL. */
export interface AuditQueryFilter {
  startTime?: Date;
  endTime?: Date;
  tenant?: string;
  principalId?: string;
  model?: string;
  outcome?: string;
  kind?: string;
  requestId?: string;
  fromSequence?: number;
  toSequence?: number;
}

export interface AuditPage {
  records: AuditRecordRow[];
  /** Empty on the last page. */
  nextPageToken: string;
}

const TOKEN_PREFIX = 'after:';

export function encodePageToken(afterSequence: number): string {
  return Buffer.from(`${TOKEN_PREFIX}${afterSequence}`, 'utf8').toString('base64url');
}

export function decodePageToken(token: string | undefined): number {
  if (!token) return 0;
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  const after = Number(decoded.slice(TOKEN_PREFIX.length));
  if (!decoded.startsWith(TOKEN_PREFIX) || !Number.isSafeInteger(after) || after < 0) {
    throw invalidArgument('page_token is not a token this service issued');
  }
  return after;
}

/** One page in sequence order, starting after `afterSequence`. */
export async function queryAuditRecords(
  db: AuthAuditDb,
  filter: AuditQueryFilter,
  afterSequence: number,
  pageSize: number,
): Promise<AuditPage> {
  let query = db.selectFrom('audit_records').selectAll().where('sequence', '>', afterSequence);
  if (filter.startTime) query = query.where('time', '>=', filter.startTime);
  if (filter.endTime) query = query.where('time', '<', filter.endTime);
  if (filter.tenant) query = query.where('tenant', '=', filter.tenant);
  if (filter.principalId) query = query.where('principal_id', '=', filter.principalId);
  if (filter.model) query = query.where('model', '=', filter.model);
  if (filter.outcome) query = query.where('outcome', '=', filter.outcome);
  if (filter.kind) query = query.where('kind', '=', filter.kind);
  if (filter.requestId) query = query.where('request_id', '=', filter.requestId);
  if (filter.fromSequence) query = query.where('sequence', '>=', filter.fromSequence);
  if (filter.toSequence) query = query.where('sequence', '<=', filter.toSequence);
  const rows = await query
    .orderBy('sequence')
    .limit(pageSize + 1)
    .execute();
  const more = rows.length > pageSize;
  const records = more ? rows.slice(0, pageSize) : rows;
  return { records, nextPageToken: more ? encodePageToken(records[records.length - 1].sequence) : '' };
}

/** Every matching record, page by page, for exports. */
export async function* iterateAuditRecords(
  db: AuthAuditDb,
  filter: AuditQueryFilter,
  pageSize = 1000,
): AsyncGenerator<AuditRecordRow[]> {
  let after = 0;
  for (;;) {
    const page = await queryAuditRecords(db, filter, after, pageSize);
    if (page.records.length > 0) yield page.records;
    if (!page.nextPageToken) return;
    after = page.records[page.records.length - 1].sequence;
  }
}
