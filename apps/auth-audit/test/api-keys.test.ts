import { createHash } from 'node:crypto';
import { readdir, stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { status } from '@grpc/grpc-js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, TEST_ADMIN_KEY, type RunningTestApp } from './support/test-app.js';
import { grpcCode } from './support/audit-client.js';

describe.each(DRIVERS)('API keys on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;

  const authorize = (credential: string, model = 'stories260K') =>
    running.client.authorize({
      credential,
      action: 'ACTION_CHAT_COMPLETIONS',
      model,
      requestId: requestId('keys'),
    });

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('shows the key once and stores only its SHA-256', async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'once',
      role: 'ROLE_USER',
    });
    expect(created.secret).toMatch(new RegExp(`^alk_${created.key.id}_[A-Za-z0-9_-]{43}$`));
    expect(created.key).toMatchObject({ tenant: 'default', name: 'once', role: 'ROLE_USER', revokedAt: '' });
    const listed = await running.client.listApiKeys({ credential: running.adminKey, tenant: 'default' });
    expect(JSON.stringify(listed)).not.toContain(created.secret.split('_').slice(2).join('_'));
    const rows = await running.app.database.db.selectFrom('api_keys').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(created.secret.split('_').slice(2).join('_'));
    const row = rows.find((candidate) => candidate.id === created.key.id)!;
    expect(row.secret_hash).toBe(createHash('sha256').update(created.secret).digest('hex'));
    expect((await authorize(created.secret)).allowed).toBe(true);
  });

  it('refuses an unknown id and a wrong secret alike', async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'x',
      role: 'ROLE_USER',
    });
    const wrongSecret = `${created.secret.slice(0, -4)}AAAA`;
    const unknownId = `alk_nosuchkey_${'B'.repeat(43)}`;
    for (const credential of [wrongSecret, unknownId]) {
      expect(await authorize(credential)).toMatchObject({
        allowed: false,
        denialReason: 'DENIAL_REASON_UNKNOWN_KEY',
        grpcStatus: status.UNAUTHENTICATED,
        message: 'unknown API key',
        principal: null,
      });
    }
  });

  it('stops a revoked key on the very next request', async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'r',
      role: 'ROLE_USER',
    });
    expect((await authorize(created.secret)).allowed).toBe(true);
    const revoked = await running.client.revokeApiKey({
      credential: running.adminKey,
      keyId: created.key.id,
    });
    expect(revoked.key.revokedAt).not.toBe('');
    expect(await authorize(created.secret)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_KEY_REVOKED',
    });
    const active = await running.client.listApiKeys({ credential: running.adminKey });
    expect(active.keys.map((key) => key.id)).not.toContain(created.key.id);
    const all = await running.client.listApiKeys({ credential: running.adminKey, includeRevoked: true });
    expect(all.keys.map((key) => key.id)).toContain(created.key.id);
  });

  it('stops an expired key', async () => {
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'default',
      name: 'e',
      role: 'ROLE_USER',
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect((await authorize(created.secret)).allowed).toBe(true);
    // Let the hour pass: move the expiry into the past in the database.
    await sql`update api_keys set expires_at = now() - interval '1 second' where id = ${created.key.id}`.execute(
      running.app.database.db,
    );
    expect(await authorize(created.secret)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_KEY_EXPIRED',
    });
  });

  it('enforces the model allowlists of the key and its tenant, and reports them for /v1/models', async () => {
    await running.client.upsertTenant({
      credential: running.adminKey,
      tenant: { id: 'clinic', name: 'Clinic', allowedModels: ['stories260K', 'llama-8b'] },
    });
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'clinic',
      name: 'narrow',
      role: 'ROLE_USER',
      allowedModels: ['stories260K', 'qwen-7b'],
    });
    expect((await authorize(created.secret, 'stories260K')).allowed).toBe(true);
    for (const model of ['qwen-7b', 'llama-8b']) {
      expect(await authorize(created.secret, model)).toMatchObject({
        allowed: false,
        denialReason: 'DENIAL_REASON_MODEL_FORBIDDEN',
        grpcStatus: status.PERMISSION_DENIED,
      });
    }
    const list = await running.client.authorize({
      credential: created.secret,
      action: 'ACTION_LIST_MODELS',
      requestId: requestId(),
    });
    expect(list).toMatchObject({ allowed: true, allowedModels: ['stories260K'], allModels: false });
    const admin = await running.client.authorize({
      credential: running.adminKey,
      action: 'ACTION_LIST_MODELS',
      requestId: requestId(),
    });
    expect(admin).toMatchObject({ allowed: true, allModels: true });
  });

  it('refuses keys of a disabled tenant, and key creation for a tenant that does not exist', async () => {
    await running.client.upsertTenant({ credential: running.adminKey, tenant: { id: 'closing' } });
    const created = await running.client.createApiKey({
      credential: running.adminKey,
      tenant: 'closing',
      name: 'c',
      role: 'ROLE_USER',
    });
    await running.client.upsertTenant({
      credential: running.adminKey,
      tenant: { id: 'closing', disabled: true },
    });
    expect(await authorize(created.secret)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_UNKNOWN_TENANT',
    });
    expect(
      await grpcCode(
        running.client.createApiKey({
          credential: running.adminKey,
          tenant: 'nowhere',
          name: 'n',
          role: 'ROLE_USER',
        }),
      ),
    ).toBe(status.NOT_FOUND);
  });

  it('records key creation and revocation in the audit log without the secret', async () => {
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { kind: 'RECORD_KIND_ADMIN_ACTION' },
      pageSize: 1000,
    });
    const actions = records.map((record) => record.action);
    expect(actions).toEqual(
      expect.arrayContaining(['keys.bootstrap', 'keys.create', 'keys.revoke', 'tenants.create']),
    );
    const created = records.find((record) => record.action === 'keys.create')!;
    expect(created.principalId).toBe(`key:${TEST_ADMIN_KEY.split('_')[1]}`);
    expect(JSON.parse(created.detailsJson)).not.toHaveProperty('secretHash');
  });
});

