import pg from 'pg';
import { status } from '@grpc/grpc-js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// The database goes away in the middle of a batch (real PostgreSQL only: PGlite lives inside the process).
// The test holds the chain-head lock so that a batch is caught half-way through its transaction, then kills
// every connection of the service, as a failover or a restart of PostgreSQL would.
describe('database going away mid-batch (PostgreSQL)', () => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let attacker: pg.Client;

  const countRecords = async () =>
    Number((await attacker.query<{ count: string }>('select count(*) from audit_records')).rows[0].count);
  const minuteRequests = async (keyId: string) =>
    Number(
      (
        await attacker.query<{ requests: number }>(
          `select coalesce(sum(requests), 0) as requests from quota_counters where subject = $1 and window_kind = 'minute'`,
          [`key:${keyId}`],
        )
      ).rows[0].requests,
    );

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    running = await startTestApp(database);
    attacker = database.superuser();
    await attacker.connect();
  });

  afterAll(async () => {
    await attacker?.end();
    await running?.stop();
    await database?.drop();
  });

  it('fails the callers of the interrupted batch, writes none of it, and recovers', async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'o',
      role: 'ROLE_USER',
      requestsPerMinute: 1000,
    });
    const before = await countRecords();
    const countedBefore = await minuteRequests(created.key.id);

    const blocker = database.superuser();
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('select * from audit_chain_head for update');
    const calls = Array.from({ length: 8 }, () =>
      running.client
        .authorize({
          credential: created.secret,
          action: 'ACTION_CHAT_COMPLETIONS',
          model: 'm',
          requestId: requestId('outage'),
        })
        .then(
          (answer) => ({ ok: true as const, answer }),
          (error: { code: number }) => ({ ok: false as const, code: error.code }),
        ),
    );
    // Wait until a batch is parked on the lock, half-way through its transaction.
    for (let attempt = 0; attempt < 200; attempt += 1) {
      const { rows } = await attacker.query(
        `select 1 from pg_stat_activity where datname = current_database() and application_name = 'airlock-auth-audit' and wait_event_type = 'Lock'`,
      );
      if (rows.length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await attacker.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'airlock-auth-audit'`,
    );
    await blocker.query('rollback');
    await blocker.end();

    const results = await Promise.all(calls);
    const failed = results.filter((result) => !result.ok);
    const succeeded = results.filter((result) => result.ok);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.map((result) => result.code)).toEqual(failed.map(() => status.UNAVAILABLE));
    // Nothing half-written: exactly the answered requests were recorded and counted.
    expect(await countRecords()).toBe(before + succeeded.length);
    expect(await minuteRequests(created.key.id)).toBe(countedBefore + succeeded.length);

    // Back in service at once, with an intact chain.
    const after = await running.client.authorize({
      credential: created.secret,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'm',
      requestId: requestId(),
    });
    expect(after.allowed).toBe(true);
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
    const metrics = await running.app.metrics.registry.getSingleMetricAsString(
      'airlock_audit_batch_failures_total',
    );
    expect(metrics).toMatch(/reason="database_unavailable"} [1-9]/);
    expect(running.logLines.join('\n')).not.toContain(created.secret);
  });
});
