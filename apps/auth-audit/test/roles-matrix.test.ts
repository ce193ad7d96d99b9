import { status } from '@grpc/grpc-js';
import type { audit } from '@airlock/contracts';
import { OPERATIONS, PERMISSIONS, type Operation } from '../src/auth/permissions.js';
import type { RoleName } from '../src/auth/principal.js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';
import type { AuditClient } from './support/audit-client.js';

// The whole role × operation matrix, through the real gRPC API. The expectation is written out here, from
// the definition of the roles, independently of PERMISSIONS in the source.
const EXPECTED: Record<RoleName, Operation[]> = {
  admin: [...OPERATIONS],
  auditor: [
    'console.sign_in',
    'audit.query',
    'audit.export',
    'audit.verify',
    'audit.checkpoints',
    'audit.prove',
    'audit.consistency',
    'audit.content_read',
  ],
  // Proofs carry hashes only: a client may prove its own receipt.
  user: ['inference', 'models.list', 'console.sign_in', 'audit.prove'],
  // Keys and quotas of its own tenant, and that tenant's audit log (the scope is tested below).
  tenant_admin: [
    'console.sign_in',
    'tenants.read',
    'tenants.write',
    'keys.create',
    'keys.list',
    'keys.revoke',
    'audit.query',
    'audit.export',
    'audit.verify',
    'audit.checkpoints',
    'audit.prove',
    'audit.consistency',
  ],
};

/** Performs one operation; true when it was allowed, false when refused for the role. */
async function attempt(
  client: AuditClient,
  credential: string,
  operation: Operation,
  admin: string,
): Promise<boolean> {
  const authorizeAs = async (action: audit.Action, model = 'stories260K') =>
    (await client.authorize({ credential, action, model, requestId: requestId('matrix') })).allowed;
  const call = async (run: () => Promise<unknown>) => {
    try {
      await run();
      return true;
    } catch (error) {
      if ((error as { code: status }).code === status.PERMISSION_DENIED) return false;
      // Past the gate, the call may still find nothing to prove (no checkpoint yet): allowed.
      if ((error as { code: status }).code === status.NOT_FOUND) return true;
      throw error;
    }
  };
  switch (operation) {
    case 'inference':
      return authorizeAs('ACTION_CHAT_COMPLETIONS');
    case 'models.list':
      return authorizeAs('ACTION_LIST_MODELS', '');
    case 'console.sign_in':
      return authorizeAs('ACTION_CONSOLE_SIGN_IN', '');
    case 'models.manage':
      return authorizeAs('ACTION_MANAGE_MODELS', 'stories260K');
    case 'admin.action':
      return call(() =>
        client.appendAdminAction({
          credential,
          requestId: requestId('admin'),
          action: 'models.scale',
          outcome: 'OUTCOME_SUCCEEDED',
        }),
      );
    case 'tenants.read':
      return call(() => client.listTenants({ credential }));
    case 'tenants.write':
      return call(() =>
        client.upsertTenant({
          credential,
          tenant: { id: 'default', tokensPerDay: 0 },
          updateFields: ['tokens_per_day'],
        }),
      );
    case 'keys.create':
      return call(() =>
        client.createApiKey({ credential, tenant: 'default', name: 'matrix made', role: 'ROLE_USER' }),
      );
    case 'keys.list':
      return call(() => client.listApiKeys({ credential }));
    case 'keys.revoke': {
      const victim = await client.createApiKey({
        credential: admin,
        tenant: 'default',
        name: 'victim',
        role: 'ROLE_USER',
      });
      return call(() => client.revokeApiKey({ credential, keyId: victim.key.id }));
    }
    case 'audit.query':
      return call(() => client.queryAuditRecords({ credential, pageSize: 5 }));
    case 'audit.export':
      return call(() => client.exportAuditRecords({ credential, filter: { toSequence: 3 } }));
    case 'audit.verify':
      return call(() => client.verifyAuditChain({ credential }));
    case 'audit.checkpoints':
      return call(() => client.listAuditCheckpoints({ credential }));
    case 'audit.prove':
      return call(() => client.getAuditInclusionProof({ credential, sequence: 1 }));
    case 'audit.consistency':
      return call(() => client.getAuditConsistencyProof({ credential, firstTreeSize: 1 }));
    case 'audit.content_read':
      // No such record: past the gate, NOT_FOUND (captured reads: test/e2e/audit-content-read.test.ts).
      return call(() => client.getAuditRecordContent({ credential, sequence: 2 ** 40 }));
  }
}

