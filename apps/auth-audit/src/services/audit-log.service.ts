import type { audit } from '@airlock/contracts';
import type { Principal } from '../auth/principal.js';
import { actorOf, type AdminJournal } from '../audit/admin-journal.js';
import { CSV_HEADER, toCsvRows, toJsonLines } from '../audit/audit-export.js';
import {
  decodePageToken,
  iterateAuditRecords,
  queryAuditRecords,
  type AuditQueryFilter,
} from '../audit/audit-query.js';
import type { ChainVerifier } from '../audit/chain-verifier.js';
import type { AuditProofs } from '../audit/audit-proofs.js';
import { findCapturedContent, openCapturedContent } from '../audit/captured-content.js';
import type { ContentSealer } from '../audit/content-sealer.js';
import type { CheckpointRow } from '../audit/checkpointer.js';
import type { AuthAuditDb } from '../database/database.js';
import { failedPrecondition, invalidArgument, notFound, permissionDenied } from '../errors.js';
import {
  auditRecordToContract,
  outcomeFromContract,
  recordKindFromContract,
  verifyFailureToContract,
} from '../grpc/contract-mapping.js';
import type { AuthAuditMetrics } from '../metrics/auth-audit-metrics.js';
import { count, requireRequestId, tenantId, text, timestamp } from '../validation.js';
import type { AdminGate } from './admin-gate.js';

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

/** Read, export and verify the audit log (admins, and auditors within their tenant unless global). */
export class AuditLogService {
  constructor(
    private readonly db: AuthAuditDb,
    private readonly gate: AdminGate,
    private readonly journal: AdminJournal,
    private readonly verifier: ChainVerifier,
    private readonly metrics: AuthAuditMetrics,
    private readonly proofs: AuditProofs,
    private readonly sealer: ContentSealer,
  ) {}

  /**
   * Decrypts the bodies one request captured. Every attempt leaves an `audit.content_read` record naming
   * the sequence: a role refused by the gate, another tenant's record, nothing captured, or the read itself,
   * appended before the plaintext is answered. The plaintext is never logged.
   */
  async recordContent(
    request: audit.GetAuditRecordContentRequest,
  ): Promise<audit.GetAuditRecordContentResponse> {
    const sequence = count(request.sequence, 'sequence');
    const target = `sequence:${sequence}`;
    const admitted = await this.gate.admit(request, 'audit.content_read', { target });
    const actor = actorOf(admitted.principal);
    const failed = async (statusCode: number, errorClass: string) =>
      this.journal.run(actor, admitted.context, () =>
        Promise.resolve({
          result: undefined,
          record: {
            action: 'audit.content_read',
            target,
            outcome: statusCode === 403 ? ('denied' as const) : ('failed' as const),
            statusCode,
            errorClass,
          },
        }),
      );
    const content = sequence > 0 ? await findCapturedContent(this.db, sequence) : undefined;
    if (content && !admitted.principal.global && content.record.tenant !== admitted.principal.tenant) {
      await failed(403, 'tenant_forbidden');
      throw permissionDenied("an auditor of one tenant may not read another tenant's content");
    }
    if (!content || (!content.request && !content.response)) {
      await failed(404, 'no_captured_content');
      throw notFound(
        content
          ? `audit record ${sequence} has no captured content (its tenant's content capture was not full)`
          : `no audit record ${sequence}`,
      );
    }
    let bodies: { requestBody: Buffer; responseBody: Buffer };
    try {
      bodies = openCapturedContent(this.sealer, content);
    } catch {
      await failed(409, 'content_key_unavailable');
      throw failedPrecondition(
        `the content of audit record ${sequence} cannot be decrypted with the content keys loaded`,
        'content_key_unavailable',
      );
    }
    const requestSequence = content.request?.sequence ?? 0;
    const responseSequence = content.response?.sequence ?? 0;
    const { sequence: readSequence } = await this.journal.run(actor, admitted.context, () =>
      Promise.resolve({
        result: undefined,
        record: {
          action: 'audit.content_read',
          target,
          details: { requestId: content.record.request_id, requestSequence, responseSequence },
        },
      }),
    );
    return {
      sequence,
      requestId: content.record.request_id,
      requestSequence,
      requestBody: bodies.requestBody,
      responseSequence,
      responseBody: bodies.responseBody,
      readSequence,
    };
  }

  async inclusionProof(
    request: audit.GetAuditInclusionProofRequest,
  ): Promise<audit.GetAuditInclusionProofResponse> {
    await this.gate.admit(request, 'audit.prove');
    const proof = await this.proofs.inclusion({
      sequence: count(request.sequence, 'sequence'),
      treeSize: count(request.treeSize, 'tree_size'),
      receipt: text(request.receipt, 'receipt', 2048),
    });
    return { ...proof, checkpoint: checkpointToContract(proof.checkpoint) };
  }

  async consistencyProof(
    request: audit.GetAuditConsistencyProofRequest,
  ): Promise<audit.GetAuditConsistencyProofResponse> {
    await this.gate.admit(request, 'audit.consistency');
    const proof = await this.proofs.consistency(
      count(request.firstTreeSize, 'first_tree_size'),
      count(request.secondTreeSize, 'second_tree_size'),
    );
    return {
      first: checkpointToContract(proof.first),
      second: checkpointToContract(proof.second),
      proof: proof.proof,
    };
  }

