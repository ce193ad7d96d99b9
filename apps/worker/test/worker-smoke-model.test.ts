import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { startTestWorker, type StartedWorker } from './worker-harness.js';

// Runs on any machine: the generated smoke model (random weights, so the text is gibberish, but deterministic).
describe('worker on a generated smoke model', () => {
  let worker: StartedWorker;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-smoke-'));
    const model = join(dir, 'smoke.gguf');
    await writeLlamaGgufPreset(model, 'smoke');
    worker = await startTestWorker(`
models:
  - id: smoke
    path: ${model}
    contextSize: 2048
    parallel: 2
    gpu: cpu
    threads: 1
    embeddings: true
`);
  });

  afterAll(() => worker?.close());

  it('chats deterministically at temperature 0 and counts tokens', async () => {
    const request = {
      model: 'smoke',
      messages: [{ role: 'CHAT_ROLE_USER' as const, content: 'Hello there' }],
      sampling: { temperature: 0, maxTokens: 20 },
    };
    const first = await worker.client.chat(request);
    const second = await worker.client.chat(request);
    expect(first.text.length).toBeGreaterThan(0);
    expect(second.text).toBe(first.text);
    expect(first.finish?.usage.completionTokens).toBe(20);
    expect(first.finish?.finishReason).toBe('FINISH_REASON_LENGTH');
  });

  it('keeps multi-byte UTF-8 intact in streamed deltas', async () => {
    const result = await worker.client.complete({
      model: 'smoke',
      prompt: 'Grüße 👋 日本',
      sampling: { temperature: 1, seed: 7, maxTokens: 64 },
    });
    for (const event of result.events) {
      if (event.event === 'textDelta') expect(event.textDelta).not.toContain('\uFFFD');
    }
    expect(result.finish?.usage.completionTokens).toBe(64);
  });

  it('embeds', async () => {
    const response = await worker.client.unary<{ embeddings: { values: number[] }[] }>('embed', {
      model: 'smoke',
      inputs: ['é', 'b'],
    });
    expect(response.embeddings.map((e) => e.values.length)).toEqual([64, 64]);
  });
});
