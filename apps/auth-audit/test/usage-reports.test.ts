import type { audit } from '@airlock/contracts';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// Usage is charged exactly once per request, on real PostgreSQL, whichever of the gateway's Complete and the
// worker's ReportUsage comes first, or both, or only one; a retried report counts once; a report after the
// completion charges its excess and appends a usage record; a late Complete after an interruption charges
// nothing twice. Charges are read from the key's daily quota counter.
describe('worker usage reports on postgres', () => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let clockOffsetMs = 0;
  const clock = () => new Date(Date.now() + clockOffsetMs);

  const records = async (id: string) =>
    (
      await running.client.queryAuditRecords({
        credential: running.adminKey,
        filter: { requestId: id },
        pageSize: 100,
      })
    ).records;
  const newKey = async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'usage',
      role: 'ROLE_USER',
      tokensPerDay: 100_000,
    });
    return { secret: created.secret, id: created.key.id };
  };
  /** Tokens the key has been charged today (reservations included). */
  const charged = async (keyId: string): Promise<number> => {
    const client = database.superuser();
    await client.connect();
    try {
      const { rows } = await client.query<{ tokens: string }>(
        "select tokens from quota_counters where subject = $1 and window_kind = 'day'",
        [`key:${keyId}`],
      );
      return rows.reduce((sum, row) => sum + Number(row.tokens), 0);
    } finally {
      await client.end();
    }
  };
  const authorize = async (credential: string, id: string, reserveTokens = 50, leaseSeconds = 0) => {
    const answer = await running.client.authorize({
      credential,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'stories260K',
      requestId: id,
      clientAddress: '10.8.0.1',
      reserveTokens,
      leaseSeconds,
    });
    expect(answer.allowed).toBe(true);
  };
  const complete = (id: string, overrides: Partial<audit.CompleteRequest> = {}) =>
    running.client.complete({
      requestId: id,
      outcome: 'OUTCOME_SUCCEEDED',
      statusCode: 200,
      promptTokens: 9,
      completionTokens: 4,
      worker: 'w1',
      ...overrides,
    });
  const report = (id: string, generationId: string, promptTokens = 9, completionTokens = 4) =>
    running.client.reportUsage({ requestId: id, generationId, worker: 'w1', promptTokens, completionTokens });
  const kinds = async (id: string) => (await records(id)).map((r) => r.kind);

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    running = await startTestApp(database, {}, clock);
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('charges once when the worker reports before the completion, and when after', async () => {
    const key = await newKey();
    const first = requestId('report-first');
    await authorize(key.secret, first);
    expect(await charged(key.id)).toBe(50);
    await report(first, 'g1');
    await complete(first);
    expect(await charged(key.id)).toBe(13);

    const second = requestId('complete-first');
    await authorize(key.secret, second);
    await complete(second);
    await report(second, 'g1');
    expect(await charged(key.id)).toBe(26);
    // Same counts both ways: no usage record, one completion each.
    expect(await kinds(first)).toEqual(['RECORD_KIND_REQUEST', 'RECORD_KIND_COMPLETION']);
    expect(await kinds(second)).toEqual(['RECORD_KIND_REQUEST', 'RECORD_KIND_COMPLETION']);
  });

  it('counts a retried report once, before and after the completion', async () => {
    const key = await newKey();
    const id = requestId('retried');
    await authorize(key.secret, id);
    await report(id, 'g1');
    await report(id, 'g1');
    await complete(id, { promptTokens: 0, completionTokens: 0, outcome: 'OUTCOME_CANCELLED' });
    await report(id, 'g1');
    expect(await charged(key.id)).toBe(13);
    const completion = (await records(id)).find((r) => r.kind === 'RECORD_KIND_COMPLETION')!;
    expect(completion).toMatchObject({ promptTokens: 9, completionTokens: 4 });
  });

  it("charges a cancelled stream's prompt tokens when the worker's report comes after the completion", async () => {
    const key = await newKey();
    const id = requestId('cancelled');
    await authorize(key.secret, id);
    // The gateway counted 2 streamed pieces and no prompt (the usage comes with the finish it never got).
    await complete(id, {
      outcome: 'OUTCOME_CANCELLED',
      statusCode: 499,
      promptTokens: 0,
      completionTokens: 2,
    });
    expect(await charged(key.id)).toBe(2);
    await report(id, 'g1', 9, 3);
    expect(await charged(key.id)).toBe(12);
    const all = await records(id);
    expect(all.map((r) => r.kind)).toEqual([
      'RECORD_KIND_REQUEST',
      'RECORD_KIND_COMPLETION',
      'RECORD_KIND_USAGE',
    ]);
    expect(all[2]).toMatchObject({ promptTokens: 9, completionTokens: 3, worker: 'w1' });
    // A second generation of the same request (n = 2) adds its generated tokens; the prompt is charged once.
    await report(id, 'g2', 9, 1);
    expect(await charged(key.id)).toBe(13);
    expect((await records(id)).at(-1)).toMatchObject({ promptTokens: 9, completionTokens: 4 });
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('an interrupted request is charged what the worker reported, and a late completion adds only its excess', async () => {
    const key = await newKey();
    const id = requestId('interrupted');
    await authorize(key.secret, id, 500, 5);
    await report(id, 'g1', 7, 30);
    clockOffsetMs += 6_000;
    expect(await running.app.sweepLeases()).toBeGreaterThanOrEqual(1);
    // The reservation of 500 is replaced by the reported 37.
    expect(await charged(key.id)).toBe(37);
    await complete(id, { promptTokens: 7, completionTokens: 30 });
    expect(await charged(key.id)).toBe(37);
    await complete(id, { promptTokens: 7, completionTokens: 31 });
    expect(await charged(key.id)).toBe(37);
    const completions = (await records(id)).filter((r) => r.kind === 'RECORD_KIND_COMPLETION');
    expect(completions.map((r) => r.outcome)).toEqual(['OUTCOME_INTERRUPTED', 'OUTCOME_SUCCEEDED']);
    expect(completions[0]).toMatchObject({ promptTokens: 7, completionTokens: 30, worker: 'w1' });
  });

  it('an interrupted request without any report releases its reservation; a report then charges it', async () => {
    const key = await newKey();
    const id = requestId('unreported');
    await authorize(key.secret, id, 500, 5);
    clockOffsetMs += 6_000;
    expect(await running.app.sweepLeases()).toBeGreaterThanOrEqual(1);
    expect(await charged(key.id)).toBe(0);
    await report(id, 'g1', 5, 6);
    expect(await charged(key.id)).toBe(11);
    expect((await records(id)).at(-1)).toMatchObject({ kind: 'RECORD_KIND_USAGE', promptTokens: 5 });
  });

  it('refuses a report without a generation id', async () => {
    await expect(
      running.client.reportUsage({ requestId: requestId('bad'), worker: 'w1', promptTokens: 1 }),
    ).rejects.toMatchObject({ code: 3 });
  });
});
