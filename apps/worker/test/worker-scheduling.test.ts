import { join } from 'node:path';
import { copyFileSync, writeFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import {
  MODELS_DIR,
  describeWithModels,
  eventually,
  firstEvent,
  grpcCode,
  grpcReason,
  startTestWorker,
  type StartedWorker,
} from './worker-harness.js';

const LONG = { temperature: 0, maxTokens: 2000 };

async function generatedTokens(worker: StartedWorker): Promise<number> {
  const metrics = await (await fetch(`http://127.0.0.1:${worker.app.opsPort}/metrics`)).text();
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith('airlock_worker_generated_tokens_total{model="one-slot"}'));
  return Number(line?.split(' ')[1] ?? 0);
}

describeWithModels('worker scheduling: one sequence, a queue of one, cancellation, broken models', () => {
  let worker: StartedWorker;

  beforeAll(async () => {
    const stories = join(MODELS_DIR!, 'stories260K.gguf');
    worker = await startTestWorker(`
models:
  - id: one-slot
    path: ${stories}
    contextSize: 2048
    parallel: 1
    queueSize: 1
    gpu: cpu
    threads: 1
  - id: missing-file
    path: ./does-not-exist.gguf
  - id: wrong-checksum
    path: ${stories}
    sha256: '${'0'.repeat(64)}'
`);
  });

  afterAll(() => worker?.close());

  it('reports models that cannot load, with the reason, while serving the good one', async () => {
    const byId = async (id: string) => worker.client.modelStatus(id);
    expect((await byId('one-slot')).state).toBe('MODEL_STATE_READY');
    const missing = await byId('missing-file');
    expect(missing.state).toBe('MODEL_STATE_FAILED');
    expect(missing.error).toMatch(/does-not-exist\.gguf does not exist/);
    const wrong = await byId('wrong-checksum');
    expect(wrong.state).toBe('MODEL_STATE_FAILED');
    expect(wrong.error).toMatch(
      /sha256 mismatch .* file has 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d/,
    );
    const error = await worker.client
      .complete({ model: 'wrong-checksum', prompt: 'x' })
      .catch((e: unknown) => e);
    expect(grpcCode(error)).toBe(status.UNAVAILABLE);
    expect(grpcReason(error)).toBe('MODEL_NOT_READY');
    expect((error as Error).message).toMatch(/sha256 mismatch/);
  });

  it('refuses a request at once when the sequence is busy and the queue is full, then serves the queued one', async () => {
    const running = worker.client.open('complete', {
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: LONG,
    });
    await firstEvent(running);
    const queued = worker.client.open('complete', {
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: { maxTokens: 3 },
    });
    const queuedResult = worker.client.collect(queued);
    await eventually(async () => expect((await worker.client.modelStatus('one-slot')).queueLength).toBe(1));

    const refused = await worker.client.complete({ model: 'one-slot', prompt: 'x' }).catch((e: unknown) => e);
    expect(grpcCode(refused)).toBe(status.RESOURCE_EXHAUSTED);
    expect(grpcReason(refused)).toBe('QUEUE_FULL');

    running.cancel();
    const served = await queuedResult;
    expect(served.finish?.usage.completionTokens).toBe(3);
    expect(served.finish?.queueWaitMs).toBeGreaterThan(0);
  });

  it('cancelling a generation stops it and frees its sequence for the next request', async () => {
    const stream = worker.client.open('complete', {
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: LONG,
    });
    stream.on('error', () => undefined);
    await firstEvent(stream);
    expect((await worker.client.modelStatus('one-slot')).slotsBusy).toBe(1);
    stream.cancel();

    await eventually(async () => expect((await worker.client.modelStatus('one-slot')).slotsBusy).toBe(0));
    // No more tokens are generated once the slot is free.
    const before = await generatedTokens(worker);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await generatedTokens(worker)).toBe(before);

    // The one sequence serves the next request.
    const next = await worker.client.complete({
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 5 },
    });
    expect(next.text).toBe(', there was a little');
    expect(next.finish?.finishReason).toBe('FINISH_REASON_LENGTH');
  });

  it('a request cancelled while queued never takes the sequence', async () => {
    const running = worker.client.open('complete', {
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: LONG,
    });
    running.on('error', () => undefined);
    await firstEvent(running);
    const queued = worker.client.open('complete', {
      model: 'one-slot',
      prompt: 'x',
      sampling: { maxTokens: 3 },
    });
    queued.on('error', () => undefined);
    await eventually(async () => expect((await worker.client.modelStatus('one-slot')).queueLength).toBe(1));
    queued.cancel();
    await eventually(async () => expect((await worker.client.modelStatus('one-slot')).queueLength).toBe(0));
    running.cancel();
    await eventually(async () => expect((await worker.client.modelStatus('one-slot')).slotsBusy).toBe(0));
  });
});

describeWithModels('worker with a corrupt GGUF file', () => {
  it('fails that model with a clear reason instead of crashing', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'airlock-corrupt-'));
    const good = join(dir, 'good.gguf');
    copyFileSync(join(MODELS_DIR!, 'stories260K.gguf'), good);
    const corrupt = join(dir, 'corrupt.gguf');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64, 0xff)]));
    const worker = await startTestWorker(`
models:
  - id: good
    path: ${good}
    contextSize: 256
    parallel: 1
    threads: 1
    gpu: cpu
  - id: corrupt
    path: ${corrupt}
    gpu: cpu
`);
    try {
      const broken = await worker.client.modelStatus('corrupt');
      expect(broken.state).toBe('MODEL_STATE_FAILED');
      expect(broken.error).toMatch(/cannot load .*corrupt\.gguf/);
      const ok = await worker.client.complete({
        model: 'good',
        prompt: 'Once upon a time',
        sampling: { temperature: 0, maxTokens: 3 },
      });
      expect(ok.text).toBe(', there was');
      const ready = await fetch(`http://127.0.0.1:${worker.app.opsPort}/readyz`);
      expect(ready.status).toBe(200);
    } finally {
      await worker.close();
    }
  });
});
