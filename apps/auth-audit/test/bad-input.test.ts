import { status } from '@grpc/grpc-js';
import type { audit } from '@airlock/contracts';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';
import { grpcCode } from './support/audit-client.js';

describe.each(DRIVERS)('bad input on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let userKey: string;
  const presented: string[] = [];

  const authorize = (overrides: Partial<audit.AuthorizeRequest>) =>
    running.client.authorize({
      credential: userKey,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'stories260K',
      requestId: requestId('bad'),
      ...overrides,
    });

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
    userKey = (
      await running.client.createApiKey({
        credential: running.adminKey,
        tenant: 'default',
        name: 'u',
        role: 'ROLE_USER',
      })
    ).secret;
    presented.push(userKey, running.adminKey);
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('refuses missing and malformed credentials as such, and audits the attempt', async () => {
    const cases: [string, audit.DenialReason][] = [
      ['', 'DENIAL_REASON_MISSING_CREDENTIAL'],
      ['Bearer ', 'DENIAL_REASON_MISSING_CREDENTIAL'],
      ['sk-not-ours-1234567890', 'DENIAL_REASON_MALFORMED_CREDENTIAL'],
      ['alk_short', 'DENIAL_REASON_MALFORMED_CREDENTIAL'],
      ['alk_UPPER_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'DENIAL_REASON_MALFORMED_CREDENTIAL'],
      [`alk_abcd_${'A'.repeat(9000)}`, 'DENIAL_REASON_MALFORMED_CREDENTIAL'],
      ['eyJhbGciOi.not a jwt', 'DENIAL_REASON_MALFORMED_CREDENTIAL'],
      ['aaa.bbb.ccc', 'DENIAL_REASON_TOKEN_INVALID'],
    ];
    for (const [credential, reason] of cases) {
      presented.push(credential);
      const id = requestId('cred');
      expect(await authorize({ credential, requestId: id })).toMatchObject({
        allowed: false,
        denialReason: reason,
        grpcStatus: status.UNAUTHENTICATED,
      });
      const { records } = await running.client.queryAuditRecords({
        credential: running.adminKey,
        filter: { requestId: id },
      });
      expect(records[0]).toMatchObject({ outcome: 'OUTCOME_DENIED', statusCode: 401 });
    }
  });

  it('records client-controlled fields that cannot be stored as they are escaped or cut, with a flag', async () => {
    const cases: [Partial<audit.AuthorizeRequest>, string, string][] = [
      [{ model: 'm'.repeat(300) }, 'model', 'model:truncated'],
      [{ model: 'stories\u0000260K' }, 'model', 'model:escaped'],
      [{ userAgent: 'agent\u0000with nul' }, 'userAgent', 'user_agent:escaped'],
      [{ userAgent: 'agent\twith tab' }, 'userAgent', 'user_agent:escaped'],
      [{ userAgent: 'u'.repeat(600) }, 'userAgent', 'user_agent:truncated'],
      [{ clientAddress: '10.0.0.1\r\nX-Injected: 1' }, 'clientAddress', 'client_address:escaped'],
    ];
    for (const [request, field, flag] of cases) {
      const id = requestId('field');
      const answer = await authorize({ ...request, requestId: id });
      expect(answer.auditSequence).toBeGreaterThan(0);
      const { records } = await running.client.queryAuditRecords({
        credential: running.adminKey,
        filter: { requestId: id },
      });
      expect(records).toHaveLength(1);
      expect(records[0].fieldFlags.split(',')).toContain(flag);
      const stored = (records[0] as unknown as Record<string, string>)[field];
      // eslint-disable-next-line no-control-regex -- the stored value has no control characters left
      expect(stored).not.toMatch(/[\u0000-\u001f]/);
      expect(stored.length).toBeLessThanOrEqual(512);
    }
    expect(await running.app.verifyChain()).toMatchObject({ ok: true });
  });

  it('refuses bad and oversized fields with INVALID_ARGUMENT before anything is written', async () => {
    const before = (await running.app.verifyChain()).lastSequence;
    const cases: Partial<audit.AuthorizeRequest>[] = [
      { requestId: '' },
      { requestId: 'has spaces' },
      { requestId: 'x'.repeat(129) },
      { action: 'ACTION_UNSPECIFIED' },
      { action: 'ACTION_NOPE' as audit.Action },
      { model: '' },
      { requestBody: Buffer.alloc(16 * 1024 * 1024 + 1) },
    ];
    for (const request of cases) {
      expect(await grpcCode(authorize(request))).toBe(status.INVALID_ARGUMENT);
    }
    const completes: Partial<audit.CompleteRequest>[] = [
      { outcome: 'OUTCOME_ALLOWED' },
      { latencyMs: -1 },
      { latencyMs: Number.NaN },
      { errorClass: 'e'.repeat(200) },
    ];
    for (const request of completes) {
      const code = await grpcCode(
        running.client.complete({ requestId: requestId(), outcome: 'OUTCOME_SUCCEEDED', ...request }),
      );
      expect(code).toBe(status.INVALID_ARGUMENT);
    }
    expect((await running.app.verifyChain()).lastSequence).toBe(before);
  });

  it('refuses bad admin input with a message naming the field', async () => {
    const admin = running.adminKey;
    const checks: [Promise<unknown>, RegExp][] = [
      [
        running.client.upsertTenant({ credential: admin, tenant: { id: "acme'; drop table tenants; --" } }),
        /tenant\.id/,
      ],
      [running.client.upsertTenant({ credential: admin, tenant: { id: 'Upper' } }), /tenant\.id/],
      [
        running.client.createApiKey({ credential: admin, tenant: 'default', name: '', role: 'ROLE_USER' }),
        /name/,
      ],
      [
        running.client.createApiKey({
          credential: admin,
          tenant: 'default',
          name: 'n',
          role: 'ROLE_UNSPECIFIED',
        }),
        /role/,
      ],
      [
        running.client.createApiKey({
          credential: admin,
          tenant: 'default',
          name: 'n',
          role: 'ROLE_USER',
          global: true,
        }),
        /global/,
      ],
      [
        running.client.createApiKey({
          credential: admin,
          tenant: 'default',
          name: 'n',
          role: 'ROLE_USER',
          expiresAt: 'tomorrow',
        }),
        /expires_at/,
      ],
      [
        running.client.createApiKey({
          credential: admin,
          tenant: 'default',
          name: 'n',
          role: 'ROLE_USER',
          expiresAt: '2001-01-01T00:00:00Z',
        }),
        /past/,
      ],
      [
        running.client.appendAdminAction({
          credential: admin,
          requestId: 'a1',
          action: 'Models Scale',
          outcome: 'OUTCOME_SUCCEEDED',
        }),
        /action/,
      ],
      [
        running.client.appendAdminAction({
          credential: admin,
          requestId: 'a2',
          action: 'models.scale',
          outcome: 'OUTCOME_SUCCEEDED',
          detailsJson: '[1,2]',
        }),
        /details_json/,
      ],
      [running.client.queryAuditRecords({ credential: admin, pageSize: 5000 }), /page_size/],
      [
        running.client.queryAuditRecords({ credential: admin, filter: { startTime: 'yesterday' } }),
        /start_time/,
      ],
    ];
    for (const [call, field] of checks) {
      const error = await call.then(
        () => undefined,
        (failure: { code: number; details: string }) => failure,
      );
      expect(error).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(error!.details).toMatch(field);
    }
    expect(await grpcCode(running.client.listTenants({ credential: 'alk_nobody_' + 'Z'.repeat(43) }))).toBe(
      status.UNAUTHENTICATED,
    );
  });

  it('records an admin action the gateway reports, with its details', async () => {
    const answer = await running.client.appendAdminAction({
      credential: running.adminKey,
      requestId: 'scale-1',
      action: 'models.scale',
      target: 'stories260K',
      detailsJson: '{ "replicas": 3 }',
      outcome: 'OUTCOME_SUCCEEDED',
      statusCode: 200,
      clientAddress: '10.1.2.3',
    });
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { requestId: 'scale-1' },
    });
    expect(records[0]).toMatchObject({
      sequence: answer.auditSequence,
      action: 'models.scale',
      target: 'stories260K',
      detailsJson: '{"replicas":3}',
      clientAddress: '10.1.2.3',
      role: 'ROLE_ADMIN',
    });
  });

  it('writes no credential to any log line', () => {
    const logs = running.logLines.join('\n');
    for (const credential of presented.filter((value) => value.length > 12)) {
      expect(logs).not.toContain(credential.slice(-24));
    }
  });
});
