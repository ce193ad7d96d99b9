import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { EmbedResponse, TokenizeResponse } from '@airlock/contracts';
import { findFreePort } from '@airlock/telemetry';
import type { LlamaServerRunner } from '../src/engine/llama-server-runner.js';
import {
  LLAMA_SERVER_BIN,
  MODELS_DIR,
  eventually,
  firstEvent,
  grpcCode,
  grpcReason,
  startTestWorker,
  type StartedWorker,
} from './worker-harness.js';

// The greedy continuation that /work/shared/models/README.md records for stories260K (node-llama-cpp, CPU).
const GREEDY_ONCE_UPON_A_TIME = ', there was a little girl named Lily. She loved to play outside in the p';
const HAVE_SERVER = existsSync(LLAMA_SERVER_BIN);
const describeWithServer = MODELS_DIR && HAVE_SERVER ? describe : describe.skip;
if (MODELS_DIR && !HAVE_SERVER) {
  process.stderr.write(
    `no llama-server at ${LLAMA_SERVER_BIN} (build it: node bench/llama-cpp-build.mjs, or set ` +
      'AIRLOCK_LLAMA_SERVER_BIN): the llama-server engine suites are skipped\n',
  );
}

/** Metrics of one scrape (several names read from the same /metrics answer). */
async function workerMetrics(worker: StartedWorker, model: string, ...names: string[]): Promise<number[]> {
  const text = await (await fetch(`http://127.0.0.1:${worker.app.opsPort}/metrics`)).text();
  return names.map((name) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{model="${model}"}`));
    return Number(line?.split(' ')[1] ?? 0);
  });
}

async function workerMetric(worker: StartedWorker, name: string, model: string): Promise<number> {
  return (await workerMetrics(worker, model, name))[0];
}

describeWithServer('worker on the llama-server engine (real llama-server child, stories260K)', () => {
  let worker: StartedWorker;
  const runner = (id: string) => worker.app.fleet.runnerFor(id) as LlamaServerRunner;

  beforeAll(async () => {
    const stories = join(MODELS_DIR!, 'stories260K.gguf');
    const chat = join(MODELS_DIR!, 'stories260K-chat.gguf');
    worker = await startTestWorker(`
models:
  - id: stories
    engine: llama-server
    path: ${stories}
    sha256: 270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d
    contextSize: 512
    parallel: 4
    gpu: cpu
    threads: 1
  - id: one-slot
    engine: llama-server
    path: ${stories}
    contextSize: 2048
    parallel: 1
    queueSize: 1
    gpu: cpu
    threads: 1
  - id: chat-server
    engine: llama-server
    path: ${chat}
    contextSize: 512
    parallel: 1
    gpu: cpu
    threads: 1
  - id: embedder
    engine: llama-server
    path: ${stories}
    contextSize: 256
    parallel: 1
    gpu: cpu
    threads: 1
    embeddings: true
  - id: in-process
    path: ${stories}
    contextSize: 512
    parallel: 1
    gpu: cpu
    threads: 1
`);
  }, 120_000);

  afterAll(() => worker?.close());

  it('completes "Once upon a time" greedily with exactly the recorded text, streamed token by token', async () => {
    expect((await worker.client.modelStatus('stories')).state).toBe('MODEL_STATE_READY');
    const result = await worker.client.complete({
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 24 },
    });
    expect(result.text).toBe(GREEDY_ONCE_UPON_A_TIME);
    expect(result.events.filter((e) => e.event === 'textDelta').length).toBeGreaterThan(10);
    expect(result.events.at(-1)?.event).toBe('finish');
    expect(result.finish?.finishReason).toBe('FINISH_REASON_LENGTH');
    expect(result.finish?.usage.completionTokens).toBe(24);
    const tokenized = await worker.client.unary<TokenizeResponse>('tokenize', {
      model: 'stories',
      text: 'Once upon a time',
    });
    // The prompt plus the BOS token the model prepends.
    expect(result.finish?.usage.promptTokens).toBe(tokenized.count + 1);
    expect((await worker.client.modelStatus('stories')).systemFingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    // The catalog picks the engine per model: the in-process one beside it answers the same.
    const inProcess = await worker.client.complete({
      model: 'in-process',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 24 },
    });
    expect(inProcess.text).toBe(result.text);
    expect(inProcess.finish?.usage.promptTokens).toBe(result.finish?.usage.promptTokens);
  });

  it('tokenizes short prompts in process exactly as llama-server does, long ones on llama-server', async () => {
    const stories = runner('stories');
    const chat = runner('chat-server');
    const texts = [
      'Once upon a time',
      '',
      ' leading space, "quotes" and\nnew lines\t',
      'special-looking text: <s> </s> <unk> <|im_start|>user',
      'unicode: é ü ß 猫 🙂 \u0000 end',
    ];
    const before = stories.tokenizedInProcess + chat.tokenizedInProcess;
    let compared = 0;
    for (const engine of [stories, chat]) {
      for (const text of texts) {
        for (const addSpecial of [true, false]) {
          for (const parseSpecial of [true, false]) {
            const options = { addSpecial, parseSpecial };
            const local = await engine.tokens(text, options);
            expect({ text, options, tokens: local }).toEqual({
              text,
              options,
              tokens: await engine.serverTokens(text, options),
            });
            compared += 1;
          }
        }
      }
    }
    expect(stories.tokenizedInProcess + chat.tokenizedInProcess - before).toBe(compared);
    // A completion's prompt takes the same path; a long text goes to llama-server (the event loop stays free).
    const counted = stories.tokenizedInProcess;
    await worker.client.complete({
      model: 'stories',
      prompt: 'Once',
      sampling: { temperature: 0, maxTokens: 1 },
    });
    expect(stories.tokenizedInProcess).toBe(counted + 1);
    const long = 'a story. '.repeat(2_000);
    const longTokens = await stories.tokenize(long);
    expect(stories.tokenizedInProcess).toBe(counted + 1);
    expect(longTokens.length).toBeGreaterThan(2_000);
  });

  it('stops at a stop sequence with finish reason stop', async () => {
    const result = await worker.client.complete({
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 24, stop: ['Lily'] },
    });
    expect(result.text.trimEnd()).toBe(', there was a little girl named');
    expect(result.finish?.finishReason).toBe('FINISH_REASON_STOP');
  });

  it('chats through the model’s own template: the answer is the greedy completion of the rendered prompt', async () => {
    const result = await worker.client.chat({
      model: 'chat-server',
      messages: [
        { role: 'CHAT_ROLE_SYSTEM', content: 'You tell short stories.' },
        { role: 'CHAT_ROLE_USER', content: 'Tell me about a cat.' },
      ],
      sampling: { temperature: 0, maxTokens: 16 },
    });
    // stories260K-chat's template (models README), as llama.cpp renders it; BOS is the tokenizer's.
    const rendered = 'You tell short stories.\n\nUser: Tell me about a cat.\nAssistant:';
    const plain = await worker.client.complete({
      model: 'chat-server',
      prompt: rendered,
      sampling: { temperature: 0, maxTokens: 16 },
    });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.text).toBe(plain.text);
    expect(result.finish?.usage).toMatchObject({
      promptTokens: plain.finish?.usage.promptTokens,
      completionTokens: 16,
    });
    expect(result.finish?.finishReason).toBe('FINISH_REASON_LENGTH');
  });

  it('seeded sampling repeats; a JSON schema constrains the answer', async () => {
    const seeded = {
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0.9, seed: 42, maxTokens: 12 },
    };
    const [a, b] = [await worker.client.complete(seeded), await worker.client.complete(seeded)];
    expect(a.text).toBe(b.text);
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer' } },
      required: ['name', 'age'],
    };
    const json = await worker.client.chat({
      model: 'chat-server',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Describe a girl as JSON.' }],
      sampling: { temperature: 0, maxTokens: 200, jsonSchema: JSON.stringify(schema) },
    });
    const parsed = JSON.parse(json.text) as { name: unknown; age: unknown };
    expect(typeof parsed.name).toBe('string');
    expect(Number.isInteger(parsed.age)).toBe(true);
  });

  it('reports each token’s log probability before its text, with the alternatives asked for', async () => {
    const result = await worker.client.complete({
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 6, logprobs: true, topLogprobs: 2 },
    });
    const logprobs = result.events.flatMap((e) => (e.event === 'logprobs' ? e.logprobs.tokens : []));
    expect(logprobs).toHaveLength(6);
    expect(logprobs.map((t) => t.token).join('')).toBe(result.text);
    for (const token of logprobs) {
      expect(token.logprob).toBeLessThanOrEqual(0);
      expect(token.topLogprobs).toHaveLength(2);
      // Greedy: the chosen token is the most likely one.
      expect(token.topLogprobs[0].token).toBe(token.token);
    }
    expect(result.events.findIndex((e) => e.event === 'logprobs')).toBeLessThan(
      result.events.findIndex((e) => e.event === 'textDelta'),
    );
  });

  it('reuses a slot’s prompt only for the tenant that left it there', async () => {
    const request = {
      model: 'one-slot',
      prompt: 'Once upon a time there was a dog',
      sampling: { temperature: 0, maxTokens: 4 },
    };
    const first = await worker.client.complete({ ...request, tenant: 'tenant-a' });
    const again = await worker.client.complete({ ...request, tenant: 'tenant-a' });
    const other = await worker.client.complete({ ...request, tenant: 'tenant-b' });
    const back = await worker.client.complete({ ...request, tenant: 'tenant-a' });
    expect(again.finish?.usage.cachedTokens).toBeGreaterThan(0);
    expect(other.finish?.usage.cachedTokens).toBe(0);
    // Tenant b's request left its own tokens: tenant a starts from scratch again.
    expect(back.finish?.usage.cachedTokens).toBe(0);
    for (const result of [again, other, back]) expect(result.text).toBe(first.text);
  });

  it('cancelling a generation stops llama-server’s slot (its decodes counted) and frees it for the next request', async () => {
    const server = runner('one-slot');
    const decodesBefore = await server.serverMetric('n_decode_total');
    const stream = worker.client.open('complete', {
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 2000 },
    });
    stream.on('error', () => undefined);
    await firstEvent(stream);
    stream.cancel();
    await eventually(async () => expect(await server.serverMetric('requests_processing')).toBe(0));
    // Uncancelled, the one slot would have decoded 2000 times (one token per decode).
    expect((await server.serverMetric('n_decode_total')) - decodesBefore).toBeLessThan(1000);
    expect((await worker.client.modelStatus('one-slot')).slotsBusy).toBe(0);
    const next = await worker.client.complete({
      model: 'one-slot',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 5 },
    });
    expect(next.text).toBe(', there was a little');
  });

  it('batches parallel streams: about one sequence per active stream in each decode', async () => {
    // Long enough that the streams' staggered arrival (a busy machine) is small beside the shared steps.
    const maxTokens = 256;
    const counters = ['airlock_worker_decode_steps_total', 'airlock_worker_decoded_sequences_total'];
    // Both from one scrape: llama-server's counters are read once per scrape, for both.
    const [stepsBefore, sequencesBefore] = await workerMetrics(worker, 'stories', ...counters);
    const results = await Promise.all(
      Array.from({ length: 4 }, () =>
        worker.client.complete({
          model: 'stories',
          prompt: 'Once upon a time',
          sampling: { temperature: 0, maxTokens },
        }),
      ),
    );
    for (const result of results) {
      expect(result.text.startsWith(', there was a little girl')).toBe(true);
      expect(result.finish?.usage.completionTokens).toBe(maxTokens);
    }
    const [stepsAfter, sequencesAfter] = await workerMetrics(worker, 'stories', ...counters);
    const steps = stepsAfter - stepsBefore;
    const sequences = sequencesAfter - sequencesBefore;
    // One decode per token of each stream would be 4 × 256 = 1024 steps, one sequence each.
    expect(steps).toBeGreaterThanOrEqual(maxTokens);
    // (Bounds with room for a stream that arrives late on a busy machine; unbatched is 4× and 1.)
    expect(steps).toBeLessThan(2 * maxTokens);
    expect(sequences / steps).toBeGreaterThan(2.5);
  });

  it('embeds on a second llama-server in embeddings mode, texts and token ids alike', async () => {
    const tokens = await worker.client.unary<TokenizeResponse>('tokenize', {
      model: 'embedder',
      text: 'a dog',
    });
    const answer = await worker.client.unary<EmbedResponse>('embed', {
      model: 'embedder',
      inputs: ['a dog', 'a cat'],
      tokenInputs: [{ ids: tokens.tokens }],
    });
    expect(answer.embeddings).toHaveLength(3);
    for (const embedding of answer.embeddings) expect(embedding.values).toHaveLength(64);
    expect(answer.embeddings[2].values).toEqual(answer.embeddings[0].values);
    expect(answer.embeddings[1].values).not.toEqual(answer.embeddings[0].values);
    expect(answer.promptTokens).toBe(
      tokens.count * 2 +
        (await worker.client.unary<TokenizeResponse>('tokenize', { model: 'embedder', text: 'a cat' })).count,
    );
    expect((await worker.client.modelStatus('embedder')).servesEmbeddings).toBe(true);
    // And it still completes.
    const text = await worker.client.complete({
      model: 'embedder',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 5 },
    });
    expect(text.text).toBe(', there was a little');
  });

  it('refuses what the engine cannot honour with the contract’s reasons', async () => {
    const tools = await worker.client
      .chat({
        model: 'chat-server',
        messages: [{ role: 'CHAT_ROLE_USER', content: 'hi' }],
        tools: [{ name: 'f', description: '', parametersJsonSchema: '{}' }],
      })
      .catch((e: unknown) => e);
    expect(grpcReason(tools)).toBe('FEATURE_NOT_SUPPORTED');
    const embed = await worker.client
      .unary('embed', { model: 'stories', inputs: ['x'] })
      .catch((e: unknown) => e);
    expect(grpcReason(embed)).toBe('EMBEDDINGS_NOT_SERVED');
    const long = await worker.client
      .complete({ model: 'stories', prompt: 'Once', sampling: { maxTokens: 600 } })
      .catch((e: unknown) => e);
    expect(grpcCode(long)).toBe(status.OUT_OF_RANGE);
    expect(grpcReason(long)).toBe('CONTEXT_LENGTH_EXCEEDED');
    const bias = await worker.client
      .complete({ model: 'stories', prompt: 'Once', sampling: { logitBias: [{ token: 512, bias: 1 }] } })
      .catch((e: unknown) => e);
    expect(grpcReason(bias)).toBe('INVALID_ARGUMENT');
    // logit_bias -100 bans a token: the greedy answer (", there…") goes another way.
    const comma = await worker.client.unary<TokenizeResponse>('tokenize', { model: 'stories', text: ',' });
    const banned = await worker.client.complete({
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 3, logitBias: [{ token: comma.tokens.at(-1)!, bias: -100 }] },
    });
    expect(banned.finish?.usage.completionTokens).toBe(3);
    expect(banned.text.startsWith(',')).toBe(false);
  });

  it('when llama-server dies the model is not ready at once, then it is restarted and serves again', async () => {
    const server = runner('stories');
    const child = server.process!;
    const notReadyAtExit = new Promise<boolean>((resolveExit) =>
      // Added after the runner's own exit handler: by the time this runs, the runner has seen the exit.
      child.once('exit', () =>
        resolveExit(
          worker.app.fleet.status().models.find((m) => m.id === 'stories')!.state !== 'MODEL_STATE_READY',
        ),
      ),
    );
    child.kill('SIGKILL');
    expect(await notReadyAtExit).toBe(true);
    const refused = await worker.client.complete({ model: 'stories', prompt: 'x' }).catch((e: unknown) => e);
    expect(grpcReason(refused)).toBe('MODEL_NOT_READY');
    await eventually(
      async () => expect((await worker.client.modelStatus('stories')).state).toBe('MODEL_STATE_READY'),
      30_000,
    );
    expect(server.restarts).toBe(1);
    expect(await workerMetric(worker, 'airlock_worker_engine_restarts_total', 'stories')).toBe(1);
    const result = await worker.client.complete({
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 24 },
    });
    expect(result.text).toBe(GREEDY_ONCE_UPON_A_TIME);
  });

  it('never writes prompt or completion text into its log', () => {
    expect(worker.log.text).not.toContain('Once upon a time');
    expect(worker.log.text).not.toContain('Lily');
    expect(worker.log.text).not.toContain('Tell me about a cat');
  });
});

describe('worker: a llama-server model is verified like any other and fails clearly without the binary', () => {
  const run = MODELS_DIR ? it : it.skip;
  run('refuses a changed file before starting anything, and names a missing binary', async () => {
    const stories = join(MODELS_DIR!, 'stories260K.gguf');
    const worker = await startTestWorker(
      `
models:
  - id: no-binary
    engine: llama-server
    path: ${stories}
    gpu: cpu
  - id: wrong-checksum
    engine: llama-server
    path: ${stories}
    sha256: '${'0'.repeat(64)}'
`,
      { llamaServerBin: '/nonexistent/llama-server' },
    );
    try {
      const missing = await worker.client.modelStatus('no-binary');
      expect(missing.state).toBe('MODEL_STATE_FAILED');
      expect(missing.error).toMatch(/llama-server binary \/nonexistent\/llama-server is missing/);
      const wrong = await worker.client.modelStatus('wrong-checksum');
      expect(wrong.state).toBe('MODEL_STATE_FAILED');
      expect(wrong.error).toMatch(/sha256 mismatch .* file has 270cba1bd5109f42/);
    } finally {
      await worker.close();
    }
  });
});

// The built worker as a real process (apps/worker/dist/main.js, made by `npm test`'s build step).
const MAIN = resolve('apps/worker/dist/main.js');
(MODELS_DIR && HAVE_SERVER && existsSync(MAIN) ? describe : describe.skip)(
  'worker process killed with SIGKILL: its llama-server child dies too (no orphan)',
  () => {
    it('the child process is gone once the worker is', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'airlock-orphan-'));
      const catalog = join(dir, 'models.yaml');
      writeFileSync(
        catalog,
        `models:\n  - id: s\n    engine: llama-server\n    path: ${join(MODELS_DIR!, 'stories260K.gguf')}\n    contextSize: 256\n    parallel: 1\n    gpu: cpu\n    threads: 1\n`,
      );
      const opsPort = await findFreePort();
      const worker = spawn(process.execPath, [MAIN], {
        env: {
          ...process.env,
          AIRLOCK_MODELS_FILE: catalog,
          AIRLOCK_DATA_DIR: dir,
          AIRLOCK_GRPC_PORT: String(await findFreePort()),
          AIRLOCK_OPS_PORT: String(opsPort),
          AIRLOCK_INTERNAL_PLAINTEXT: 'true',
          AIRLOCK_LLAMA_SERVER_BIN: LLAMA_SERVER_BIN,
        },
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      try {
        await eventually(
          async () => expect((await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status).toBe(200),
          60_000,
        );
        const children = readFileSync(`/proc/${worker.pid}/task/${worker.pid}/children`, 'utf8')
          .trim()
          .split(/\s+/)
          .map(Number);
        const server = children.find((pid) =>
          readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('llama-server'),
        );
        expect(server).toBeDefined();
        worker.kill('SIGKILL');
        await eventually(
          () =>
            Promise.resolve(
              expect(
                existsSync(`/proc/${server}`) &&
                  !readFileSync(`/proc/${server}/stat`, 'utf8').includes(') Z '),
              ).toBe(false),
            ),
          10_000,
        );
      } finally {
        if (worker.exitCode === null) worker.kill('SIGKILL');
      }
    });
  },
);
