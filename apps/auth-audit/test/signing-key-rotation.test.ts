import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp } from './support/test-app.js';

describe.each(DRIVERS)('rotating the checkpoint signing key on %s', (driver) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createTestDatabase(driver);
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('keeps old checkpoints verifiable when the previous public key is configured', async () => {
    const pem = (name: string) => {
      const { privateKey } = generateKeyPairSync('ed25519');
      const file = join(database.dataDir, name);
      return {
        file,
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        publicKey: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
      };
    };
    const first = pem('first.pem');
    const second = pem('second.pem');
    await writeFile(first.file, first.privateKey);
    await writeFile(second.file, second.privateKey);

    const before = await startTestApp(database, { signingKeyFile: first.file });
    await before.client.authorize({
      credential: before.adminKey,
      action: 'ACTION_LIST_MODELS',
      requestId: requestId(),
    });
    expect(await before.app.checkpointNow()).toBeDefined();
    await before.stop();

    const rotated = await startTestApp(database, { signingKeyFile: second.file });
    expect(await rotated.app.verifyChain()).toMatchObject({
      ok: false,
      failure: 'checkpoint_signature_invalid',
    });
    await rotated.stop();

    const previous = join(database.dataDir, 'previous-public-keys.pem');
    await writeFile(previous, first.publicKey);
    const trusting = await startTestApp(database, {
      signingKeyFile: second.file,
      previousSigningKeysFile: previous,
    });
    await trusting.client.authorize({
      credential: trusting.adminKey,
      action: 'ACTION_LIST_MODELS',
      requestId: requestId(),
    });
    await trusting.app.checkpointNow();
    const report = await trusting.app.verifyChain();
    expect(report).toMatchObject({ ok: true, unsignedTail: 0 });
    expect(report.checkpointsChecked).toBe(2);
    const { signingKeys } = await trusting.client.listAuditCheckpoints({ credential: trusting.adminKey });
    expect(signingKeys).toHaveLength(2);
    await trusting.stop();
  });
});
