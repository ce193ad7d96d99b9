import { sql } from 'kysely';
import { recordHash } from '../src/audit/audit-record.js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';
import { asAttacker, restoreRecords, snapshotRecords } from './support/tamper.js';
import type { AuditRecordRow } from '../src/audit/audit-record.js';
import { verifyFailureToContract } from '../src/grpc/contract-mapping.js';

// Tamper evidence, against real PostgreSQL and PGlite: the tests edit, delete, insert and reorder rows
// directly in the database (as a superuser with triggers off) and check that verify names the exact record.
describe.each(DRIVERS)('audit hash chain on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let userKey: string;
  let original: AuditRecordRow[];

  const db = () => running.app.database.db;
  // In process, not the RPC: a VerifyAuditChain call is itself recorded, which would move the chain under test.
  const verify = async (fromLastCheckpoint = false) => {
    const report = await running.app.verifyChain({ fromLastCheckpoint });
    return { ...report, failure: verifyFailureToContract(report.failure) };
  };

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'chain test user',
      role: 'ROLE_USER',
    });
    userKey = created.secret;
    for (let index = 0; index < 10; index += 1) {
      const id = requestId('chain');
      const answer = await running.client.authorize({
        credential: userKey,
        action: 'ACTION_CHAT_COMPLETIONS',
        model: 'stories260K',
        requestId: id,
        requestBody: Buffer.from(`{"prompt":"${index}"}`),
      });
      expect(answer.allowed).toBe(true);
      await running.client.complete({
        requestId: id,
        outcome: 'OUTCOME_SUCCEEDED',
        statusCode: 200,
        promptTokens: 5,
        completionTokens: 7,
        latencyMs: 12.5,
      });
    }
    original = await snapshotRecords(db());
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  afterEach(async () => {
    await restoreRecords(db(), original);
  });

  it('verifies an untouched chain from genesis, every record linked to the one before', async () => {
    const report = await verify();
    expect(report).toMatchObject({ ok: true, firstSequence: 1, recordsChecked: original.length });
    expect(report.lastSequence).toBe(original.at(-1)!.sequence);
    expect(original[0].prev_hash).toBe('0'.repeat(64));
    for (let index = 1; index < original.length; index += 1) {
      expect(original[index].prev_hash).toBe(original[index - 1].hash);
      expect(recordHash(original[index])).toBe(original[index].hash);
    }
  });

  it('names an edited record', async () => {
    await asAttacker(db(), [sql`update audit_records set model = 'other-model' where sequence = 5`]);
    expect(await verify()).toMatchObject({
      ok: false,
      failedSequence: 5,
      failure: 'VERIFY_FAILURE_RECORD_ALTERED',
    });
  });

  it('names a deleted record', async () => {
    await asAttacker(db(), [sql`delete from audit_records where sequence = 7`]);
    expect(await verify()).toMatchObject({
      ok: false,
      failedSequence: 7,
      failure: 'VERIFY_FAILURE_RECORD_MISSING',
    });
  });

  it('names a deleted record even when later records were renumbered to close the gap', async () => {
    await asAttacker(db(), [
      sql`delete from audit_records where sequence = 7`,
      sql`update audit_records set sequence = -(sequence - 1) where sequence > 7`,
      sql`update audit_records set sequence = -sequence where sequence < 0`,
    ]);
    expect(await verify()).toMatchObject({
      ok: false,
      failedSequence: 7,
      failure: 'VERIFY_FAILURE_RECORD_MISSING',
    });
  });

  it('names an inserted record, even one with a correctly computed link and hash', async () => {
    const before = original.find((row) => row.sequence === 8)!;
    const forged = {
      ...original.find((row) => row.sequence === 9)!,
      sequence: 9,
      principal_id: 'key:forged',
    };
    forged.prev_hash = before.hash;
    forged.hash = recordHash(forged);
    await asAttacker(db(), [
      sql`update audit_records set sequence = -(sequence + 1) where sequence >= 9`,
      sql`update audit_records set sequence = -sequence where sequence < 0`,
      (trx) => trx.insertInto('audit_records').values(forged).execute(),
    ]);
    expect(await verify()).toMatchObject({
      ok: false,
      failedSequence: 9,
      failure: 'VERIFY_FAILURE_RECORD_INSERTED',
    });
  });

  it('names the first displaced record when two records are swapped', async () => {
    await asAttacker(db(), [
      sql`update audit_records set sequence = -4 where sequence = 6`,
      sql`update audit_records set sequence = 6 where sequence = 4`,
      sql`update audit_records set sequence = 4 where sequence = -4`,
    ]);
    const report = await verify();
    expect(report).toMatchObject({ ok: false, failedSequence: 4 });
    expect(['VERIFY_FAILURE_RECORD_ALTERED', 'VERIFY_FAILURE_CHAIN_BROKEN']).toContain(report.failure);
  });

  it('names a record that was edited and re-hashed, through the link its successor holds', async () => {
    const target = { ...original.find((row) => row.sequence === 5)!, model: 'rewritten' };
    await asAttacker(db(), [
      sql`update audit_records set model = ${target.model}, hash = ${recordHash(target)} where sequence = 5`,
    ]);
    expect(await verify()).toMatchObject({
      ok: false,
      failedSequence: 5,
      failure: 'VERIFY_FAILURE_CHAIN_BROKEN',
    });
  });

  it('catches a rewrite of the whole chain at the signed checkpoint', async () => {
    const checkpoint = await running.app.checkpointNow();
    expect(checkpoint?.sequence).toBe(original.at(-1)!.sequence);
    // The attacker edits record 3 and recomputes every later hash: the chain alone is consistent again.
    const rows = (await snapshotRecords(db())).map((row) => ({ ...row }));
    rows[2].model = 'rewritten';
    for (let index = 2; index < rows.length; index += 1) {
      if (index > 2) rows[index].prev_hash = rows[index - 1].hash;
      rows[index].hash = recordHash(rows[index]);
    }
    await restoreRecords(db(), rows);
    const report = await verify();
    expect(report).toMatchObject({
      ok: false,
      failedSequence: checkpoint!.sequence,
      failure: 'VERIFY_FAILURE_CHECKPOINT_MISMATCH',
    });
  });

  it('refuses a checkpoint whose signature no trusted key verifies', async () => {
    const third = original[2];
    await asAttacker(db(), [
      (trx) =>
        trx
          .insertInto('audit_checkpoints')
          .values({
            sequence: third.sequence,
            record_hash: third.hash,
            time: new Date(),
            key_id: 'attacker',
            signature: Buffer.alloc(64).toString('base64'),
            root_hash: '',
            previous_digest: '',
            frontier: '[]',
          })
          .execute(),
    ]);
    expect(await verify()).toMatchObject({
      ok: false,
      failedSequence: third.sequence,
      failure: 'VERIFY_FAILURE_CHECKPOINT_SIGNATURE_INVALID',
    });
    await asAttacker(db(), [sql`delete from audit_checkpoints where key_id = 'attacker'`]);
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the audit table in the database itself', async () => {
    for (const statement of [
      sql`update audit_records set model = 'x' where sequence = 1`,
      sql`delete from audit_records where sequence = 1`,
      sql`truncate audit_records`,
      sql`delete from audit_checkpoints`,
    ]) {
      await expect(statement.execute(db())).rejects.toThrow(/append-only/);
    }
    await expect(sql`select audit_prune(2)`.execute(db())).rejects.toThrow(/no signed checkpoint/);
    // The old session switch no longer opens the table, not even to the owner outside audit_prune().
    await expect(
      db()
        .transaction()
        .execute(async (trx) => {
          await sql`set local airlock.audit_prune = 'on'`.execute(trx);
          await sql`delete from audit_records where sequence = 1`.execute(trx);
        }),
    ).rejects.toThrow(/append-only/);
    expect(await snapshotRecords(db())).toHaveLength(original.length);
  });

  it('refuses to prune while retention is off, even at a signed checkpoint (test/least-privilege prunes)', async () => {
    await running.app.checkpointNow();
    await expect(running.app.pruneOlderThan(new Date(Date.now() + 60_000))).rejects.toThrow(
      /retention is off/,
    );
    expect(await snapshotRecords(db())).toHaveLength(original.length);
  });
});
