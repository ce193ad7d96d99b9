// What the audit log says happened, read from the database itself, set against what each client saw.
import type pg from 'pg';
import type { CallResult } from './steady-load.js';

export interface AuditRow {
  sequence: number;
  kind: string;
  request_id: string;
  principal_id: string;
  action: string;
  outcome: string;
  status_code: number;
  error_class: string;
  field_flags: string;
  prompt_tokens: number;
  completion_tokens: number;
}

export async function readAuditRecords(database: pg.Client): Promise<AuditRow[]> {
  const { rows } = await database.query<AuditRow>(
    `select sequence, kind, request_id, principal_id, action, outcome, status_code, error_class, field_flags,
            prompt_tokens, completion_tokens
       from audit_records order by sequence`,
  );
  return rows.map((row) => ({ ...row, sequence: Number(row.sequence) }));
}

/** Outcomes a completion record may give a call, by what the client saw. */
function consistent(call: CallResult, outcome: string): boolean {
  // An answer the client received in full, whose completion its killed gateway never filed: interrupted.
  if (call.outcome === 'ok') return outcome === 'succeeded' || outcome === 'interrupted';
  return outcome !== 'succeeded';
}

export interface OutcomeFindings {
  /** Calls answered 200 (whole or started streams). */
  served: CallResult[];
  /** Served calls whose request record is missing, not `allowed`, or at another sequence than their header said. */
  unrecorded: CallResult[];
  /** Allowed requests with no final record (a completion, or the admin action they authorised). */
  unfinished: AuditRow[];
  /** Requests with a second completion that is not flagged as arriving after the sweeper's. */
  doubled: string[];
  /** Calls whose final record contradicts what the client saw (e.g. an error recorded as succeeded). */
  misstated: { call: CallResult; outcome: string }[];
  /** Refused calls (not 200) that left no record at all, by what the client saw. */
  refusedUnrecorded: CallResult[];
}

export function compareOutcomes(calls: CallResult[], records: AuditRow[]): OutcomeFindings {
  const requests = new Map(records.filter((r) => r.kind === 'request').map((r) => [r.request_id, r]));
  const endings = new Map<string, AuditRow[]>();
  for (const record of records.filter((r) => r.kind !== 'request'))
    endings.set(record.request_id, [...(endings.get(record.request_id) ?? []), record]);

  const served = calls.filter((c) => c.status === 200);
  const unrecorded = served.filter((c) => {
    const record = requests.get(c.requestId);
    return !record || record.outcome !== 'allowed' || record.sequence !== c.sequence;
  });
  const unfinished = [...requests.values()].filter(
    (r) => r.outcome === 'allowed' && !endings.has(r.request_id),
  );
  const doubled = [...endings.entries()]
    .filter(([, rows]) => rows.slice(1).some((row) => !row.field_flags.includes('after_interrupted')))
    .map(([id]) => id);
  const misstated = calls.flatMap((call) => {
    const last = endings.get(call.requestId)?.findLast((row) => row.kind === 'completion');
    return last && !consistent(call, last.outcome) ? [{ call, outcome: last.outcome }] : [];
  });
  const refusedUnrecorded = calls.filter(
    (c) => c.status !== 200 && c.outcome !== 'ok' && !requests.has(c.requestId) && !endings.has(c.requestId),
  );
  return { served, unrecorded, unfinished, doubled, misstated, refusedUnrecorded };
}

/**
 * Each request's usage as charged: the token counts of its last completion or usage record (a worker's
 * report that came after the completion appends a usage record with the new totals).
 */
export function chargedUsage(records: AuditRow[]): Map<string, { prompt: number; completion: number }> {
  const usage = new Map<string, { prompt: number; completion: number }>();
  for (const record of records)
    if (record.kind === 'completion' || record.kind === 'usage')
      usage.set(record.request_id, { prompt: record.prompt_tokens, completion: record.completion_tokens });
  return usage;
}

export const countBy = (items: string[]): Record<string, number> =>
  items.reduce<Record<string, number>>(
    (counts, item) => ({ ...counts, [item]: (counts[item] ?? 0) + 1 }),
    {},
  );
