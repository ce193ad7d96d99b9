import { join } from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  status,
  type ChannelCredentials,
  type Client,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { CompleteRequest, EmbedResponse, TokenizeResponse } from '@airlock/contracts';
import { schemaLimitProblem } from '../../gateway/src/openai/schema-limits.js';
import type { ModelRunner } from '../src/engine/model-runner.js';
import {
  MODELS_DIR,
  describeWithModels,
  firstEvent,
  grpcCode,
  grpcReason,
  startTestWorker,
  type StartedWorker,
} from './worker-harness.js';

// The greedy continuation that /work/shared/models/README.md records for node-llama-cpp 3.22.1 on CPU.
const GREEDY_ONCE_UPON_A_TIME = ', there was a little girl named Lily. She loved to play outside in the p';

describeWithModels('worker inference over gRPC (real node-llama-cpp, stories260K)', () => {
  let worker: StartedWorker;

  beforeAll(async () => {
    const stories = join(MODELS_DIR!, 'stories260K.gguf');
    const chat = join(MODELS_DIR!, 'stories260K-chat.gguf');
    worker = await startTestWorker(`
models:
  - id: stories
    path: ${stories}
    contextSize: 512
    parallel: 4
    queueSize: 8
    gpu: cpu
    threads: 1
    embeddings: true
  - id: stories-chat
    path: ${chat}
    sha256: 98234cb2bfd666ea2460cb4418428b56f59313b5610130f3d43fd92b487b7da0
    contextSize: 2048
    parallel: 2
    gpu: cpu
    threads: 1
`);
  });

  afterAll(() => worker?.close());

  it('completes "Once upon a time" greedily with exactly the recorded text, streamed token by token', async () => {
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
    expect(tokenized.count).toBe(tokenized.tokens.length);
    // The prompt plus the BOS token the model prepends.
    expect(result.finish?.usage.promptTokens).toBe(tokenized.count + 1);
  });

  it('reports a repeated prompt prefix as cached tokens', async () => {
    const request = {
      model: 'stories',
      prompt: 'Once upon a time there was a dog',
      sampling: { temperature: 0, maxTokens: 4 },
    };
    // Four sequences: run it often enough that one sequence sees it twice.
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await worker.client.complete(request));
    expect(Math.max(...results.map((r) => r.finish!.usage.cachedTokens))).toBeGreaterThan(0);
    for (const result of results) expect(result.text).toBe(results[0].text);
  });

  it('stops at a stop sequence with finish reason stop', async () => {
    const result = await worker.client.complete({
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 24, stop: ['Lily'] },
    });
    // The stop text itself is never emitted (node-llama-cpp drops the whole token " Lily", space included).
    expect(result.text.trimEnd()).toBe(', there was a little girl named');
    expect(result.finish?.finishReason).toBe('FINISH_REASON_STOP');
  });

  it('streams a chat answer through the model’s own chat template', async () => {
    const status = await worker.client.modelStatus('stories-chat');
    expect(status.chatFormat).toBe('JinjaTemplate');
    const result = await worker.client.chat({
      model: 'stories-chat',
      messages: [
        { role: 'CHAT_ROLE_SYSTEM', content: 'You tell short stories.' },
        { role: 'CHAT_ROLE_USER', content: 'Tell me about a cat.' },
      ],
      sampling: { temperature: 0, maxTokens: 16 },
    });
    expect(result.text.length).toBeGreaterThan(0);
    expect(result.finish?.finishReason).toBe('FINISH_REASON_LENGTH');
    expect(result.finish?.usage.completionTokens).toBe(16);
    expect(result.finish?.usage.promptTokens).toBeGreaterThan(10);
    // Seeded sampling is repeatable.
    const again = await worker.client.chat({
      model: 'stories-chat',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Tell me about a cat.' }],
      sampling: { temperature: 0.9, seed: 42, maxTokens: 12 },
    });
    const againToo = await worker.client.chat({
      model: 'stories-chat',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Tell me about a cat.' }],
      sampling: { temperature: 0.9, seed: 42, maxTokens: 12 },
    });
    expect(again.text.length).toBeGreaterThan(0);
    expect(again.text).toBe(againToo.text);
  });

  it('constrains output to a JSON schema', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer' } },
      required: ['name', 'age'],
    };
    const result = await worker.client.chat({
      model: 'stories-chat',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Describe a girl as JSON.' }],
      sampling: { temperature: 0, maxTokens: 200, jsonSchema: JSON.stringify(schema) },
    });
    const parsed = JSON.parse(result.text) as { name: unknown; age: unknown };
    expect(typeof parsed.name).toBe('string');
    expect(Number.isInteger(parsed.age)).toBe(true);
  });

  it('returns a forced tool call with arguments that match the tool’s schema', async () => {
    const result = await worker.client.chat({
      model: 'stories-chat',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'What is the weather in Paris?' }],
      tools: [
        {
          name: 'get_weather',
          description: 'Current weather of a city',
          parametersJsonSchema: JSON.stringify({
            type: 'object',
            properties: { city: { type: 'string' } },
            required: ['city'],
          }),
        },
      ],
      toolChoiceFunction: 'get_weather',
      sampling: { temperature: 0, maxTokens: 60 },
    });
    const calls = result.events.filter((e) => e.event === 'toolCall');
    expect(calls).toHaveLength(1);
    const call = calls[0].event === 'toolCall' ? calls[0].toolCall : undefined;
    expect(call?.name).toBe('get_weather');
    expect(call?.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(typeof (JSON.parse(call!.argumentsJson) as { city: unknown }).city).toBe('string');
    expect(result.finish?.finishReason).toBe('FINISH_REASON_TOOL_CALLS');
    expect(result.text).toBe('');
  });

  it('accepts a conversation with an earlier tool call and its result', async () => {
    const result = await worker.client.chat({
      model: 'stories-chat',
      messages: [
        { role: 'CHAT_ROLE_USER', content: 'Weather in Paris?' },
        {
          role: 'CHAT_ROLE_ASSISTANT',
          content: '',
          toolCalls: [{ id: 'call_1', name: 'get_weather', argumentsJson: '{"city":"Paris"}' }],
        },
        { role: 'CHAT_ROLE_TOOL', toolCallId: 'call_1', content: '{"celsius":21}' },
      ],
      tools: [
        {
          name: 'get_weather',
          parametersJsonSchema: '{"type":"object","properties":{"city":{"type":"string"}}}',
        },
      ],
      sampling: { temperature: 0, maxTokens: 8 },
    });
    expect(result.finish).toBeDefined();
  });

  it('embeds a batch of inputs on the embedding context', async () => {
    const response = await worker.client.unary<EmbedResponse>('embed', {
      model: 'stories',
      inputs: ['a cat sat', 'the dog ran far away', 'a cat sat'],
    });
    expect(response.embeddings).toHaveLength(3);
    for (const e of response.embeddings) expect(e.values).toHaveLength(64);
    expect(response.embeddings[0].values).toEqual(response.embeddings[2].values);
    expect(response.embeddings[0].values).not.toEqual(response.embeddings[1].values);
    expect(response.promptTokens).toBeGreaterThan(6);
  });

  it('runs 4 sequences at once on one context', async () => {
    const streams = [0, 1, 2, 3].map((i) =>
      worker.client.open('complete', {
        model: 'stories',
        prompt: `Once upon a time ${i}`,
        sampling: { temperature: 0, maxTokens: 400 },
      }),
    );
    const results = streams.map((s) => worker.client.collect(s));
    await Promise.all(streams.map((s) => firstEvent(s)));
    const during = await worker.client.modelStatus('stories');
    expect(during.slotsTotal).toBe(4);
    expect(during.slotsBusy).toBe(4);
    expect(during.queueLength).toBe(0);
    expect(during.kvCacheUsedTokens).toBeGreaterThan(0);
    expect(during.kvCacheUtilization).toBeGreaterThan(0);
    const finished = await Promise.all(results);
    for (const r of finished) expect(r.finish?.usage.completionTokens).toBeGreaterThan(0);
    const after = await worker.client.modelStatus('stories');
    expect(after.slotsBusy).toBe(0);
    expect(after.tokensPerSecond).toBeGreaterThan(0);
  });

  it('answers grpc.health.v1 and the ops endpoints', async () => {
    const health = loadPackageDefinition(
      loadSync(healthProtoPath, { keepCase: true, enums: String }),
    ) as unknown as {
      grpc: {
        health: {
          v1: {
            Health: new (address: string, creds: ChannelCredentials) => Client & Record<string, unknown>;
          };
        };
      };
    };
    const healthClient = new health.grpc.health.v1.Health(
      `127.0.0.1:${worker.app.grpcPort}`,
      credentials.createInsecure(),
    );
    const check = (service: string) =>
      new Promise<{ status: string }>((resolve, reject) =>
        (
          healthClient.Check as (req: object, cb: (e: Error | null, r: { status: string }) => void) => void
        ).call(healthClient, { service }, (error, response) => (error ? reject(error) : resolve(response))),
      );
    expect((await check('')).status).toBe('SERVING');
    expect((await check('airlock.worker.v1.WorkerService')).status).toBe('SERVING');
    healthClient.close();

    const ready = await fetch(`http://127.0.0.1:${worker.app.opsPort}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${worker.app.opsPort}/metrics`)).text();
    for (const name of [
      'airlock_worker_queued_requests{model="stories"}',
      'airlock_worker_running_requests{model="stories"}',
      'airlock_worker_kv_cache_utilization{model="stories"}',
      'airlock_worker_time_to_first_token_seconds_bucket',
      'airlock_worker_time_per_output_token_seconds_bucket',
      'airlock_worker_generated_tokens_total{model="stories"}',
      'airlock_worker_model_load_seconds{model="stories"}',
    ]) {
      expect(metrics).toContain(name);
    }
  });

  it('refuses a 3.5 MB prompt (about what a 4 MB body carries; the gRPC message limit is 4 MB) after tokenizing one slice, not all of it (work counted in slices)', async () => {
    const runner = worker.app.fleet.runnerFor('stories') as ModelRunner;
    const before = runner.tokenizeSlices;
    const huge = 'Once upon a time there was a story. '.repeat(Math.ceil((3.5 * 1024 * 1024) / 36));
    for (const call of [
      () => worker.client.complete({ model: 'stories', prompt: huge, sampling: { maxTokens: 1 } }),
      () =>
        worker.client.chat({
          model: 'stories-chat',
          messages: [{ role: 'CHAT_ROLE_USER', content: huge }],
          sampling: { maxTokens: 1 },
        }),
    ]) {
      await expect(call()).rejects.toMatchObject({ code: status.OUT_OF_RANGE });
    }
    const chatRunner = worker.app.fleet.runnerFor('stories-chat') as ModelRunner;
    // 3.5 MB is 224 slices of 16 Ki characters; one slice already exceeds a 512- or 2048-token context.
    expect(runner.tokenizeSlices - before).toBe(1);
    expect(chatRunner.tokenizeSlices).toBeLessThanOrEqual(1);
    // And the worker still answers.
    expect(
      (await worker.client.complete({ model: 'stories', prompt: 'Once', sampling: { maxTokens: 2 } })).finish,
    ).toBeDefined();
  });

  it('keeps streaming another model’s tokens while a request compiles the largest accepted schema or sends a 3 MB prompt, and compiles a repeated schema once (counted in tokens, turns and compiles)', async () => {
    const runner = worker.app.fleet.runnerFor('stories') as ModelRunner;
    const schema = largestAcceptedSchema();
    expect(schemaLimitProblem(schema)).toBeUndefined();
    const schemaText = JSON.stringify(schema);
    const huge = 'Once upon a time there was a story. '.repeat(Math.ceil((3 * 1024 * 1024) / 36));

    // A: a long generation on the other model, counted token event by token event.
    let aTokens = 0;
    const a = worker.client.open('chat', {
      model: 'stories-chat',
      messages: [{ role: 'CHAT_ROLE_USER', content: 'Tell me a long story.' }],
      sampling: { temperature: 1, seed: 7, maxTokens: 1500 },
    });
    a.on('data', (event) => {
      if (event.event === 'textDelta') aTokens += 1;
    });
    const aDone = worker.client.collect(a);
    while (aTokens < 3) await new Promise<void>((resolve) => setImmediate(resolve));

    /** A's token events and this process's event-loop turns from B's submission to B's first event. */
    const during = async (start: () => Promise<unknown>) => {
      let turns = 0;
      let ticking = true;
      const tick = () => {
        turns += 1;
        if (ticking) setImmediate(tick);
      };
      const aBefore = aTokens;
      setImmediate(tick);
      await start().catch((error: unknown) => error);
      ticking = false;
      return { aTokens: aTokens - aBefore, turns };
    };
    const compiledBefore = runner.grammarsCompiled;
    const firstOf = (request: CompleteRequest) => firstEvent(worker.client.open('complete', request));
    const schemaRequest = {
      model: 'stories',
      prompt: 'Once upon a time',
      sampling: { temperature: 0, maxTokens: 4, jsonSchema: schemaText },
    };
    const b = await during(() => firstOf(schemaRequest));
    const repeat = await during(() => firstOf(schemaRequest));
    const prompt = await during(() =>
      firstOf({ model: 'stories', prompt: huge, sampling: { maxTokens: 1 } }),
    );
    // A's tokens kept arriving, over many loop turns, while B was prepared (measured: 2 tokens / 6 turns per
    // schema request, 18 tokens / 154 turns for the 3 MB prompt); a loop blocked for the whole of B's
    // preparation would deliver none before B's first event.
    for (const window of [b, repeat, prompt]) {
      expect(window.aTokens).toBeGreaterThanOrEqual(1);
      expect(window.turns).toBeGreaterThanOrEqual(2);
    }
    // The repeated schema cost a digest lookup, not a second compile.
    expect(runner.grammarsCompiled - compiledBefore).toBe(1);
    // Per tenant, like the prompt cache: another tenant's identical schema compiles anew (a hit would tell it
    // which schema someone else sent), and that tenant's repeat is a hit again.
    await firstOf({ ...schemaRequest, tenant: 'another-tenant' });
    await firstOf({ ...schemaRequest, tenant: 'another-tenant' });
    expect(runner.grammarsCompiled - compiledBefore).toBe(2);
    a.cancel();
    await aDone.catch(() => undefined);
  });

  describe('bad input gets a clear error and the worker keeps serving', () => {
    const cases: [string, () => Promise<unknown>, status, string, RegExp][] = [
      [
        'unknown model',
        () => worker.client.complete({ model: 'nope', prompt: 'x' }),
        status.NOT_FOUND,
        'MODEL_NOT_FOUND',
        /"nope"/,
      ],
      [
        'temperature out of range',
        () => worker.client.complete({ model: 'stories', prompt: 'x', sampling: { temperature: 7 } }),
        status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /temperature must be between 0 and 2/,
      ],
      [
        'top_p out of range',
        () => worker.client.complete({ model: 'stories', prompt: 'x', sampling: { topP: 1.5 } }),
        status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /top_p/,
      ],
      [
        'prompt longer than the context',
        () => worker.client.complete({ model: 'stories', prompt: 'story '.repeat(600) }),
        status.OUT_OF_RANGE,
        'CONTEXT_LENGTH_EXCEEDED',
        /context of 512 tokens/,
      ],
      [
        'max_tokens beyond the context',
        () => worker.client.complete({ model: 'stories', prompt: 'Once', sampling: { maxTokens: 5000 } }),
        status.OUT_OF_RANGE,
        'CONTEXT_LENGTH_EXCEEDED',
        /needs \d+ tokens/,
      ],
      [
        'embeddings from a model that does not serve them',
        () => worker.client.unary('embed', { model: 'stories-chat', inputs: ['x'] }),
        status.FAILED_PRECONDITION,
        'EMBEDDINGS_NOT_SERVED',
        /does not serve embeddings/,
      ],
      [
        'empty embedding input',
        () => worker.client.unary('embed', { model: 'stories', inputs: [] }),
        status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /at least one/,
      ],
      [
        'tool result without a call',
        () =>
          worker.client.chat({
            model: 'stories-chat',
            messages: [{ role: 'CHAT_ROLE_TOOL', toolCallId: 'call_x', content: '1' }],
          }),
        status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /call_x/,
      ],
      [
        'invalid JSON schema',
        () =>
          worker.client.chat({
            model: 'stories-chat',
            messages: [{ role: 'CHAT_ROLE_USER', content: 'hi' }],
            sampling: { jsonSchema: '{not json' },
          }),
        status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /json_schema is not valid JSON/,
      ],
      [
        'reasoning effort on a model without it',
        () =>
          worker.client.chat({
            model: 'stories-chat',
            messages: [{ role: 'CHAT_ROLE_USER', content: 'hi' }],
            reasoningEffort: 'REASONING_EFFORT_HIGH',
          }),
        status.INVALID_ARGUMENT,
        'INVALID_ARGUMENT',
        /reasoning effort/,
      ],
    ];

    it.each(cases)('%s', async (_name, call, code, reason, message) => {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(grpcCode(error)).toBe(code);
      expect(grpcReason(error)).toBe(reason);
      expect((error as Error).message).toMatch(message);
      // Still serving afterwards.
      const ok = await worker.client.complete({
        model: 'stories',
        prompt: 'Once',
        sampling: { maxTokens: 2 },
      });
      expect(ok.finish?.usage.completionTokens).toBe(2);
    });
  });

  it('never writes prompt or completion text into its log', async () => {
    const secret = 'Zebrapassphrase horse battery';
    const result = await worker.client.complete({
      model: 'stories',
      prompt: secret,
      sampling: { temperature: 0, maxTokens: 8 },
    });
    expect(worker.log.text).toContain('model loaded');
    expect(worker.log.text).not.toContain('Zebrapassphrase');
    expect(worker.log.text).not.toContain(result.text.trim());
  });
});

/**
 * A schema at every limit the gateway enforces at once: 512 enum values, nesting 16 deep through a $ref
 * into #/$defs/, repetition bounds of 256, just under 32 KiB.
 */
function largestAcceptedSchema(): Record<string, unknown> {
  const values = (group: number) =>
    Array.from({ length: 64 }, (_, index) => `value-${group}-${index}-${'x'.repeat(28)}`);
  const properties: Record<string, unknown> = {};
  for (let group = 0; group < 8; group += 1) properties[`choice${group}`] = { enum: values(group) };
  let nested: Record<string, unknown> = { type: 'string', maxLength: 256 };
  for (let depth = 0; depth < 6; depth += 1) {
    nested = {
      type: 'object',
      properties: { inner: nested, count: { type: 'integer' } },
      required: ['inner'],
    };
  }
  properties.items = { type: 'array', maxItems: 256, items: { $ref: '#/$defs/nested' } };
  return { type: 'object', properties, required: Object.keys(properties), $defs: { nested } };
}