describe('bootstrap admin key on the embedded default (PGlite)', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase('pglite');
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('generates one, writes it with mode 0600, announces its path (never the key) once, and reuses it after a restart', async () => {
    const first = await startTestApp(database, { adminKey: undefined });
    const file = join(database.dataDir, 'admin-key');
    const key = (await readFile(file, 'utf8')).trim();
    expect(first.adminKey).toBe(key);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(first.logLines.filter((line) => line.startsWith('announce:') && line.includes(file))).toHaveLength(
      1,
    );
    expect(first.logLines.join('\n')).not.toContain(key);
    expect(first.logLines.join('\n')).not.toContain(key.split('_').slice(2).join('_'));
    // The embedded data dir and the PGlite files are the owner's only (PGlite itself makes them 0666).
    expect((await stat(database.dataDir)).mode & 0o777).toBe(0o700);
    const pgliteDir = join(database.dataDir, 'auth-audit-pglite');
    expect((await stat(pgliteDir)).mode & 0o777).toBe(0o700);
    const modes = new Set<number>();
    for (const entry of await readdir(pgliteDir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) modes.add((await stat(join(entry.parentPath, entry.name))).mode & 0o777);
    }
    expect([...modes]).toEqual([0o600]);
    expect(
      (await first.client.listTenants({ credential: key })).tenants.map((tenant) => tenant.id),
    ).toContain('default');
    await first.stop();

    const second = await startTestApp(database, { adminKey: undefined });
    expect(second.adminKey).toBe(key);
    expect(second.logLines.some((line) => line.startsWith('announce:'))).toBe(false);
    await second.stop();
  });

  it('takes AIRLOCK_ADMIN_KEY when set, and a changed value rotates the bootstrap key', async () => {
    const rotated = `alk_testadmin_${'R'.repeat(48)}`;
    const running = await startTestApp(database, { adminKey: rotated });
    await running.stop();
    const again = await startTestApp(database, { adminKey: TEST_ADMIN_KEY });
    expect(await grpcCode(again.client.listTenants({ credential: rotated }))).toBe(status.UNAUTHENTICATED);
    expect((await again.client.listTenants({ credential: TEST_ADMIN_KEY })).tenants.length).toBeGreaterThan(
      0,
    );
    await again.stop();
  });
});
