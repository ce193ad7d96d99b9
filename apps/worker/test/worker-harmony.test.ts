import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLlamaGgufPreset } from '@airlock/gguf';
import { startTestWorker, type StartedWorker } from './worker-harness.js';

// gpt-oss models speak the Harmony format. No real gpt-oss fits in CI, so this generated model carries a
// gpt-oss name, which is how node-llama-cpp picks its Harmony chat wrapper. Its weights are random, so the
// test checks the wiring (format resolved, reasoning effort reaching the prompt), not the model's reasoning.
describe('worker with a Harmony-format (gpt-oss) model', () => {
  let worker: StartedWorker;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-harmony-'));
    const model = join(dir, 'gpt-oss-smoke.gguf');
    await writeLlamaGgufPreset(model, 'smoke', { name: 'gpt-oss-smoke', chatTemplate: false });
    worker = await startTestWorker(`
models:
  - id: gpt-oss-smoke
    path: ${model}
    contextSize: 2048
    parallel: 1
    gpu: cpu
    threads: 1
`);
  });

  afterAll(() => worker?.close());

  it('resolves the Harmony chat format', async () => {
    expect((await worker.client.modelStatus('gpt-oss-smoke')).chatFormat).toBe('Harmony');
  });

  it('puts the requested reasoning effort into the prompt', async () => {
    const promptTokens = async (effort: 'REASONING_EFFORT_LOW' | 'REASONING_EFFORT_HIGH') => {
      const result = await worker.client.chat({
        model: 'gpt-oss-smoke',
        messages: [{ role: 'CHAT_ROLE_USER', content: 'Hi' }],
        reasoningEffort: effort,
        sampling: { temperature: 0, maxTokens: 2 },
      });
      return result.finish!.usage.promptTokens;
    };
    // One byte token per character: "Reasoning: high" is one token longer than "Reasoning: low".
    expect((await promptTokens('REASONING_EFFORT_HIGH')) - (await promptTokens('REASONING_EFFORT_LOW'))).toBe(
      1,
    );
  });
});
