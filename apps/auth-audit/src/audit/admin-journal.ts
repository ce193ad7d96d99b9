import type { AuthAuditDb } from '../database/database.js';
import type { Principal } from '../auth/principal.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import { asServiceError } from '../errors.js';
import { appendToChain } from './audit-chain.js';
import { emptyDraft, type AuditRecordDraft } from './audit-record.js';

/** Who asked, from where: the parts of an admin record that come with the request. */
export interface AdminRequestContext {
  requestId: string;
  clientAddress: string;
  userAgent: string;
}

export interface AdminRecordFields {
  action: string;
  target?: string;
  details?: Record<string, unknown>;
  /** Pre-serialised details (AppendAdminAction). */
  detailsJson?: string;
  outcome?: 'succeeded' | 'failed' | 'denied';
  statusCode?: number;
  errorClass?: string;
}

/** Who an admin record names: a principal, or the service itself. */
export interface RecordedActor {
  id: string;
  kind: string;
  tenant: string;
  role: string;
}

export function actorOf(principal: Principal): RecordedActor {
  return { id: principal.id, kind: principal.kind, tenant: principal.tenant, role: principal.role };
}

/** The principal an admin record names when the service acts on its own (bootstrap, retention). */
export const SYSTEM_ACTOR: RecordedActor = { id: 'system', kind: '', tenant: '', role: '' };

/**
 * Admin actions are rare: each runs in its own transaction, and the change and its audit record commit
 * together (or neither does). Appends share the chain-head lock with the group-commit batches.
 */
export class AdminJournal {
  constructor(
    private readonly db: AuthAuditDb,
    private readonly metrics: AuthAuditMetrics,
    private readonly onCommitted: (headSequence: number) => void,
    /** The time records carry; tests pin it (retention). */
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async run<T>(
    who: RecordedActor,
    context: AdminRequestContext,
    /** Makes the change; returns no record when it turned out there was nothing to change. */
    change: (trx: AuthAuditDb) => Promise<{ result: T; record: AdminRecordFields | undefined }>,
  ): Promise<{ result: T; sequence: number }> {
    try {
      const { result, sequence } = await this.db.transaction().execute(async (trx) => {
        const { result, record } = await change(trx);
        if (!record) return { result, sequence: 0 };
        const [row] = await appendToChain(trx, [adminDraft(who, context, record)], this.clock());
        return { result, sequence: row.sequence };
      });
      if (sequence > 0) {
        this.metrics.records.inc({ kind: 'admin_action' });
        this.onCommitted(sequence);
      }
      return { result, sequence };
    } catch (error) {
      throw asServiceError(error);
    }
  }

  /**
   * Appends the record first and then makes the change, in one transaction: for changes the database
   * admits only after their own record (audit_prune()).
   */
  async recordThen<T>(
    who: RecordedActor,
    context: AdminRequestContext,
    record: AdminRecordFields,
    change: (trx: AuthAuditDb) => Promise<T>,
  ): Promise<{ result: T; sequence: number }> {
    try {
      const { result, sequence } = await this.db.transaction().execute(async (trx) => {
        const [row] = await appendToChain(trx, [adminDraft(who, context, record)], this.clock());
        return { result: await change(trx), sequence: row.sequence };
      });
      this.metrics.records.inc({ kind: 'admin_action' });
      this.onCommitted(sequence);
      return { result, sequence };
    } catch (error) {
      throw asServiceError(error);
    }
  }

  /** Records an attempt that was refused (no change to make). */
  async refused(who: RecordedActor, context: AdminRequestContext, record: AdminRecordFields): Promise<void> {
    await this.run(who, context, () =>
      Promise.resolve({ result: undefined, record: { ...record, outcome: 'denied' } }),
    );
  }
}

function adminDraft(
  who: RecordedActor,
  context: AdminRequestContext,
  record: AdminRecordFields,
): AuditRecordDraft {
  return {
    ...emptyDraft(),
    kind: 'admin_action',
    request_id: context.requestId,
    principal_id: who.id,
    principal_kind: who.kind,
    tenant: who.tenant,
    role: who.role,
    action: record.action,
    target: record.target ?? '',
    details_json: record.detailsJson ?? (record.details ? JSON.stringify(record.details) : ''),
    client_address: context.clientAddress,
    user_agent: context.userAgent,
    outcome: record.outcome ?? 'succeeded',
    status_code: record.statusCode ?? 0,
    error_class: record.errorClass ?? '',
  };
}
