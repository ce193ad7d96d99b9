import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';
import { grpcCode } from './support/audit-client.js';

// The auditor's procedure of docs/audit-log.md, written independently of the service's code: recompute every
// hash of a JSON Lines export, check the links, and check the signed checkpoints with the public key.
const FIELDS = (
  'sequence time kind request_id principal_id principal_kind tenant role action model worker client_address ' +
  'user_agent outcome status_code error_class prompt_tokens completion_tokens cached_tokens latency_us ttft_us ' +
  'content_capture request_digest response_digest content_key_id request_ciphertext response_ciphertext target ' +
  'details_json prev_hash'
).split(' ');

function auditorVerifies(jsonLines: string): { ok: boolean; checked: number; byHash: Map<number, string> } {
  let prev = '0'.repeat(64);
  const byHash = new Map<number, string>();
  const lines = jsonLines.trim().split('\n');
  for (const line of lines) {
    const record = JSON.parse(line) as Record<string, string | number>;
    const canonical = JSON.stringify(['airlock.audit.v1', ...FIELDS.map((field) => record[field])]);
    const hash = createHash('sha256').update(canonical, 'utf8').digest('hex');
    if (record.prev_hash !== prev || record.hash !== hash) return { ok: false, checked: byHash.size, byHash };
    byHash.set(record.sequence as number, hash);
    prev = hash;
  }
  return { ok: true, checked: lines.length, byHash };
}

