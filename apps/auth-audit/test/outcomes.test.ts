import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { audit } from '@airlock/contracts';
import { DEFAULT_OIDC_ALGORITHMS } from '../src/config/auth-audit-settings.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// Every request ends in exactly one true record, on real PostgreSQL: bad fields stored flagged, one bad
// record never fails its batch, floods aggregated, budgets reserved, orphans closed as interrupted.
const ISSUER = 'https://idp.test/realms/airlock';

describe('request outcomes on postgres', () => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let userKey: string;
  let idpKey: CryptoKey;
  let clockOffsetMs = 0;
  const clock = () => new Date(Date.now() + clockOffsetMs);

  const records = async (filter: audit.AuditFilter) =>
    (await running.client.queryAuditRecords({ credential: running.adminKey, filter, pageSize: 1000 }))
      .records;
  const authorize = (overrides: Partial<audit.AuthorizeRequest> = {}) =>
    running.client.authorize({
      credential: userKey,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'stories260K',
      requestId: requestId('out'),
      clientAddress: '10.9.0.1',
      ...overrides,
    });
  const newKey = async (limits: Partial<audit.CreateApiKeyRequest>) =>
    (
      await running.client.createApiKey({
        credential: running.adminKey,
        tenant: 'default',
        name: 'k',
        role: 'ROLE_USER',
        ...limits,
      })
    ).secret;

  beforeAll(async () => {
    database = await createTestDatabase('postgres');
    const pair = await generateKeyPair('RS256', { extractable: true });
    idpKey = pair.privateKey;
    const jwksFile = join(database.dataDir, 'jwks.json');
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
    running = await startTestApp(
      database,
      {
        refusalWindowSeconds: 60,
        refusalBurst: 3,
        oidc: {
          issuer: ISSUER,
          audience: 'airlock',
          jwksFile,
          roleClaim: 'roles',
          tenantClaim: 'tenant',
          clockSkewSeconds: 30,
          maxTokenLifetimeSeconds: 3600,
          algorithms: DEFAULT_OIDC_ALGORITHMS,
          roleMap: { 'airlock-user': 'user' },
        },
      },
      clock,
    );
    userKey = await newKey({});
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('keeps the client request id beside the server id, and verifies v2 records', async () => {
    const id = requestId('server');
    await authorize({ requestId: id, clientRequestId: 'client-chosen-1' });
    const [record] = await records({ requestId: id });
    expect(record).toMatchObject({ requestId: id, clientRequestId: 'client-chosen-1', fieldFlags: '' });
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('commits 60 innocent requests beside 60 tokens whose subject holds NUL (one batch, no failure)', async () => {
    const token = (sub: string) =>
      new SignJWT({ sub, roles: ['airlock-user'], tenant: 'default' })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(ISSUER)
        .setAudience('airlock')
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
        .sign(idpKey);
    const poisoned = await token('evil\u0000sub');
    const failuresBefore = await batchFailures();
    const ids = Array.from({ length: 120 }, (_, i) => requestId(i % 2 === 0 ? 'nul' : 'innocent'));
    const answers = await Promise.all(
      ids.map((id, i) =>
        i % 2 === 0
          ? // Each from its own address, so that none is folded into a refusal aggregate.
            authorize({ credential: `Bearer ${poisoned}`, requestId: id, clientAddress: `10.7.0.${i}` })
          : authorize({ requestId: id }),
      ),
    );
    expect(answers.filter((a, i) => i % 2 === 1 && a.allowed && a.auditSequence > 0)).toHaveLength(60);
    // The poisoned ones are recorded too (refused or, if admitted, their principal escaped and flagged).
    const poisoned60 = answers.filter((a, i) => i % 2 === 0);
    expect(poisoned60.filter((a) => a.auditSequence > 0)).toHaveLength(60);
    for (const [index, answer] of poisoned60.entries()) {
      const [record] = await records({ requestId: ids[index * 2] });
      expect(record.sequence).toBe(answer.auditSequence);
      // eslint-disable-next-line no-control-regex -- nothing stored holds a NUL
      expect(record.principalId).not.toMatch(/\u0000/);
    }
    expect(await batchFailures()).toBe(failuresBefore);
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('commits the others alone when one record still fails its batch', async () => {
    const admin = database.superuser();
    await admin.connect();
    // A database-side failure no validation can foresee, for one user agent only.
    await admin.query(`create function poison() returns trigger language plpgsql as $$
      begin if new.user_agent = 'poison' then raise exception 'poisoned'; end if; return new; end $$`);
    await admin.query(
      'create trigger poison before insert on audit_records for each row execute function poison()',
    );
    try {
      const answers = await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) => authorize({ userAgent: i === 7 ? 'poison' : 'fine' })),
      );
      expect(answers.filter((a) => a.status === 'rejected')).toHaveLength(1);
      expect(answers.filter((a) => a.status === 'fulfilled' && a.value.auditSequence > 0)).toHaveLength(39);
    } finally {
      await admin.query('drop trigger poison on audit_records');
      await admin.end();
    }
  });

  it('records refusals the gateway made before authorising, each kind', async () => {
    const kinds: [number, string][] = [
      [400, 'invalid_json'],
      [404, 'not_found'],
      [413, 'body_too_large'],
      [431, 'headers_too_large'],
      [500, 'internal_error'],
    ];
    for (const [statusCode, errorClass] of kinds) {
      const id = requestId('refused');
      const answer = await running.client.recordRefusal({
        requestId: id,
        action: 'chat.completions',
        clientAddress: `10.8.0.${statusCode % 250}`,
        userAgent: 'x'.repeat(700),
        statusCode,
        errorClass,
      });
      expect(answer.auditSequence).toBeGreaterThan(0);
      const [record] = await records({ requestId: id });
      expect(record).toMatchObject({ outcome: 'OUTCOME_DENIED', statusCode, errorClass });
      expect(record.fieldFlags).toContain('user_agent:truncated');
    }
  });

  it('bounds an unauthenticated flood to a few records per source and window, with a count', async () => {
    const before = (await running.app.verifyChain()).lastSequence;
    const flood = 400;
    for (let i = 0; i < flood; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) =>
          (i + j) % 2 === 0
            ? authorize({ credential: 'alk_nobody_' + 'Z'.repeat(43), clientAddress: '192.0.2.66' })
            : running.client.recordRefusal({
                requestId: requestId('flood'),
                clientAddress: '192.0.2.66',
                statusCode: 400,
                errorClass: 'invalid_json',
              }),
        ),
      );
    }
    clockOffsetMs += 61_000;
    await running.app.flushRefusals();
    const fromFlood = (await records({ fromSequence: before + 1 })).filter(
      (r) => r.clientAddress === '192.0.2.66',
    );
    expect(fromFlood).toHaveLength(3 + 1);
    const [aggregate] = fromFlood.filter((r) => r.action === 'refusals.aggregate');
    expect(aggregate.clientAddress).toBe('192.0.2.66');
    expect(JSON.parse(aggregate.detailsJson)).toMatchObject({ count: flood - 3 });
  });

  it('reserves tokens at admission so concurrent requests overshoot a budget by at most one reservation', async () => {
    const key = await newKey({ tokensPerDay: 50 });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => authorize({ credential: key, reserveTokens: 20 })),
    );
    const admitted = answers.filter((a) => a.allowed);
    expect(admitted).toHaveLength(3);
    expect(answers.filter((a) => a.denialReason === 'DENIAL_REASON_BUDGET_EXHAUSTED')).toHaveLength(5);
  });

  it('settles the reservation with the usage, and a retried Complete writes nothing twice', async () => {
    const key = await newKey({ tokensPerDay: 100 });
    const id = requestId('settle');
    expect((await authorize({ credential: key, requestId: id, reserveTokens: 100 })).allowed).toBe(true);
    expect((await authorize({ credential: key, reserveTokens: 20 })).allowed).toBe(false);
    const complete = {
      requestId: id,
      outcome: 'OUTCOME_SUCCEEDED' as const,
      statusCode: 200,
      promptTokens: 5,
      completionTokens: 5,
    };
    const first = await running.client.complete(complete);
    const again = await running.client.complete(complete);
    expect(again.auditSequence).toBe(first.auditSequence);
    expect(
      (await records({ requestId: id })).filter((r) => r.kind === 'RECORD_KIND_COMPLETION'),
    ).toHaveLength(1);
    // 10 used of 100: the next reservation fits again.
    expect((await authorize({ credential: key, reserveTokens: 20 })).allowed).toBe(true);
  });

  it('closes a request whose gateway vanished as interrupted, with the usage the worker reported', async () => {
    const key = await newKey({ tokensPerDay: 1000 });
    const id = requestId('orphan');
    expect(
      (await authorize({ credential: key, requestId: id, leaseSeconds: 5, reserveTokens: 500 })).allowed,
    ).toBe(true);
    await running.client.reportUsage({
      requestId: id,
      generationId: 'g1',
      worker: 'w1',
      promptTokens: 7,
      completionTokens: 30,
    });
    expect(await running.app.sweepLeases()).toBe(0);
    clockOffsetMs += 6_000;
    expect(await running.app.sweepLeases()).toBeGreaterThanOrEqual(1);
    const completion = (await records({ requestId: id })).filter((r) => r.kind === 'RECORD_KIND_COMPLETION');
    expect(completion).toHaveLength(1);
    expect(completion[0]).toMatchObject({
      outcome: 'OUTCOME_INTERRUPTED',
      errorClass: 'lease_expired',
      promptTokens: 7,
      completionTokens: 30,
      worker: 'w1',
    });
    // A late completion from a gateway that was only slow is kept, flagged as coming after the sweep.
    await running.client.complete({ requestId: id, outcome: 'OUTCOME_SUCCEEDED', statusCode: 200 });
    const all = (await records({ requestId: id })).filter((r) => r.kind === 'RECORD_KIND_COMPLETION');
    expect(all[1].fieldFlags).toBe('after_interrupted');
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('records successful admin reads: keys, tenants, audit queries, verify, checkpoints', async () => {
    const before = (await running.app.verifyChain()).lastSequence;
    const credential = running.adminKey;
    await running.client.listApiKeys({ credential });
    await running.client.listTenants({ credential });
    await running.client.queryAuditRecords({ credential, filter: { model: 'stories260K' } });
    await running.client.verifyAuditChain({ credential });
    await running.client.listAuditCheckpoints({ credential });
    const reads = (await records({ fromSequence: before + 1 })).filter(
      (r) => r.kind === 'RECORD_KIND_ADMIN_ACTION',
    );
    expect(reads.map((r) => r.action)).toEqual([
      'keys.list',
      'tenants.read',
      'audit.query',
      'audit.verify',
      'audit.checkpoints',
      'audit.query',
    ]);
    expect(JSON.parse(reads[2].detailsJson)).toMatchObject({ filter: { model: 'stories260K' } });
  });

  async function batchFailures(): Promise<number> {
    const metric = await running.app.metrics.registry
      .getSingleMetric('airlock_audit_batch_failures_total')
      ?.get();
    return (metric?.values ?? []).reduce((sum, value) => sum + value.value, 0);
  }
});
