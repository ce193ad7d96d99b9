import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { audit } from '@airlock/contracts';
import { contentAssociatedData, openContent } from '../src/audit/content-sealer.js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';
import { grpcCode } from './support/audit-client.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe.each(DRIVERS)('content capture on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  const firstKey = randomBytes(32);
  const secondKey = randomBytes(32);
  let keysFile: string;

  /** One request and its completion under a tenant; returns both records. */
  const exchange = async (tenant: string, prompt: string, completion: string) => {
    const key = (
      await running.client.createApiKey({
        credential: running.adminKey,
        tenant,
        name: 'c',
        role: 'ROLE_USER',
      })
    ).secret;
    const id = requestId(tenant);
    await running.client.authorize({
      credential: key,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'stories260K',
      requestId: id,
      requestBody: Buffer.from(prompt),
    });
    await running.client.complete({
      requestId: id,
      outcome: 'OUTCOME_SUCCEEDED',
      statusCode: 200,
      responseBody: Buffer.from(completion),
    });
    const { records } = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { requestId: id },
    });
    return { id, request: records[0], completion: records[1] };
  };

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    keysFile = join(database.dataDir, 'content-keys.json');
    await writeFile(
      keysFile,
      JSON.stringify({ activeKeyId: 'k1', keys: { k1: firstKey.toString('base64') } }),
    );
    running = await startTestApp(database, { contentKeysFile: keysFile });
    for (const [id, contentCapture] of [
      ['quiet', 'CONTENT_CAPTURE_NONE'],
      ['plain', 'CONTENT_CAPTURE_UNSPECIFIED'],
      ['forensic', 'CONTENT_CAPTURE_FULL'],
    ] as [string, audit.ContentCapture][]) {
      await running.client.upsertTenant({ credential: running.adminKey, tenant: { id, contentCapture } });
    }
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('keeps nothing of the bodies with capture none', async () => {
    const { request, completion } = await exchange('quiet', '{"secret":"patient 17"}', 'diagnosis');
    for (const record of [request, completion]) {
      expect(record).toMatchObject({
        contentCapture: 'CONTENT_CAPTURE_NONE',
        requestDigest: '',
        responseDigest: '',
        requestCiphertext: '',
      });
    }
  });

  it('keeps SHA-256 digests by default', async () => {
    const { request, completion } = await exchange('plain', '{"q":"hello"}', '{"a":"world"}');
    expect(request).toMatchObject({
      contentCapture: 'CONTENT_CAPTURE_DIGEST',
      requestDigest: sha256('{"q":"hello"}'),
      requestCiphertext: '',
    });
    expect(completion).toMatchObject({ responseDigest: sha256('{"a":"world"}'), responseCiphertext: '' });
  });

  it('encrypts the bodies with AES-256-GCM under the active key id with capture full', async () => {
    const { id, request, completion } = await exchange(
      'forensic',
      '{"q":"blood pressure"}',
      '{"a":"120/80"}',
    );
    expect(request).toMatchObject({
      contentCapture: 'CONTENT_CAPTURE_FULL',
      contentKeyId: 'k1',
      requestDigest: sha256('{"q":"blood pressure"}'),
    });
    expect(request.requestCiphertext).not.toContain('blood');
    expect(
      openContent(request.requestCiphertext, firstKey, contentAssociatedData(id, 'request')).toString(),
    ).toBe('{"q":"blood pressure"}');
    expect(
      openContent(completion.responseCiphertext, firstKey, contentAssociatedData(id, 'response')).toString(),
    ).toBe('{"a":"120/80"}');
    // A ciphertext moved onto another request (or direction) no longer opens.
    expect(() =>
      openContent(request.requestCiphertext, firstKey, contentAssociatedData(id, 'response')),
    ).toThrow();
    expect(() =>
      openContent(request.requestCiphertext, firstKey, contentAssociatedData('other', 'request')),
    ).toThrow();
  });

  it('rotates content keys: new records use the new id, old ones still open with the old key', async () => {
    const before = await exchange('forensic', 'old prompt', 'old answer');
    await running.stop();
    await writeFile(
      keysFile,
      JSON.stringify({
        activeKeyId: 'k2',
        keys: { k1: firstKey.toString('base64'), k2: secondKey.toString('base64') },
      }),
    );
    running = await startTestApp(database, { contentKeysFile: keysFile });
    const after = await exchange('forensic', 'new prompt', 'new answer');
    expect(after.request.contentKeyId).toBe('k2');
    expect(
      openContent(
        after.request.requestCiphertext,
        secondKey,
        contentAssociatedData(after.id, 'request'),
      ).toString(),
    ).toBe('new prompt');
    expect(
      openContent(
        before.request.requestCiphertext,
        firstKey,
        contentAssociatedData(before.id, 'request'),
      ).toString(),
    ).toBe('old prompt');
    expect(running.logLines.join('\n')).not.toMatch(/prompt|answer|blood|patient/);
  });

  it('refuses full capture when no content keys are configured', async () => {
    await running.stop();
    running = await startTestApp(database);
    const code = await grpcCode(
      running.client.upsertTenant({
        credential: running.adminKey,
        tenant: { id: 'nokeys', contentCapture: 'CONTENT_CAPTURE_FULL' },
      }),
    );
    expect(code).toBe(status.FAILED_PRECONDITION);
  });
});
