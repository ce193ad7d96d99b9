import { join } from 'node:path';
import {
  getLlama,
  LlamaCompletion,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
} from 'node-llama-cpp';
import { DecodeLockstep, type LockstepStep } from '../src/engine/decode-lockstep.js';
import { MODELS_DIR, describeWithModels, startTestWorker, type StartedWorker } from './worker-harness.js';

const PROMPT = 'Once upon a time';

/**
 * Counts the native decode calls of a context (llama_decode through node-llama-cpp's addon) and the tokens in
 * each, by wrapping the addon object the context holds. Test instrumentation only: it reads node-llama-cpp
 * internals, so a node-llama-cpp upgrade that moves them fails here loudly.
 */
function countDecodes(context: LlamaContext): { decodes: number; tokens: number[] } {
  const internals = context as unknown as { _ctx: Record<string, unknown> };
  const addon = internals._ctx;
  expect(typeof addon.decodeBatch).toBe('function');
  const counts = { decodes: 0, tokens: [] as number[] };
  let batchTokens = 0;
  internals._ctx = new Proxy(addon, {
    get(target, property) {
      const value = target[property as string];
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (property === 'initBatch')
        return (size: number) => {
          batchTokens = size;
          return method.call(target, size);
        };
      if (property === 'decodeBatch')
        return () => {
          counts.decodes++;
          counts.tokens.push(batchTokens);
          return method.call(target);
        };
      return method.bind(target);
    },
  });
  return counts;
}

/** Greedy generation on one sequence, leaving the lockstep when done as the worker does at the end of a request. */
async function generate(
  sequence: LlamaContextSequence,
  maxTokens: number,
  lockstep?: DecodeLockstep,
): Promise<number> {
  let generated = 0;
  const completion = new LlamaCompletion({ contextSequence: sequence });
  try {
    await completion.generateCompletion(PROMPT, {
      maxTokens,
      temperature: 0,
      onToken: (tokens) => (generated += tokens.length),
    });
  } finally {
    completion.dispose({ disposeSequence: false });
    lockstep?.leave(sequence);
  }
  return generated;
}

