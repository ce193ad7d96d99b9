import { execFile } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import pg from 'pg';
import { recordHash, type AuditRecordRow } from '../src/audit/audit-record.js';
import { leafHash, verifyInclusion } from '../src/audit/merkle-tree.js';
import { decodeReceipt, receiptSignatureValid } from '../src/audit/receipts.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { grpcCode } from './support/audit-client.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// Insiders with database access, on real PostgreSQL: each attack from issue 8 either is refused by the
// database, or is reported by verify naming the exact sequence — because the signed checkpoints also went
// to a witness file outside the database — and the signer refuses to sign over what was changed, stopping
// inference (fail closed). PGlite has one role only; these attacks need a second login.

interface Scene {
  database: TestDatabase;
  running: RunningTestApp;
  userKey: string;
  /** Runs SQL as the database owner (here the superuser that owns every table). */
  owner(statements: string[], values?: unknown[][]): Promise<void>;
  /** Sends n Authorize+Complete pairs; returns the receipts of the request records. */
  traffic(n: number): Promise<string[]>;
}

async function scene(): Promise<Scene> {
  const database = await createTestDatabase('postgres');
  const running = await startTestApp(database);
  const created = await running.client.createApiKey({
    credential: running.adminKey,
    tenant: 'default',
    name: 'insider test user',
    role: 'ROLE_USER',
  });
  const owner = async (statements: string[], values: unknown[][] = []) => {
    const client: pg.Client = database.superuser();
    await client.connect();
    try {
      await client.query('begin');
      for (const [index, statement] of statements.entries()) await client.query(statement, values[index]);
      await client.query('commit');
    } finally {
      await client.end();
    }
  };
  const traffic = async (n: number) => {
    const receipts: string[] = [];
    for (let index = 0; index < n; index += 1) {
      const id = requestId('insider');
      const answer = await running.client.authorize({
        credential: created.secret,
        action: 'ACTION_CHAT_COMPLETIONS',
        model: 'm',
        requestId: id,
      });
      expect(answer.allowed).toBe(true);
      receipts.push(answer.auditReceipt);
      await running.client.complete({ requestId: id, outcome: 'OUTCOME_SUCCEEDED', statusCode: 200 });
    }
    return receipts;
  };
  return { database, running, userKey: created.secret, owner, traffic };
}

async function records(s: Scene): Promise<AuditRecordRow[]> {
  return s.running.app.database.db.selectFrom('audit_records').selectAll().orderBy('sequence').execute();
}

/** The owner rewrites record `target` and re-hashes the chain from there, moving the head: a consistent forgery. */
async function rehashFrom(s: Scene, target: number): Promise<void> {
  const rows = await records(s);
  const statements = ['alter table audit_records disable trigger user'];
  const values: unknown[][] = [[]];
  let prev = rows[target - 2].hash;
  for (const row of rows.slice(target - 1)) {
    const forged = { ...row, prev_hash: prev, model: row.sequence === target ? 'forged-model' : row.model };
    forged.hash = recordHash(forged);
    statements.push('update audit_records set model = $1, prev_hash = $2, hash = $3 where sequence = $4');
    values.push([forged.model, forged.prev_hash, forged.hash, row.sequence]);
    prev = forged.hash;
  }
  statements.push(
    'alter table audit_records enable trigger user',
    'alter table audit_checkpoints disable trigger user',
    'delete from audit_checkpoints',
    'alter table audit_checkpoints enable trigger user',
    'update audit_chain_head set hash = $1 where id = 1',
  );
  values.push([], [], [], [], [prev]);
  await s.owner(statements, values);
}

const CLI = fileURLToPath(new URL('../../cli/bin/airlock.mjs', import.meta.url));

/** `airlock audit verify --export --witness --public-key`, as an auditor runs it: files only, no service. */
async function offlineVerify(s: Scene): Promise<{ code: number; report: Record<string, unknown> }> {
  const dir = s.database.dataDir;
  const exported = await s.running.client.exportAuditRecords({ credential: s.running.adminKey });
  await writeFile(join(dir, 'export.jsonl'), exported.text);
  const pem = createPublicKey(await readFile(join(dir, 'audit-signing-key.pem'), 'utf8'))
    .export({ type: 'spki', format: 'pem' })
    .toString();
  await writeFile(join(dir, 'public.pem'), pem);
  const args = [CLI, '--json', 'audit', 'verify', '--export', join(dir, 'export.jsonl')];
  args.push('--witness', s.running.app.witnessFile, '--public-key', join(dir, 'public.pem'));
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 30_000 }, (error, stdout) =>
      resolve({
        code: error ? Number(error.code) : 0,
        report: JSON.parse(stdout) as Record<string, unknown>,
      }),
    );
  });
}

const verify = (s: Scene) => s.running.client.verifyAuditChain({ credential: s.running.adminKey });
const authorizeCode = (s: Scene) =>
  grpcCode(
    s.running.client.authorize({
      credential: s.userKey,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'm',
      requestId: requestId('after'),
    }),
  );