describe.each(DRIVERS)('audit query and export on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let auditorOfNorth: string;

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
    const admin = running.adminKey;
    for (const tenant of ['north', 'south']) {
      await running.client.upsertTenant({ credential: admin, tenant: { id: tenant } });
      const user = (
        await running.client.createApiKey({
          credential: admin,
          tenant,
          name: `${tenant} user`,
          role: 'ROLE_USER',
        })
      ).secret;
      for (const model of ['alpha', 'beta', 'alpha']) {
        const id = requestId(tenant);
        await running.client.authorize({
          credential: user,
          action: 'ACTION_CHAT_COMPLETIONS',
          model,
          requestId: id,
          userAgent: 'test, "quoted"',
        });
        await running.client.complete({
          requestId: id,
          outcome: model === 'beta' ? 'OUTCOME_FAILED' : 'OUTCOME_SUCCEEDED',
          statusCode: 200,
        });
      }
    }
    auditorOfNorth = (
      await running.client.createApiKey({
        credential: admin,
        tenant: 'north',
        name: 'north auditor',
        role: 'ROLE_AUDITOR',
      })
    ).secret;
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('filters by tenant, model, outcome and kind', async () => {
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: {
        tenant: 'south',
        model: 'alpha',
        outcome: 'OUTCOME_SUCCEEDED',
        kind: 'RECORD_KIND_COMPLETION',
      },
    });
    expect(records).toHaveLength(2);
    expect(records.every((record) => record.tenant === 'south' && record.model === 'alpha')).toBe(true);
  });

  it('filters by time range', async () => {
    const all = await running.client.queryAuditRecords({ credential: running.adminKey, pageSize: 1000 });
    const future = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { startTime: new Date(Date.now() + 60_000).toISOString() },
    });
    const past = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { startTime: '2000-01-01T00:00:00Z', endTime: new Date(Date.now() + 60_000).toISOString() },
      pageSize: 1000,
    });
    expect(future.records).toHaveLength(0);
    // Every query is itself recorded before it reads: the two in between added two records.
    expect(past.records.length).toBe(all.records.length + 2);
  });

  it('pages with a cursor, in sequence order, without gaps or repeats', async () => {
    const seen: number[] = [];
    let pageToken = '';
    do {
      const page = await running.client.queryAuditRecords({
        credential: running.adminKey,
        pageSize: 4,
        pageToken,
      });
      expect(page.records.length).toBeLessThanOrEqual(4);
      seen.push(...page.records.map((record) => record.sequence));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(Array.from({ length: seen.length }, (_, index) => index + 1));
    expect(
      await grpcCode(
        running.client.queryAuditRecords({ credential: running.adminKey, pageToken: 'bm90IG1pbmU' }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
  });

  it('treats filter values that look like SQL as plain values', async () => {
    for (const value of ["' OR '1'='1", 'alpha; DROP TABLE audit_records; --']) {
      const page = await running.client.queryAuditRecords({
        credential: running.adminKey,
        filter: { model: value, principalId: value },
      });
      expect(page.records).toHaveLength(0);
    }
    expect(
      await grpcCode(
        running.client.queryAuditRecords({
          credential: running.adminKey,
          filter: { tenant: "x' OR 1=1 --" },
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    expect(
      (await running.client.queryAuditRecords({ credential: running.adminKey })).records.length,
    ).toBeGreaterThan(0);
  });

  it('confines a tenant auditor to its tenant', async () => {
    const own = await running.client.queryAuditRecords({ credential: auditorOfNorth, pageSize: 1000 });
    expect(own.records.length).toBeGreaterThan(0);
    expect(own.records.every((record) => record.tenant === 'north')).toBe(true);
    expect(
      await grpcCode(
        running.client.queryAuditRecords({ credential: auditorOfNorth, filter: { tenant: 'south' } }),
      ),
    ).toBe(status.PERMISSION_DENIED);
    const exported = await running.client.exportAuditRecords({ credential: auditorOfNorth });
    expect(
      exported.text
        .trim()
        .split('\n')
        .every((line) => (JSON.parse(line) as { tenant: string }).tenant === 'north'),
    ).toBe(true);
  });

  it('streams a JSON Lines export an auditor can re-verify offline, signed checkpoints included', async () => {
    await running.app.checkpointNow();
    const exported = await running.client.exportAuditRecords({
      credential: running.adminKey,
      format: 'EXPORT_FORMAT_JSONL',
    });
    const result = auditorVerifies(exported.text);
    expect(result).toMatchObject({ ok: true });
    expect(result.checked).toBe(exported.records);
    const { checkpoints, signingKeys } = await running.client.listAuditCheckpoints({
      credential: running.adminKey,
    });
    expect(checkpoints.length).toBeGreaterThan(0);
    for (const checkpoint of checkpoints) {
      const pem = signingKeys.find((key) => key.keyId === checkpoint.keyId)!.publicKeyPem;
      const signed = [
        'airlock.audit.v2.checkpoint',
        checkpoint.sequence,
        checkpoint.rootHash,
        checkpoint.recordHash,
        checkpoint.time,
        checkpoint.previousDigest,
      ].join('\n');
      expect(
        verifySignature(
          null,
          Buffer.from(signed),
          createPublicKey(pem),
          Buffer.from(checkpoint.signature, 'base64'),
        ),
      ).toBe(true);
      expect(result.byHash.get(checkpoint.sequence)).toBe(checkpoint.recordHash);
    }
    // An edited line fails the auditor's check.
    expect(auditorVerifies(exported.text.replace('"model":"beta"', '"model":"gamma"')).ok).toBe(false);
  });

  it('streams CSV with a header and quoted text fields, and audits the export itself', async () => {
    const exported = await running.client.exportAuditRecords({
      credential: running.adminKey,
      format: 'EXPORT_FORMAT_CSV',
      filter: { tenant: 'north', kind: 'RECORD_KIND_REQUEST' },
      requestId: 'export-1',
    });
    const lines = exported.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      [...FIELDS, 'hash', 'client_request_id', 'field_flags', 'model_sha256', 'model_signer'].join(','),
    );
    expect(lines).toHaveLength(4);
    expect(lines[1]).toContain('"test, ""quoted"""');
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { requestId: 'export-1' },
    });
    expect(records[0]).toMatchObject({ action: 'audit.export', kind: 'RECORD_KIND_ADMIN_ACTION' });
    expect(JSON.parse(records[0].detailsJson)).toMatchObject({
      format: 'csv',
      filter: { tenant: 'north', kind: 'request' },
    });
  });

  it('streams a large export in many chunks', async () => {
    const admin = running.adminKey;
    await Promise.all(
      Array.from({ length: 1500 }, () =>
        running.client.authorize({
          credential: admin,
          action: 'ACTION_LIST_MODELS',
          requestId: requestId('bulk'),
        }),
      ),
    );
    const exported = await running.client.exportAuditRecords({ credential: admin });
    expect(exported.chunks).toBeGreaterThan(1);
    expect(auditorVerifies(exported.text)).toMatchObject({ ok: true });
  });
});