describeWithModels(
  'decode lockstep: every generating sequence in the same decode (real node-llama-cpp)',
  () => {
    let llama: Llama;
    let model: LlamaModel;

    beforeAll(async () => {
      llama = await getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, progressLogs: false });
      model = await llama.loadModel({ modelPath: join(MODELS_DIR!, 'stories260K.gguf') });
    });

    afterAll(async () => {
      await model?.dispose();
      await llama?.dispose();
    });

    async function lockstepContext(sequences: number) {
      const context = await model.createContext({
        contextSize: 256,
        sequences,
        threads: 1,
        batching: DecodeLockstep.batching,
      });
      const steps: LockstepStep[] = [];
      const lockstep = DecodeLockstep.attach(context, (step) => steps.push(step));
      expect(lockstep).toBeDefined();
      return { context, lockstep: lockstep!, steps, counts: countDecodes(context) };
    }

    it.each([2, 4, 8])(
      '%i sequences: one decode per step, each carrying every sequence',
      async (parallel) => {
        const { context, lockstep, steps, counts } = await lockstepContext(parallel);
        try {
          const maxTokens = 40;
          const sequences = Array.from({ length: parallel }, () => context.getSequence());
          const generated = await Promise.all(sequences.map((s) => generate(s, maxTokens, lockstep)));

          expect(generated).toEqual(Array(parallel).fill(maxTokens));
          expect(counts.decodes).toBe(steps.length);
          // Each sequence's prompt may go alone (they start apart); after that, one decode per token, carrying a
          // token of every sequence. node-llama-cpp alone: 2 sequences took a decode per token of either.
          // On a starved machine a sequence can miss a step's wait (counted late): each such split adds one.
          const late = steps.filter((step) => step.late).length;
          expect(late).toBeLessThanOrEqual(maxTokens / 4);
          expect(counts.decodes).toBeLessThanOrEqual(maxTokens + parallel + 1 + late);
          const decodesOfEverySequence = counts.tokens.filter((tokens) => tokens === parallel).length;
          expect(decodesOfEverySequence).toBeGreaterThanOrEqual(maxTokens - parallel - 1 - late);
        } finally {
          await context.dispose();
        }
      },
    );

    it('a sequence that finishes leaves: the others go on without waiting for it', async () => {
      const { context, lockstep, steps, counts } = await lockstepContext(3);
      try {
        const [short, long, other] = [context.getSequence(), context.getSequence(), context.getSequence()];
        const generated = await Promise.all([
          generate(short, 5, lockstep),
          generate(long, 40, lockstep),
          generate(other, 40, lockstep),
        ]);

        expect(generated).toEqual([5, 40, 40]);
        // After the short one leaves, steps carry the two that remain, released at once: were the finished
        // one still waited for, each of those ~35 steps would go by the timer (late).
        const late = steps.filter((step) => step.late).length;
        expect(late).toBeLessThanOrEqual(40 / 4);
        expect(counts.decodes).toBeLessThanOrEqual(40 + 3 + 1 + late);
        expect(counts.tokens.filter((tokens) => tokens === 2).length).toBeGreaterThanOrEqual(
          40 - 5 - 3 - late,
        );
      } finally {
        await context.dispose();
      }
    });

    it('a sequence that starts later joins the step in progress instead of being decoded apart', async () => {
      const { context, lockstep, steps, counts } = await lockstepContext(2);
      try {
        const first = generate(context.getSequence(), 40, lockstep);
        while (steps.length < 10) await new Promise((resolve) => setImmediate(resolve));
        const second = await generate(context.getSequence(), 20, lockstep);
        expect(second).toBe(20);
        expect(await first).toBe(40);
        // Alone for ~10 steps, then both together: its prompt joins a step, then a token of each per decode.
        const late = steps.filter((step) => step.late).length;
        expect(late).toBeLessThanOrEqual(40 / 4);
        expect(counts.decodes).toBeLessThanOrEqual(40 + 1 + late);
        expect(counts.tokens.filter((tokens) => tokens === 2).length).toBeGreaterThanOrEqual(20 - 2 - late);
      } finally {
        await context.dispose();
      }
    });
  },
);

describeWithModels('worker: parallel requests share decodes (gRPC, /metrics counters)', () => {
  let worker: StartedWorker;

  beforeAll(async () => {
    worker = await startTestWorker(`
models:
  - id: batched
    path: ${join(MODELS_DIR!, 'stories260K.gguf')}
    contextSize: 256
    parallel: 6
    gpu: cpu
    threads: 1
`);
  });

  afterAll(() => worker?.close());

  async function counter(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${worker.app.opsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{model="batched"}`));
    return Number(line?.split(' ')[1] ?? 0);
  }

  it('4 streams on 6 sequences: about 4 sequences per decode step', async () => {
    const maxTokens = 48;
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        worker.client.complete({
          model: 'batched',
          prompt: PROMPT,
          sampling: { temperature: 0, maxTokens },
        }),
      ),
    );
    for (const result of results) expect(result.finish?.usage?.completionTokens).toBe(maxTokens);
    const steps = await counter('airlock_worker_decode_steps_total');
    const decoded = await counter('airlock_worker_decoded_sequences_total');
    const late = await counter('airlock_worker_late_decode_steps_total');
    expect(late).toBeLessThanOrEqual(maxTokens / 4);
    // 4 prompts (perhaps apart), then one step per token with all four in it (+1 per late step).
    expect(steps).toBeGreaterThanOrEqual(maxTokens);
    expect(steps).toBeLessThanOrEqual(maxTokens + 4 + 1 + late);
    expect(decoded / steps).toBeGreaterThan(3.2);
  });
});
