import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

/** Count of the batch-size histogram: how many group-commit transactions have committed. */
async function committedBatches(running: RunningTestApp): Promise<number> {
  const metric = await running.app.metrics.batchSize.get();
  return metric.values.find((value) => value.metricName === 'airlock_audit_batch_size_count')?.value ?? 0;
}

// Group commit must batch on both drivers. PGlite runs a whole transaction without returning to the event
// loop, so nothing can arrive while a batch commits: unless the appender waits one turn before it starts a
// batch, each request that arrives gets a transaction of its own (one op per batch, ~4x the CPU per request).
describe.each(DRIVERS)('group commit on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let userKey: string;

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
    userKey = (
      await running.client.createApiKey({
        credential: running.adminKey,
        tenant: 'default',
        name: 'group commit',
        role: 'ROLE_USER',
      })
    ).secret;
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('commits requests that arrive together in a few shared transactions, each answered', async () => {
    const before = await committedBatches(running);
    const requests = 40;
    const answers = await Promise.all(
      Array.from({ length: requests }, () =>
        running.client.authorize({
          credential: userKey,
          action: 'ACTION_CHAT_COMPLETIONS',
          model: 'stories260K',
          requestId: requestId('group'),
        }),
      ),
    );
    expect(answers.every((answer) => answer.allowed)).toBe(true);
    expect(new Set(answers.map((answer) => answer.auditSequence)).size).toBe(requests);
    const batches = (await committedBatches(running)) - before;
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(4);
  });
});
