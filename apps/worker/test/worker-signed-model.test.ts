import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyFingerprint, signModel, type EmbedResponse } from '@airlock/contracts';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { startTestWorker, type StartedWorker } from './worker-harness.js';

// A real worker and the generated smoke model: the catalog asks for a model-signing signature, and only the model
// signed by the trusted key, unchanged, loads.
describe('worker: models whose catalog entry requires a signature', () => {
  let worker: StartedWorker;
  const dir = mkdtempSync(join(tmpdir(), 'airlock-signed-worker-'));
  let sha256 = '';
  let signer = '';

  beforeAll(async () => {
    const model = join(dir, 'smoke.gguf');
    await writeLlamaGgufPreset(model, 'smoke');
    sha256 = createHash('sha256').update(readFileSync(model)).digest('hex');
    const pair = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const trusted = pair();
    const stranger = pair();
    signer = keyFingerprint(trusted.publicKey);
    writeFileSync(join(dir, 'trusted.pub'), trusted.publicKey.export({ type: 'spki', format: 'pem' }));
    const sign = (key: typeof trusted, file: string, digest: string) =>
      JSON.stringify(
        signModel(
          'smoke',
          [{ name: file, sha256: digest }],
          key.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        ),
      );
    writeFileSync(join(dir, 'good.sig'), sign(trusted, 'smoke.gguf', sha256));
    writeFileSync(join(dir, 'stranger.sig'), sign(stranger, 'smoke.gguf', sha256));
    writeFileSync(join(dir, 'other-bytes.sig'), sign(trusted, 'smoke.gguf', '0'.repeat(64)));
    const entry = (id: string, bundle?: string) => `
  - id: ${id}
    path: ${model}
    contextSize: 256
    parallel: 1
    gpu: cpu
    threads: 1
    embeddings: true${
      bundle
        ? `
    signature:
      bundle: ${join(dir, bundle)}
      publicKey: ${join(dir, 'trusted.pub')}`
        : ''
    }`;
    worker = await startTestWorker(
      `models:${entry('signed', 'good.sig')}${entry('unsigned', 'absent.sig')}${entry('stranger', 'stranger.sig')}${entry('changed', 'other-bytes.sig')}${entry('unpinned')}\n`,
    );
  });

  afterAll(() => worker?.close());

  it('loads the signed model and logs its digest and signer, without content', async () => {
    expect((await worker.client.modelStatus('signed')).state).toBe('MODEL_STATE_READY');
    const line = worker.log.lines.find((l) => l.includes('model serving') && l.includes('"signed"'));
    expect(line).toContain(`"signer":"${signer}"`);
    expect(line).toContain(`"sha256":"${sha256}"`);
  });

  it('refuses an unsigned model, another signer and a file that is not what was signed', async () => {
    const unsigned = await worker.client.modelStatus('unsigned');
    expect(unsigned.state).toBe('MODEL_STATE_FAILED');
    expect(unsigned.error).toMatch(/model signature refused .* cannot read the signature bundle/);
    const stranger = await worker.client.modelStatus('stranger');
    expect(stranger.state).toBe('MODEL_STATE_FAILED');
    expect(stranger.error).toMatch(/does not verify with the trusted public key/);
    const changed = await worker.client.modelStatus('changed');
    expect(changed.state).toBe('MODEL_STATE_FAILED');
    expect(changed.error).toMatch(/smoke\.gguf: sha256 [0-9a-f]{64} differs from the signed 0{64}/);
  });

  it('tells the verified digest and signer in its status, in every finish and in embeddings', async () => {
    expect((await worker.client.modelStatus('signed')).provenance).toEqual({ sha256, signer });
    const chat = await worker.client.chat({
      model: 'signed',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Once' }],
      sampling: { maxTokens: 2 },
    });
    expect(chat.finish?.model).toEqual({ sha256, signer });
    const completion = await worker.client.complete({
      model: 'signed',
      prompt: 'Once',
      sampling: { maxTokens: 2 },
    });
    expect(completion.finish?.model).toEqual({ sha256, signer });
    const embedded = await worker.client.unary<EmbedResponse>('embed', { model: 'signed', inputs: ['Once'] });
    expect(embedded.model).toEqual({ sha256, signer });
  });

  it('a model the catalog pins by nothing is hashed while it loads, and answers unsigned', async () => {
    const status = await worker.client.modelStatus('unpinned');
    expect(status.state).toBe('MODEL_STATE_READY');
    expect(status.provenance).toEqual({ sha256, signer: '' });
    const chat = await worker.client.chat({
      model: 'unpinned',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Once' }],
      sampling: { maxTokens: 2 },
    });
    expect(chat.finish?.model).toEqual({ sha256, signer: '' });
    // A refused model tells no provenance.
    expect((await worker.client.modelStatus('stranger')).provenance).toBeNull();
  });
});