  async query(request: audit.QueryAuditRecordsRequest): Promise<audit.QueryAuditRecordsResponse> {
    const admitted = await this.gate.admit(request, 'audit.query');
    const filter = scopedFilter(admitted.principal, request.filter);
    await this.gate.recordRead(admitted, 'audit.query', { filter });
    const page = await queryAuditRecords(
      this.db,
      filter,
      decodePageToken(request.pageToken),
      pageSize(request.pageSize),
    );
    return { records: page.records.map(auditRecordToContract), nextPageToken: page.nextPageToken };
  }

  /** The export as chunks of JSON Lines or CSV; the export itself is audited before the first byte. */
  async *export(request: audit.ExportAuditRecordsRequest): AsyncGenerator<audit.ExportAuditRecordsResponse> {
    const { principal, context } = await this.gate.admit(request, 'audit.export');
    const filter = scopedFilter(principal, request.filter);
    const format = request.format === 'EXPORT_FORMAT_CSV' ? 'csv' : 'jsonl';
    if (
      request.format &&
      !['EXPORT_FORMAT_UNSPECIFIED', 'EXPORT_FORMAT_JSONL', 'EXPORT_FORMAT_CSV'].includes(request.format)
    ) {
      throw invalidArgument('format must be EXPORT_FORMAT_JSONL or EXPORT_FORMAT_CSV');
    }
    await this.journal.run(actorOf(principal), context, () =>
      Promise.resolve({ result: undefined, record: { action: 'audit.export', details: { format, filter } } }),
    );
    if (format === 'csv') yield { data: Buffer.from(CSV_HEADER, 'utf8'), recordCount: 0 };
    for await (const rows of iterateAuditRecords(this.db, filter)) {
      const textChunk = format === 'csv' ? toCsvRows(rows) : toJsonLines(rows);
      yield { data: Buffer.from(textChunk, 'utf8'), recordCount: rows.length };
    }
  }

  async verify(request: audit.VerifyAuditChainRequest): Promise<audit.VerifyAuditChainResponse> {
    const admitted = await this.gate.admit(request, 'audit.verify');
    const fromLastCheckpoint = request.fromLastCheckpoint ?? false;
    const report = await this.verifier.verify({ fromLastCheckpoint });
    this.metrics.verifications.inc({ result: report.ok ? 'ok' : (report.failure ?? 'failed') });
    // Recorded after it ran, with what it found: appending first would change the log under examination.
    await this.gate.recordRead(admitted, 'audit.verify', {
      fromLastCheckpoint,
      ok: report.ok,
      failure: report.failure ?? '',
      failedSequence: report.failedSequence ?? 0,
    });
    return { ...report, failure: verifyFailureToContract(report.failure) };
  }

  async listCheckpoints(
    request: audit.ListAuditCheckpointsRequest,
  ): Promise<audit.ListAuditCheckpointsResponse> {
    await this.gate.admitRead(request, 'audit.checkpoints');
    const rows = await this.db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('sequence', '>=', count(request.fromSequence, 'from_sequence'))
      .orderBy('sequence')
      .limit(pageSize(request.pageSize))
      .execute();
    const keys = await this.db.selectFrom('audit_signing_keys').selectAll().orderBy('created_at').execute();
    return {
      checkpoints: rows.map(checkpointToContract),
      signingKeys: keys.map((key) => ({ keyId: key.key_id, publicKeyPem: key.public_key_pem })),
    };
  }
}

function checkpointToContract(row: CheckpointRow): audit.Checkpoint {
  return {
    sequence: row.sequence,
    recordHash: row.record_hash,
    time: row.time.toISOString(),
    keyId: row.key_id,
    signature: row.signature,
    rootHash: row.root_hash,
    previousDigest: row.previous_digest,
  };
}

function pageSize(requested: number | undefined): number {
  const size = count(requested, 'page_size', MAX_PAGE_SIZE);
  return size === 0 ? DEFAULT_PAGE_SIZE : size;
}

/** Validates the filter and confines a tenant auditor to its tenant. */
function scopedFilter(principal: Principal, filter: audit.AuditFilter | undefined | null): AuditQueryFilter {
  const input = filter ?? {};
  const requestedTenant = input.tenant ? tenantId(input.tenant, 'filter.tenant') : undefined;
  if (!principal.global && requestedTenant && requestedTenant !== principal.tenant) {
    throw permissionDenied("an auditor of one tenant may not read another tenant's records");
  }
  const outcome = outcomeFromContract(input.outcome);
  const kind = recordKindFromContract(input.kind);
  return {
    startTime: timestamp(input.startTime, 'filter.start_time'),
    endTime: timestamp(input.endTime, 'filter.end_time'),
    tenant: principal.global ? requestedTenant : principal.tenant,
    principalId: text(input.principalId, 'filter.principal_id', 300) || undefined,
    model: text(input.model, 'filter.model', 256) || undefined,
    outcome,
    kind,
    requestId: input.requestId ? requireRequestId(input.requestId, 'filter.request_id') : undefined,
    fromSequence: count(input.fromSequence, 'filter.from_sequence') || undefined,
    toSequence: count(input.toSequence, 'filter.to_sequence') || undefined,
  };
}
