import type { AuthAuditDb } from '../database/database.js';
import type { AuditRecordRow } from './audit-record.js';
import { contentAssociatedData, type ContentSealer } from './content-sealer.js';

/** Where one request's sealed bodies sit: the request record's and the completion record's ciphertexts. */
export interface CapturedContent {
  record: AuditRecordRow;
  request?: AuditRecordRow;
  response?: AuditRecordRow;
}

/**
 * The record at `sequence` and the records of the same request (same tenant) that hold its sealed bodies;
 * undefined when there is no such record.
 */
export async function findCapturedContent(
  db: AuthAuditDb,
  sequence: number,
): Promise<CapturedContent | undefined> {
  const record = await db
    .selectFrom('audit_records')
    .selectAll()
    .where('sequence', '=', sequence)
    .executeTakeFirst();
  if (!record) return undefined;
  const siblings = record.request_id
    ? await db
        .selectFrom('audit_records')
        .selectAll()
        .where('request_id', '=', record.request_id)
        .where('tenant', '=', record.tenant)
        .where('content_key_id', '<>', '')
        .orderBy('sequence')
        .execute()
    : record.content_key_id
      ? [record]
      : [];
  return {
    record,
    request: siblings.find((row) => row.request_ciphertext !== ''),
    response: siblings.find((row) => row.response_ciphertext !== ''),
  };
}

/** The plaintext bodies; throws when a record's content key is not loaded or a ciphertext fails its tag. */
export function openCapturedContent(
  sealer: ContentSealer,
  content: CapturedContent,
): { requestBody: Buffer; responseBody: Buffer } {
  const open = (row: AuditRecordRow | undefined, direction: 'request' | 'response') =>
    row
      ? sealer.open(
          direction === 'request' ? row.request_ciphertext : row.response_ciphertext,
          row.content_key_id,
          contentAssociatedData(row.request_id, direction),
        )
      : Buffer.alloc(0);
  return { requestBody: open(content.request, 'request'), responseBody: open(content.response, 'response') };
}
