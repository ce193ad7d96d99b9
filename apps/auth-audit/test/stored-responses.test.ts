import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { audit } from '@airlock/contracts';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';
import { grpcCode } from './support/audit-client.js';

describe.each(DRIVERS)('stored responses on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let now = new Date('2026-03-01T12:00:00Z');
  const keys: Record<string, string> = {};

  const newKey = async (tenant: string) =>
    (
      await running.client.createApiKey({
        credential: running.adminKey,
        tenant,
        name: `k-${tenant}`,
        role: 'ROLE_USER',
      })
    ).secret;

  const store = (credential: string, responseId: string, text = 'the answer') =>
    running.client.storeResponse({
      credential,
      requestId: requestId('resp'),
      responseId,
      responseJson: Buffer.from(JSON.stringify({ id: responseId, output_text: text })),
      inputItemsJson: Buffer.from(JSON.stringify([{ role: 'user', content: 'patient 17' }])),
    });

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    const keysFile = join(database.dataDir, 'content-keys.json');
    await writeFile(
      keysFile,
      JSON.stringify({ activeKeyId: 'k1', keys: { k1: randomBytes(32).toString('base64') } }),
    );
    running = await startTestApp(
      database,
      { contentKeysFile: keysFile, responsesRetentionDays: 2 },
      () => now,
    );
    for (const [id, contentCapture] of [
      ['forensic', 'CONTENT_CAPTURE_FULL'],
      ['plain', 'CONTENT_CAPTURE_DIGEST'],
    ] as [string, audit.ContentCapture][]) {
      await running.client.upsertTenant({ credential: running.adminKey, tenant: { id, contentCapture } });
    }
    keys.owner = await newKey('forensic');
    keys.sameTenant = await newKey('forensic');
    keys.plain = await newKey('plain');
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('keeps a response encrypted and gives it back to its owner only', async () => {
    const { expiresAt } = await store(keys.owner, 'resp_owned');
    expect(expiresAt).toBe('2026-03-03T12:00:00.000Z');
    const back = await running.client.getStoredResponse({ credential: keys.owner, responseId: 'resp_owned' });
    expect(JSON.parse(back.responseJson.toString())).toEqual({ id: 'resp_owned', output_text: 'the answer' });
    expect(JSON.parse(back.inputItemsJson.toString())).toEqual([{ role: 'user', content: 'patient 17' }]);

    // The database holds ciphertext only.
    const row = await running.app.database.db
      .selectFrom('stored_responses')
      .selectAll()
      .where('id', '=', 'resp_owned')
      .executeTakeFirstOrThrow();
    expect(row.content_key_id).toBe('k1');
    expect(row.response_ciphertext + row.input_items_ciphertext).not.toMatch(/answer|patient/);

    // Another key of the same tenant, and another tenant, see nothing.
    for (const credential of [keys.sameTenant, keys.plain]) {
      await expect(
        running.client.getStoredResponse({ credential, responseId: 'resp_owned' }),
      ).rejects.toMatchObject({ code: status.NOT_FOUND });
      await expect(
        running.client.deleteStoredResponse({ credential, responseId: 'resp_owned' }),
      ).rejects.toMatchObject({ code: status.NOT_FOUND });
    }
  });

  it('refuses to store where the tenant does not capture full content, naming the policy', async () => {
    expect(await grpcCode(store(keys.plain, 'resp_plain'))).toBe(status.FAILED_PRECONDITION);
    const error = await store(keys.plain, 'resp_plain').catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/content_capture "digest".*"full"/);
    expect((error as { metadata: { get(k: string): unknown[] } }).metadata.get('airlock-reason')).toEqual([
      'content_capture_not_full',
    ]);
  });

  it('refuses bad ids, duplicates and missing credentials', async () => {
    await expect(store(keys.owner, 'chatcmpl-1')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    await store(keys.owner, 'resp_twice');
    await expect(store(keys.owner, 'resp_twice')).rejects.toMatchObject({ code: status.ALREADY_EXISTS });
    await expect(store('', 'resp_anon')).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
  });

  it('deletes once, and expires after the retention period', async () => {
    await store(keys.owner, 'resp_deleted');
    await running.client.deleteStoredResponse({ credential: keys.owner, responseId: 'resp_deleted' });
    await expect(
      running.client.deleteStoredResponse({ credential: keys.owner, responseId: 'resp_deleted' }),
    ).rejects.toMatchObject({ code: status.NOT_FOUND });

    await store(keys.owner, 'resp_expiring');
    now = new Date(now.getTime() + 2 * 86_400_000 + 1);
    await expect(
      running.client.getStoredResponse({ credential: keys.owner, responseId: 'resp_expiring' }),
    ).rejects.toMatchObject({ code: status.NOT_FOUND });
    const count = async () =>
      Number(
        (
          await running.app.database.db
            .selectFrom('stored_responses')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    expect(await count()).toBeGreaterThan(0);
    expect(await running.app.pruneExpiredResponses()).toBeGreaterThanOrEqual(3);
    expect(await count()).toBe(0);
  });
});
