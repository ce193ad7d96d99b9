// Every completion record names the weights that answered: the real worker (stories260K, once unsigned and once
// signed with `airlock model sign`), the gateway, auth-audit on PGlite, the official OpenAI SDK. The record
// carries the file's exact sha256 and the signer's key fingerprint, on every surface, streamed or not, and the
// chain still verifies, online and with the offline verifier.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { MODEL, Platform, ROOT, describeWithModels, modelsDir, type Json } from './platform.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'apps', 'cli', 'bin', 'airlock.mjs');
const SIGNED = 'stories260K-signed';

describeWithModels('model provenance in the audit log', () => {
  const keys = mkdtempSync(join(tmpdir(), 'airlock-provenance-'));
  // Read in beforeAll, not here: jest runs a skipped describe's body too, and without the models this would throw.
  let file = '';
  let sha256 = '';
  let signer = '';
  let platform: Platform;
  let client: OpenAI;

  beforeAll(async () => {
    file = join(modelsDir(), `${MODEL}.gguf`);
    sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    // The operator's path: a key pair, then a bundle for the file (named by its file name, as the worker checks).
    const keygen = await run(process.execPath, [CLI, 'model', 'keygen', join(keys, 'signer')]);
    signer = keygen.stdout.trim().split(' ')[2];
    const bundle = join(keys, `${MODEL}.gguf.sig`);
    await run(process.execPath, [
      CLI,
      'model',
      'sign',
      file,
      '--signing-key',
      join(keys, 'signer.key'),
      '--out',
      bundle,
    ]);
    platform = new Platform({
      database: 'pglite',
      authAuditEnv: { AIRLOCK_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1' },
      extraModels: [
        {
          id: SIGNED,
          file: `${MODEL}.gguf`,
          embeddings: true,
          signature: { bundle, publicKey: join(keys, 'signer.pub') },
        },
      ],
    });
    await platform.start();
    await platform.until(() =>
      platform.gateway.pool.list().some((w) => w.model(SIGNED)?.state === 'MODEL_STATE_READY'),
    );
    client = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: platform.adminKey, maxRetries: 0 });
  }, 180_000);
  afterAll(() => platform?.close(), 60_000);

  const completionOf = async (requestId: string | null | undefined): Promise<Json> => {
    const records = await platform.auditRecords(requestId!);
    return records.find((r) => r.kind === 'completion');
  };
  const messages = [{ role: 'user' as const, content: 'Once upon a time' }];

  it('the signer is the trusted key: `airlock model verify` names the same fingerprint', async () => {
    expect(signer).toMatch(/^sha256:[0-9a-f]{64}$/);
    const verified = await run(process.execPath, [
      CLI,
      'model',
      'verify',
      file,
      '--public-key',
      join(keys, 'signer.pub'),
      '--signature',
      join(keys, `${MODEL}.gguf.sig`),
    ]);
    expect(verified.stdout).toContain(`sha256 ${sha256} signed by ${signer}`);
  });

  it('chat, completions, embeddings and responses, streamed and not: each completion record names the digest and signer', async () => {
    const requestIds: string[] = [];
    const chat = await client.chat.completions
      .create({ model: SIGNED, messages, max_tokens: 4 })
      .withResponse();
    requestIds.push(chat.request_id!);
    const chatStream = await client.chat.completions
      .create({ model: SIGNED, messages, max_tokens: 4, stream: true })
      .withResponse();
    for await (const chunk of chatStream.data) void chunk;
    requestIds.push(chatStream.request_id!);
    const completion = await client.completions
      .create({ model: SIGNED, prompt: 'Once', max_tokens: 4 })
      .withResponse();
    requestIds.push(completion.request_id!);
    const completionStream = await client.completions
      .create({ model: SIGNED, prompt: 'Once', max_tokens: 4, stream: true })
      .withResponse();
    for await (const chunk of completionStream.data) void chunk;
    requestIds.push(completionStream.request_id!);
    const embedding = await client.embeddings.create({ model: SIGNED, input: ['Once'] }).withResponse();
    requestIds.push(embedding.request_id!);
    const response = await client.responses
      .create({ model: SIGNED, input: 'Once', max_output_tokens: 16 })
      .withResponse();
    requestIds.push(response.request_id!);
    const responseStream = await client.responses
      .create({ model: SIGNED, input: 'Once', max_output_tokens: 16, stream: true })
      .withResponse();
    for await (const event of responseStream.data) void event;
    requestIds.push(responseStream.request_id!);

    expect(new Set(requestIds).size).toBe(7);
    for (const requestId of requestIds) {
      const record = await completionOf(requestId);
      expect({
        requestId,
        outcome: record.outcome,
        sha: record.model_sha256,
        signer: record.model_signer,
      }).toEqual({ requestId, outcome: 'succeeded', sha: sha256, signer });
    }
    // The request record is written before any worker is chosen: it names no weights.
    const request = (await platform.auditRecords(requestIds[0])).find((r) => r.kind === 'request');
    expect(request.model_sha256).toBe('');
  });

  it('an unsigned model: the digest, and no signer', async () => {
    const chat = await client.chat.completions
      .create({ model: MODEL, messages, max_tokens: 4 })
      .withResponse();
    const record = await completionOf(chat.request_id);
    expect(record.model_sha256).toBe(sha256);
    expect(record.model_signer).toBe('');
  });

  it('a stream the client cancels still names the weights (from the serving worker)', async () => {
    const abort = new AbortController();
    const { data: stream, request_id } = await client.chat.completions
      .create({ model: SIGNED, messages, max_tokens: 1500, stream: true }, { signal: abort.signal })
      .withResponse();
    let seen = 0;
    for await (const chunk of stream) if (chunk && ++seen === 3) abort.abort();
    const record = await completionOf(request_id);
    expect(record.outcome).toBe('cancelled');
    expect([record.model_sha256, record.model_signer]).toEqual([sha256, signer]);
  });

  it('the worker reports the provenance in its status, and the CLI shows it in the audit query', async () => {
    const worker = platform.gateway.pool.list()[0];
    expect(worker.model(SIGNED)?.provenance).toEqual({ sha256, signer });
    expect(worker.model(MODEL)?.provenance).toEqual({ sha256, signer: '' });
    const table = await run(process.execPath, [
      CLI,
      '--url',
      platform.url,
      '--key',
      platform.adminKey,
      'audit',
      'query',
      '--model',
      SIGNED,
    ]);
    expect(table.stdout.split('\n')[0]).toMatch(/MODEL_SHA256\s+MODEL_SIGNER$/);
    expect(table.stdout).toContain(`${sha256}  ${signer}`);
  });

  it('the chain with v3 records verifies online and offline; editing a signer is caught', async () => {
    const online = await platform.admin('POST', '/audit/verify', {});
    expect(online.json.ok).toBe(true);
    const checkpoints = (await platform.admin('GET', '/audit/checkpoints')).json as {
      signing_keys: { public_key_pem: string }[];
    };
    const keyFile = join(keys, 'audit-public.pem');
    writeFileSync(keyFile, checkpoints.signing_keys.map((key) => key.public_key_pem).join('\n'));
    const exported = await run(process.execPath, [
      CLI,
      '--url',
      platform.url,
      '--key',
      platform.adminKey,
      'audit',
      'export',
    ]);
    const lines = exported.stdout.trim().split('\n');
    expect(lines.filter((line) => JSON.parse(line).model_signer === signer).length).toBeGreaterThanOrEqual(8);
    const verify = (exportFile: string) =>
      run(process.execPath, [
        CLI,
        '--json',
        'audit',
        'verify',
        '--export',
        exportFile,
        '--witness',
        join(platform.authAuditDataDir, 'audit-witness', 'audit-checkpoints.jsonl'),
        '--public-key',
        keyFile,
      ]).then(
        (r) => JSON.parse(r.stdout) as Json,
        (error: { stdout: string }) => JSON.parse(error.stdout) as Json,
      );
    const exportFile = join(keys, 'export.jsonl');
    writeFileSync(exportFile, exported.stdout);
    expect(await verify(exportFile)).toMatchObject({ ok: true });

    // Someone claims the answer came from unsigned weights: the record no longer matches its hash.
    const index = lines.findIndex((line) => JSON.parse(line).model_signer === signer);
    const forged = [...lines];
    forged[index] = JSON.stringify({ ...JSON.parse(lines[index]), model_signer: '' });
    const forgedFile = join(keys, 'forged.jsonl');
    writeFileSync(forgedFile, `${forged.join('\n')}\n`);
    const report = await verify(forgedFile);
    expect(report.ok).toBe(false);
    expect(report.failure).toBe('record_altered');
    expect(report.failedSequence).toBe(JSON.parse(lines[index]).sequence);
  });
});