describe('insider attacks on PostgreSQL', () => {
  const scenes: Scene[] = [];
  const fresh = async () => {
    const s = await scene();
    scenes.push(s);
    return s;
  };

  afterAll(async () => {
    for (const s of scenes) {
      await s.running.stop().catch(() => undefined);
      await s.database.drop();
    }
  });

  it('unprivileged login: no prune, no temp-table shadowing, no session-setting bypass', async () => {
    const s = await fresh();
    await s.traffic(3);
    await s.running.app.checkpointNow();
    const intruder = `intruder_${process.pid}_${Date.now() % 100000}`;
    await s.owner([`create role ${intruder} login`, `grant select, delete on audit_records to ${intruder}`]);
    const url = new URL(s.database.url!);
    url.username = intruder;
    const attempt = async (statements: string[]) => {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        await client.query('begin');
        for (const statement of statements) await client.query(statement);
        return 'accepted';
      } catch (error) {
        return (error as Error).message;
      } finally {
        await client.query('rollback').catch(() => undefined);
        await client.end();
      }
    };
    const before = (await records(s)).length;
    expect(await attempt(['select audit_prune(2)'])).toMatch(/permission denied for function audit_prune/);
    expect(
      await attempt([
        'create temp table audit_checkpoints (sequence bigint)',
        'insert into audit_checkpoints values (5)',
        'set local search_path = pg_temp, public',
        'select audit_prune(5)',
      ]),
    ).toMatch(/permission denied/);
    expect(
      await attempt([
        "set local airlock.audit_prune = 'on'",
        "select set_config('airlock.audit_prune_xact', pg_current_xact_id()::text, true)",
        'delete from audit_records where sequence <= 5',
      ]),
    ).toMatch(/append-only/);
    expect(await records(s)).toHaveLength(before);
    await s.owner([`drop owned by ${intruder}`, `drop role ${intruder}`]);
    expect(await verify(s)).toMatchObject({ ok: true });
  });

  it('owner cuts the tail and deletes every checkpoint: verify names the first cut record', async () => {
    const s = await fresh();
    await s.traffic(5);
    const witnessed = await s.running.app.checkpointNow();
    await s.traffic(3);
    await s.running.app.checkpointNow();
    const cutFrom = witnessed!.sequence - 2;
    const rows = await records(s);
    await s.owner(
      [
        'alter table audit_records disable trigger user',
        'delete from audit_records where sequence >= $1',
        'alter table audit_records enable trigger user',
        'alter table audit_checkpoints disable trigger user',
        'delete from audit_checkpoints',
        'alter table audit_checkpoints enable trigger user',
        'update audit_chain_head set sequence = $1, hash = $2 where id = 1',
      ],
      [[], [cutFrom], [], [], [], [], [cutFrom - 1, rows[cutFrom - 2].hash]],
    );
    expect(await verify(s)).toMatchObject({
      ok: false,
      failure: 'VERIFY_FAILURE_LOG_TRUNCATED',
      failedSequence: cutFrom,
    });
    // The verify just run is itself recorded (audit.verify, at cutFrom: the head was moved back) and the
    // export appends its own audit.export record after it: the offline check names the first sequence the
    // log is short of, cutFrom + 2.
    expect(await offlineVerify(s)).toMatchObject({
      code: 3,
      report: { ok: false, failure: 'log_truncated', failedSequence: cutFrom + 2 },
    });
    // The signer sees the head behind what it witnessed: it refuses, and inference stops.
    await expect(s.running.app.checkpointNow()).rejects.toThrow(/behind the last witnessed tree size/);
    expect(s.running.app.signerHalted()).toBeDefined();
    expect(await authorizeCode(s)).toBe(status.UNAVAILABLE);
    expect(
      await s.running.app.metrics.registry.getSingleMetricAsString('airlock_audit_signer_halted'),
    ).toMatch(/airlock_audit_signer_halted 1/);
  });

  it('owner re-hashes the chain with one edited record and deletes the checkpoints: verify names the witnessed checkpoint; the receipt proves the original', async () => {
    const s = await fresh();
    const receipts = await s.traffic(6);
    const checkpoint = await s.running.app.checkpointNow();
    const receipt = decodeReceipt(receipts[2])!;
    const target = receipt.sequence;
    const original = (await records(s))[target - 1];
    await rehashFrom(s, target);
    // The database alone is consistent again…
    expect((await records(s))[target - 1].model).toBe('forged-model');
    // …but its tree at the witnessed size is not the one the witness holds.
    expect(await verify(s)).toMatchObject({
      ok: false,
      failure: 'VERIFY_FAILURE_WITNESS_MISMATCH',
      failedSequence: checkpoint!.sequence,
    });
    // The auditor's offline verifier, from the export, the witness file and the public key alone.
    expect(await offlineVerify(s)).toMatchObject({
      code: 3,
      report: { ok: false, failure: 'witness_mismatch', failedSequence: checkpoint!.sequence },
    });
    // The client's receipt still verifies with the public key and names the original hash; the service
    // gives no proof for the forged log.
    const pem = createPublicKey(await readFile(join(s.database.dataDir, 'audit-signing-key.pem'), 'utf8'))
      .export({ type: 'spki', format: 'pem' })
      .toString();
    expect(receiptSignatureValid(receipt, new Map([[receipt.key_id, pem]]))).toBe(true);
    expect(receipt.record_hash).toBe(original.hash);
    expect(
      await grpcCode(
        s.running.client.getAuditInclusionProof({ credential: s.userKey, receipt: receipts[2] }),
      ),
    ).not.toBe(status.OK);
    // The signer refuses to sign over the forged head, and inference stops.
    // (The export above appended a record linking to the forged head.)
    await expect(s.running.app.checkpointNow()).rejects.toThrow(/does not link to the last signed head/);
    expect(s.running.app.signerHalted()).toBeDefined();
    expect(await authorizeCode(s)).toBe(status.UNAVAILABLE);
  });

  it('owner re-hashes while traffic continues: the signer finds the new records do not link to what it signed', async () => {
    const s = await fresh();
    await s.traffic(3);
    await s.running.app.checkpointNow();
    await rehashFrom(s, 4);
    await s.traffic(2);
    await expect(s.running.app.checkpointNow()).rejects.toThrow(/does not link to the last signed head/);
    expect(await authorizeCode(s)).toBe(status.UNAVAILABLE);
  });

  it('signing over a forged head: after a restart the signer still refuses, and no checkpoint is added', async () => {
    const s = await fresh();
    await s.traffic(4);
    const checkpoint = await s.running.app.checkpointNow();
    await rehashFrom(s, 3);
    await s.running.stop();
    const restarted = await startTestApp(s.database);
    s.running = restarted;
    expect(restarted.app.signerHalted()).toMatch(new RegExp(`record ${checkpoint!.sequence} differs`));
    await expect(restarted.app.checkpointNow()).rejects.toThrow(/differs from the last witnessed checkpoint/);
    const stored = await restarted.app.database.db.selectFrom('audit_checkpoints').selectAll().execute();
    expect(stored).toHaveLength(0);
    expect(await authorizeCode(s)).toBe(status.UNAVAILABLE);
    expect(await verify(s)).toMatchObject({ ok: false, failedSequence: checkpoint!.sequence });
  });

  it('owner swaps in an empty database: the signer refuses at start, not once the new log outgrows the witness', async () => {
    const s = await fresh();
    await s.traffic(3);
    const checkpoint = await s.running.app.checkpointNow();
    await s.running.stop();
    // The same data directory (signing key, witness file), another database: empty, as a fresh install's.
    const empty = await createTestDatabase('postgres');
    try {
      const swapped = await startTestApp(empty, {
        dataDir: s.database.dataDir,
        witnessDir: join(s.database.dataDir, 'audit-witness'),
      });
      try {
        expect(swapped.app.signerHalted()).toBe(
          `the database has no record ${checkpoint!.sequence}, which the last witnessed checkpoint signed`,
        );
        const code = await grpcCode(
          swapped.client.authorize({
            credential: swapped.adminKey,
            action: 'ACTION_CHAT_COMPLETIONS',
            model: 'm',
            requestId: requestId('swapped'),
          }),
        );
        expect(code).toBe(status.UNAVAILABLE);
      } finally {
        await swapped.stop();
      }
    } finally {
      await empty.drop();
    }
    s.running = await startTestApp(s.database);
    expect(s.running.app.signerHalted()).toBeUndefined();
  });

  it('untouched: proofs for every record verify against the signed root, and the log extends the witness', async () => {
    const s = await fresh();
    const receipts = await s.traffic(4);
    const first = await s.running.app.checkpointNow();
    await s.traffic(3);
    const second = await s.running.app.checkpointNow();
    for (const receipt of receipts) {
      const proof = await s.running.client.getAuditInclusionProof({ credential: s.userKey, receipt });
      expect(proof.receiptValid).toBe(true);
      expect(proof.checkpoint!.sequence).toBe(second!.sequence);
      expect(
        verifyInclusion(
          proof.sequence - 1,
          proof.checkpoint!.sequence,
          leafHash(proof.recordHash),
          proof.auditPath.map((node) => Buffer.from(node, 'hex')),
          Buffer.from(proof.checkpoint!.rootHash, 'hex'),
        ),
      ).toBe(true);
    }
    const consistency = await s.running.client.getAuditConsistencyProof({
      credential: s.running.adminKey,
      firstTreeSize: first!.sequence,
      secondTreeSize: second!.sequence,
    });
    expect(consistency.proof.length).toBeGreaterThan(0);
    expect(await offlineVerify(s)).toMatchObject({ code: 0, report: { ok: true, witnessed: 2 } });
    expect(await verify(s)).toMatchObject({
      ok: true,
      witnessedCheckpoints: 2,
      lastWitnessedTreeSize: second!.sequence,
    });
  });
});
