import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { startTestWorker, type StartedWorker } from './worker-harness.js';

// A split GGUF (gpt-oss-120b comes in three parts): the catalog lists every part after the first with its SHA-256
// and the worker checks each before loading, so a swapped second or third part never serves. A real worker and the
// generated smoke model; the "parts" here are files beside it under names node-llama-cpp does not take for split
// parts (it would parse those as GGUF), so the check under test is the worker's alone.
describe('worker: every part of a split model is checked before loading', () => {
  let worker: StartedWorker;
  const dir = mkdtempSync(join(tmpdir(), 'airlock-split-worker-'));
  const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

  beforeAll(async () => {
    const model = join(dir, 'smoke.gguf');
    await writeLlamaGgufPreset(model, 'smoke');
    for (const n of [2, 3]) writeFileSync(join(dir, `smoke.part-${n}`), `tensor data of part ${n}`);
    const part = (n: number, digest = sha(join(dir, `smoke.part-${n}`))) =>
      `\n      - path: smoke.part-${n}\n        sha256: '${digest}'`;
    const entry = (id: string, parts: string) => `
  - id: ${id}
    path: ${model}
    sha256: ${sha(model)}
    contextSize: 256
    parallel: 1
    gpu: cpu
    threads: 1
    parts:${parts}`;
    const catalog = join(dir, 'models.yaml');
    writeFileSync(
      catalog,
      `models:${entry('whole', part(2) + part(3))}${entry('swapped-part', part(2) + part(3, 'f'.repeat(64)))}` +
        `${entry('missing-part', part(2) + '\n      - path: smoke.part-4\n        sha256: ' + "'" + '0'.repeat(64) + "'")}\n`,
    );
    worker = await startTestWorker(
      readFileSync(catalog, 'utf8').replaceAll('path: smoke.part', `path: ${dir}/smoke.part`),
    );
  });

  afterAll(() => worker?.close());

  it('loads when every part matches', async () => {
    const whole = await worker.client.modelStatus('whole');
    expect(whole.error ?? '').toBe('');
    expect(whole.state).toBe('MODEL_STATE_READY');
  });

  it('refuses a model one of whose later parts differs or is missing, naming the part', async () => {
    const swapped = await worker.client.modelStatus('swapped-part');
    expect(swapped.state).toBe('MODEL_STATE_FAILED');
    expect(swapped.error).toMatch(/sha256 mismatch for .*smoke\.part-3: catalog expects f{64}/);
    const missing = await worker.client.modelStatus('missing-part');
    expect(missing.state).toBe('MODEL_STATE_FAILED');
    expect(missing.error).toMatch(/model part .*smoke\.part-4 does not exist/);
  });
});