describe.each(DRIVERS)('roles × operations on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  const keys = {} as Record<RoleName, string>;

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
    for (const role of ['admin', 'auditor', 'user', 'tenant_admin'] as RoleName[]) {
      const created = await running.client.createApiKey({
        credential: running.adminKey,
        tenant: 'default',
        name: `${role} key`,
        role: `ROLE_${role.toUpperCase()}` as audit.Role,
      });
      keys[role] = created.secret;
    }
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('the matrix in the source is the one the roles are defined by', () => {
    for (const operation of OPERATIONS) {
      const roles = (Object.keys(EXPECTED) as RoleName[]).filter((role) =>
        EXPECTED[role].includes(operation),
      );
      expect([...PERMISSIONS[operation]].sort()).toEqual(roles.sort());
    }
  });

  it.each(['admin', 'auditor', 'user', 'tenant_admin'] as RoleName[])(
    '%s: every operation allowed or refused as defined',
    async (role) => {
      const outcomes: Record<string, boolean> = {};
      for (const operation of OPERATIONS) {
        outcomes[operation] = await attempt(running.client, keys[role], operation, running.adminKey);
      }
      const expected = Object.fromEntries(
        OPERATIONS.map((operation) => [operation, EXPECTED[role].includes(operation)]),
      );
      expect(outcomes).toEqual(expected);
    },
  );

  it("confines a tenant admin to its own tenant's keys and quotas", async () => {
    const admin = running.adminKey;
    await running.client.upsertTenant({ credential: admin, tenant: { id: 'north', name: 'North' } });
    const northAdmin = (
      await running.client.createApiKey({
        credential: admin,
        tenant: 'north',
        name: 'north admin',
        role: 'ROLE_TENANT_ADMIN',
        global: false,
      })
    ).secret;
    const c = running.client;
    // Its own tenant: keys and quotas.
    const made = await c.createApiKey({
      credential: northAdmin,
      tenant: 'north',
      name: 'app',
      role: 'ROLE_USER',
    });
    expect(
      (await c.listApiKeys({ credential: northAdmin })).keys.every((key) => key.tenant === 'north'),
    ).toBe(true);
    const quota = await c.upsertTenant({
      credential: northAdmin,
      tenant: { id: 'north', tokensPerDay: 1234 },
      updateFields: ['tokens_per_day'],
    });
    expect(quota.tenant).toMatchObject({ id: 'north', name: 'North', tokensPerDay: 1234 });
    expect((await c.listTenants({ credential: northAdmin })).tenants.map((t) => t.id)).toEqual(['north']);
    await c.revokeApiKey({ credential: northAdmin, keyId: made.key.id });
    // Never another tenant, an admin key, or the tenant's models, capture or enablement.
    const victim = await c.createApiKey({
      credential: admin,
      tenant: 'default',
      name: 'v',
      role: 'ROLE_USER',
    });
    const refusals = [
      c.createApiKey({ credential: northAdmin, tenant: 'default', name: 'x', role: 'ROLE_USER' }),
      c.createApiKey({ credential: northAdmin, tenant: 'north', name: 'x', role: 'ROLE_ADMIN' }),
      c.createApiKey({
        credential: northAdmin,
        tenant: 'north',
        name: 'x',
        role: 'ROLE_AUDITOR',
        global: true,
      }),
      c.listApiKeys({ credential: northAdmin, tenant: 'default' }),
      c.upsertTenant({
        credential: northAdmin,
        tenant: { id: 'default', tokensPerDay: 1 },
        updateFields: ['tokens_per_day'],
      }),
      c.upsertTenant({
        credential: northAdmin,
        tenant: { id: 'north', allowedModels: ['x'] },
        updateFields: ['allowed_models'],
      }),
      c.upsertTenant({
        credential: northAdmin,
        tenant: { id: 'north', disabled: true },
        updateFields: ['disabled'],
      }),
    ];
    for (const refusal of refusals) {
      await expect(refusal).rejects.toMatchObject({ code: expect.any(Number) });
    }
    const codes = await Promise.all(
      refusals.map((p) =>
        p.then(
          () => 0,
          (e: { code: number }) => e.code,
        ),
      ),
    );
    const allowedCodes: number[] = [status.PERMISSION_DENIED, status.INVALID_ARGUMENT];
    expect(codes.every((code) => allowedCodes.includes(code))).toBe(true);
    await expect(c.revokeApiKey({ credential: northAdmin, keyId: victim.key.id })).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });

  it('audits refused admin attempts with the role and the reason, never the credential', async () => {
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { outcome: 'OUTCOME_DENIED', kind: 'RECORD_KIND_ADMIN_ACTION' },
      pageSize: 1000,
    });
    const userRefusals = records.filter((record) => record.role === 'ROLE_USER');
    expect(userRefusals.map((record) => record.action)).toEqual(
      expect.arrayContaining(['keys.create', 'tenants.write', 'audit.verify']),
    );
    expect(
      userRefusals.every((record) => record.errorClass === 'role_forbidden' && record.statusCode === 403),
    ).toBe(true);
    const everything = JSON.stringify(records) + running.logLines.join('\n');
    for (const key of Object.values(keys)) expect(everything).not.toContain(key);
  });
});
