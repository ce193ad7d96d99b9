import pg from 'pg';
import { createLogger } from '@airlock/telemetry';
import { AuditAppender } from '../src/audit/audit-appender.js';
import { appendOnHead, chainRecords, readChainHead, type HeadedAppend } from '../src/audit/audit-chain.js';
import { emptyDraft, recordHash, type AuditRecordDraft } from '../src/audit/audit-record.js';
import { ContentSealer } from '../src/audit/content-sealer.js';
import { AuthAuditMetrics } from '../src/metrics/auth-audit-metrics.js';
import type { AuthAuditDb } from '../src/database/database.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// Pipelined appends on real PostgreSQL (PGlite does not pipeline): the order and fail-closed rules, shown by
// counting records and verifying the chain, never by timing. A batch decides on the head the previous one
// left and writes only if the database's head is still exactly there.

const quiet = createLogger({ service: 'auth-audit', level: 'silent' });
const turn = () => new Promise((resolve) => setImmediate(resolve));

function draft(id: string): AuditRecordDraft {
  return { ...emptyDraft(), kind: 'request', request_id: id, action: 'chat.completions', outcome: 'denied' };
}

async function count(db: AuthAuditDb, table: 'audit_records' | 'quota_counters' | 'audit_open_requests') {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function batchesOn(metrics: AuthAuditMetrics, path: 'pipelined' | 'locked'): Promise<number> {
  return (await metrics.batches.get()).values.find((value) => value.labels.path === path)?.value ?? 0;
}

describe('pipelined audit appends on postgres', () => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let db: AuthAuditDb;
  let sealer: ContentSealer;
  let superuser: pg.Client;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    running = await startTestApp(database);
    db = running.app.database.db;
    sealer = await ContentSealer.fromFile(undefined);
    superuser = database.superuser();
    await superuser.connect();
    // A record the database refuses, standing for any input that fails its batch's statement.
    await superuser.query(`create function refuse_poison() returns trigger language plpgsql as $$
      begin raise exception 'poisoned record' using errcode = 'check_violation'; end $$`);
    await superuser.query(`create trigger refuse_poison before insert on audit_records for each row
      when (new.request_id like 'poison-%') execute function refuse_poison()`);
  });

  afterAll(async () => {
    await superuser?.end();
    await running?.stop();
    await database?.drop();
  });

  /** Polls the server until a statement of this database waits for a row lock (it counts, not times). */
  async function untilWaitingForLock(): Promise<void> {
    for (let poll = 0; poll < 1000; poll += 1) {
      const { rows } = await superuser.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock' and query like '%moved_head%'`,
      );
      if (rows[0].n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('no statement waited for the chain head');
  }

  it('a failed batch between two good ones: its good records commit alone, nothing lands on the hole', async () => {
    const metrics = new AuthAuditMetrics();
    const appender = new AuditAppender(db, sealer, metrics, quiet, {
      maxBatchSize: 512,
      maxConcurrentBatches: 2,
      pipelined: true,
    });
    const recordsBefore = await count(db, 'audit_records');
    const record = (id: string) => appender.record({ type: 'record', draft: draft(id) });
    // Three batches: A alone, B while A is in flight (one poisoned record), C queued behind both.
    const a = Array.from({ length: 5 }, () => record(requestId('a')));
    await turn();
    const poisonId = requestId('poison');
    const b = [record(requestId('b')), record(poisonId), record(requestId('b')), record(requestId('b'))];
    await turn();
    const c = Array.from({ length: 5 }, () => record(requestId('c')));
    const settled = await Promise.allSettled([...a, ...b, ...c]);
    // And after the failure, batches pipeline again on what the locked ones re-established.
    const pipelinedBefore = await batchesOn(metrics, 'pipelined');
    for (let batch = 0; batch < 3; batch += 1) {
      const burst = Array.from({ length: 3 }, () => record(requestId('d')));
      await turn();
      await Promise.all(burst);
    }
    expect((await batchesOn(metrics, 'pipelined')) - pipelinedBefore).toBe(3);
    await appender.close();

    expect(settled.filter((result) => result.status === 'rejected')).toHaveLength(1);
    expect(settled[5 + 1].status).toBe('rejected');
    expect((await metrics.batchFallbacks.get()).values[0].value).toBe(1);
    const { rows } = await superuser.query<{ sequence: string; request_id: string }>(
      'select sequence, request_id from audit_records order by sequence',
    );
    expect(rows).toHaveLength(recordsBefore + 13 + 9);
    // Contiguous from 1 to the head, the poisoned one nowhere, every good op's record there once.
    expect(rows.every((row, index) => Number(row.sequence) === index + 1)).toBe(true);
    expect(rows.some((row) => row.request_id === poisonId)).toBe(false);
    expect((await readChainHead(db)).sequence).toBe(rows.length);
    const report = await running.app.verifyChain();
    expect(report).toMatchObject({ ok: true, recordsChecked: rows.length });
    // The signer proves the new records extend what it witnessed before it signs them.
    expect((await running.app.checkpointNow())?.sequence).toBe(rows.length);
  });

  it('a pipelined record stores every field as it was hashed', async () => {
    const metrics = new AuthAuditMetrics();
    const appender = new AuditAppender(db, sealer, metrics, quiet, {
      maxBatchSize: 512,
      maxConcurrentBatches: 2,
      pipelined: true,
    });
    const id = requestId('every-field');
    const full = Object.fromEntries(
      Object.entries(draft(id)).map(([field, value]) => [
        field,
        typeof value === 'number' ? 7 : value === '' ? `${field.length}"q",{b}\\é` : value,
      ]),
    ) as AuditRecordDraft;
    full.request_id = id;
    await appender.record({ type: 'record', draft: draft(requestId('locked-first')) });
    const { sequence } = await appender.record({ type: 'record', draft: full });
    await appender.close();
    expect(await batchesOn(metrics, 'pipelined')).toBe(1);
    const row = await db
      .selectFrom('audit_records')
      .selectAll()
      .where('sequence', '=', sequence)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject(full);
    expect(recordHash(row)).toBe(row.hash);
  });

  it('a write on a head that is not the database head writes nothing: no record, counter or open row', async () => {
    const head = await readChainHead(db);
    const stale = { sequence: head.sequence - 1, hash: head.hash };
    const id = requestId('stale');
    const before = await Promise.all([
      count(db, 'audit_records'),
      count(db, 'quota_counters'),
      count(db, 'audit_open_requests'),
    ]);
    const appended = await appendOnHead(db, headed(stale, id));
    expect(appended).toBe(false);
    expect(
      await Promise.all([
        count(db, 'audit_records'),
        count(db, 'quota_counters'),
        count(db, 'audit_open_requests'),
      ]),
    ).toEqual(before);
    expect(await readChainHead(db)).toEqual(head);
  });

  it('a batch on top of one not yet committed writes nothing, whether that one then commits or not', async () => {
    for (const earlierCommits of [false, true]) {
      const head = await readChainHead(db);
      const recordsBefore = await count(db, 'audit_records');
      const first = headed(head, requestId('n'));
      const second = headed(first.rows.at(-1)!, requestId('n-plus-1'));
      const written = db.transaction().execute(async (trx) => {
        expect(await appendOnHead(trx, first)).toBe(true);
        // The committed head is still `head`: N+1 cannot land on N's records before they are committed.
        expect(await appendOnHead(db, second)).toBe(false);
        if (!earlierCommits) throw new Error('batch N rolls back');
      });
      if (earlierCommits) await written;
      else await expect(written).rejects.toThrow('batch N rolls back');
      expect(await count(db, 'audit_records')).toBe(recordsBefore + (earlierCommits ? 2 : 0));
      expect(await readChainHead(db)).toEqual(earlierCommits ? pick(first.rows.at(-1)!) : head);
      // Once N has committed, N+1 on top of it commits.
      if (earlierCommits) expect(await appendOnHead(db, second)).toBe(true);
    }
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('two writers on one head: the second waits for the first and commits only if the first rolled back', async () => {
    for (const firstCommits of [true, false]) {
      const head = await readChainHead(db);
      const recordsBefore = await count(db, 'audit_records');
      const mine = headed(head, requestId('mine'));
      const theirs = headed(head, requestId('theirs'));
      let theirsAppended: Promise<boolean> | undefined;
      const written = db.transaction().execute(async (trx) => {
        expect(await appendOnHead(trx, mine)).toBe(true);
        theirsAppended = appendOnHead(db, theirs);
        await untilWaitingForLock();
        if (!firstCommits) throw new Error('the first writer rolls back');
      });
      if (firstCommits) await written;
      else await expect(written).rejects.toThrow('rolls back');
      expect(await theirsAppended).toBe(!firstCommits);
      expect(await count(db, 'audit_records')).toBe(recordsBefore + 2);
      expect(await readChainHead(db)).toEqual(pick((firstCommits ? mine : theirs).rows.at(-1)!));
    }
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('two appenders on one database (replicas): every op recorded once, contiguous, the chain verifies', async () => {
    const appenders = [0, 1].map(
      () =>
        new AuditAppender(db, sealer, new AuthAuditMetrics(), quiet, {
          maxBatchSize: 64,
          maxConcurrentBatches: 2,
          pipelined: true,
        }),
    );
    const recordsBefore = await count(db, 'audit_records');
    const pending: Promise<unknown>[] = [];
    for (let burst = 0; burst < 10; burst += 1) {
      for (let index = 0; index < 20; index += 1) {
        const appender = appenders[index % 2];
        pending.push(appender.record({ type: 'record', draft: draft(requestId('replica')) }));
      }
      await turn();
    }
    const sequences = (await Promise.all(pending)).map((result) => (result as { sequence: number }).sequence);
    await Promise.all(appenders.map((appender) => appender.close()));
    expect(await count(db, 'audit_records')).toBe(recordsBefore + 200);
    expect((await readChainHead(db)).sequence).toBe(recordsBefore + 200);
    expect(new Set(sequences).size).toBe(200);
    expect(await running.app.verifyChain()).toMatchObject({ ok: true, recordsChecked: recordsBefore + 200 });
  });

  it('two replicas pipelining against one request limit admit exactly the limit', async () => {
    // Both on one pinned minute, so no window boundary can intervene; the second shares the signing key.
    const pinned = new Date();
    const replicas = await Promise.all(
      ['replica-1', 'replica-2'].map((name) =>
        startTestApp(database, { witnessDir: `${database.dataDir}/${name}-witness` }, () => pinned),
      ),
    );
    try {
      const created = await replicas[0].client.createApiKey({
        credential: replicas[0].adminKey,
        tenant: 'default',
        name: 'pipelined limit',
        role: 'ROLE_USER',
        requestsPerMinute: 30,
      });
      const answers = await Promise.all(
        Array.from({ length: 90 }, (_, index) =>
          replicas[index % 2].client.authorize({
            credential: created.secret,
            action: 'ACTION_CHAT_COMPLETIONS',
            model: 'm',
            requestId: requestId('limit'),
          }),
        ),
      );
      expect(answers.filter((answer) => answer.allowed)).toHaveLength(30);
      expect(new Set(answers.map((answer) => answer.auditSequence)).size).toBe(90);
      expect(await replicas[1].app.verifyChain()).toMatchObject({ ok: true });
    } finally {
      for (const replica of replicas) await replica.stop();
    }
  });

  it("a worker's usage report that appends nothing keeps the head known: the next Authorize still pipelines", async () => {
    const { secret } = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'usage rhythm',
      role: 'ROLE_USER',
    });
    const authorize = (id: string) =>
      running.client.authorize({
        credential: secret,
        action: 'ACTION_CHAT_COMPLETIONS',
        model: 'm',
        requestId: id,
      });
    await authorize(requestId('rhythm'));
    const metrics = running.app.metrics;
    const lockedBefore = await batchesOn(metrics, 'locked');
    const pipelinedBefore = await batchesOn(metrics, 'pipelined');
    const recordsBefore = await count(db, 'audit_records');
    // One gateway client's rhythm: its request, the worker's report while the request is still open (settled
    // later with its completion, so it appends no record), the next request.
    const rounds = 3;
    for (let round = 0; round < rounds; round += 1) {
      const id = requestId('rhythm');
      expect((await authorize(id)).allowed).toBe(true);
      await running.client.reportUsage({
        requestId: id,
        generationId: requestId('generation'),
        worker: 'w1',
        promptTokens: 3,
        completionTokens: 1,
      });
    }
    expect(await count(db, 'audit_records')).toBe(recordsBefore + rounds);
    expect((await batchesOn(metrics, 'locked')) - lockedBefore).toBe(rounds);
    expect((await batchesOn(metrics, 'pipelined')) - pipelinedBefore).toBe(rounds);
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  const pick = (row: { sequence: number; hash: string }) => ({ sequence: row.sequence, hash: row.hash });

  function headed(head: { sequence: number; hash: string }, id: string): HeadedAppend {
    const now = new Date();
    return {
      head,
      rows: chainRecords(head, [draft(id), draft(id)], now),
      quotaDeltas: [
        { subject: `key:${id}`, window_kind: 'minute', window_start: now, requests: 1, tokens: 10 },
      ],
      opened: [{ requestId: id, openedAt: now, leaseUntil: now, subjects: [], reservedTokens: 0 }],
    };
  }
});
