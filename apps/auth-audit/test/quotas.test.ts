import { status } from '@grpc/grpc-js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// Quotas with the clock pinned to 10:20:30 UTC, so no minute or day boundary can fall inside a test.
const PINNED = new Date('2030-01-15T10:20:30.000Z');
const clock = () => PINNED;

describe.each(DRIVERS)('quotas on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;

  const newKey = async (limits: Record<string, number>, tenant = 'default') =>
    (
      await running.client.createApiKey({
        credential: running.adminKey,
        tenant,
        name: 'q',
        role: 'ROLE_USER',
        ...limits,
      })
    ).secret;
  const authorize = (credential: string, client = running.client) =>
    client.authorize({
      credential,
      action: 'ACTION_EMBEDDINGS',
      model: 'stories260K',
      requestId: requestId('quota'),
    });
  const spend = async (credential: string, tokens: number) => {
    const id = requestId('spend');
    const answer = await running.client.authorize({
      credential,
      action: 'ACTION_COMPLETIONS',
      model: 'stories260K',
      requestId: id,
    });
    expect(answer.allowed).toBe(true);
    await running.client.complete({
      requestId: id,
      outcome: 'OUTCOME_SUCCEEDED',
      statusCode: 200,
      promptTokens: tokens,
      completionTokens: 0,
    });
  };

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database, {}, clock);
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('counts requests per minute and answers with the x-ratelimit-* numbers and Retry-After', async () => {
    const key = await newKey({ requestsPerMinute: 3 });
    const remaining: number[] = [];
    for (let index = 0; index < 3; index += 1) {
      const answer = await authorize(key);
      expect(answer.allowed).toBe(true);
      expect(answer.rateLimit).toMatchObject({ requestsLimit: 3, requestsResetSeconds: 30 });
      remaining.push(answer.rateLimit!.requestsRemaining);
    }
    expect(remaining).toEqual([2, 1, 0]);
    expect(await authorize(key)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_RATE_LIMITED_REQUESTS',
      grpcStatus: status.RESOURCE_EXHAUSTED,
      retryAfterSeconds: 30,
      rateLimit: { requestsLimit: 3, requestsRemaining: 0 },
    });
  });

  it('charges completed tokens against tokens per minute', async () => {
    const key = await newKey({ tokensPerMinute: 100 });
    await spend(key, 60);
    expect((await authorize(key)).rateLimit).toMatchObject({ tokensLimit: 100, tokensRemaining: 40 });
    await spend(key, 50);
    expect(await authorize(key)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_RATE_LIMITED_TOKENS',
      retryAfterSeconds: 30,
    });
  });

  it('enforces daily and monthly token budgets until the window resets', async () => {
    const daily = await newKey({ tokensPerDay: 50 });
    await spend(daily, 60);
    const secondsToMidnight = 24 * 3600 - (10 * 3600 + 20 * 60 + 30);
    expect(await authorize(daily)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_BUDGET_EXHAUSTED',
      retryAfterSeconds: secondsToMidnight,
    });
    const monthly = await newKey({ tokensPerMonth: 10 });
    await spend(monthly, 10);
    expect(await authorize(monthly)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_BUDGET_EXHAUSTED',
    });
  });

  it('shares a tenant limit between its keys and reports the tighter limit', async () => {
    await running.client.upsertTenant({
      credential: running.adminKey,
      tenant: { id: 'shared', requestsPerMinute: 4 },
    });
    const first = await newKey({ requestsPerMinute: 10 }, 'shared');
    const second = await newKey({}, 'shared');
    expect((await authorize(first)).rateLimit).toMatchObject({ requestsLimit: 4, requestsRemaining: 3 });
    expect((await authorize(first)).allowed).toBe(true);
    expect((await authorize(second)).allowed).toBe(true);
    expect((await authorize(second)).rateLimit).toMatchObject({ requestsLimit: 4, requestsRemaining: 0 });
    expect(await authorize(first)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_RATE_LIMITED_REQUESTS',
    });
  });

  it('admits exactly the limit when many requests arrive at once', async () => {
    const key = await newKey({ requestsPerMinute: 10 });
    const answers = await Promise.all(Array.from({ length: 40 }, () => authorize(key)));
    expect(answers.filter((answer) => answer.allowed)).toHaveLength(10);
    expect(
      answers.filter((answer) => answer.denialReason === 'DENIAL_REASON_RATE_LIMITED_REQUESTS'),
    ).toHaveLength(30);
  });

  it('refuses Complete for a request id that was never authorised', async () => {
    const code = await running.client
      .complete({ requestId: requestId('never'), outcome: 'OUTCOME_SUCCEEDED' })
      .then(
        () => 0,
        (error: { code: number }) => error.code,
      );
    expect(code).toBe(status.NOT_FOUND);
  });
});

describe('two replicas on one PostgreSQL', () => {
  let database: TestDatabase;
  let first: RunningTestApp;
  let second: RunningTestApp;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    // Both migrate the same fresh database at once: the advisory lock lets one do it.
    [first, second] = await Promise.all([
      startTestApp(database, {}, clock),
      startTestApp(database, {}, clock),
    ]);
  });

  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await database?.drop();
  });

  it('enforce one quota atomically between them', async () => {
    const key = (
      await first.client.createApiKey({
        credential: first.adminKey,
        tenant: 'default',
        name: 'r',
        role: 'ROLE_USER',
        requestsPerMinute: 12,
      })
    ).secret;
    const answers = await Promise.all(
      Array.from({ length: 48 }, (_, index) =>
        (index % 2 ? first : second).client.authorize({
          credential: key,
          action: 'ACTION_CHAT_COMPLETIONS',
          model: 'm',
          requestId: requestId('replica'),
        }),
      ),
    );
    expect(answers.filter((answer) => answer.allowed)).toHaveLength(12);
  });

  it('see a key revoked on one replica refused on the other at once', async () => {
    const created = await first.client.createApiKey({
      credential: first.adminKey,
      tenant: 'default',
      name: 'x',
      role: 'ROLE_USER',
    });
    const ask = () =>
      second.client.authorize({
        credential: created.secret,
        action: 'ACTION_CHAT_COMPLETIONS',
        model: 'm',
        requestId: requestId(),
      });
    expect((await ask()).allowed).toBe(true);
    await first.client.revokeApiKey({ credential: first.adminKey, keyId: created.key.id });
    expect(await ask()).toMatchObject({ allowed: false, denialReason: 'DENIAL_REASON_KEY_REVOKED' });
  });

  it('interleave their appends into one chain that verifies', async () => {
    const key = first.adminKey;
    await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        (index % 2 ? first : second).client.authorize({
          credential: key,
          action: 'ACTION_LIST_MODELS',
          requestId: requestId('mix'),
        }),
      ),
    );
    expect(await first.app.verifyChain()).toMatchObject({ ok: true });
  });
});
