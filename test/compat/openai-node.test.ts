// The official OpenAI Node SDK against a running Airlock: every call is real and asserts on the answer.
import { join } from 'node:path';
import { jest } from '@jest/globals';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { getLlama } from 'node-llama-cpp';
import { z } from 'zod';
import type { Platform } from '../e2e/platform.js';
import { modelsDir } from '../e2e/platform.js';
import {
  CHAT_MODEL,
  GREEDY_ONCE,
  NO_EMBEDDINGS_MODEL,
  describeWithModels,
  norm,
  startCompatPlatform,
} from './compat-platform.js';

jest.setTimeout(120_000);

describeWithModels('OpenAI Node SDK against Airlock (stories260K-chat)', () => {
  let platform: Platform;
  let client: OpenAI;
  let calls = 0;
  const user = { role: 'user' as const, content: 'Tell me a story' };

  beforeAll(async () => {
    const started = await startCompatPlatform();
    platform = started.platform;
    client = new OpenAI({
      baseURL: started.baseURL,
      apiKey: started.apiKey,
      // Counts HTTP attempts, to tell a retried error from one that is not.
      fetch: (input, init) => {
        calls++;
        return fetch(input, init);
      },
    });
  });
  afterAll(() => platform?.close());

  it('answers without max_tokens: runs to a stop or the end of the context, no 400', async () => {
    const completion = await client.chat.completions.create({ model: CHAT_MODEL, messages: [user] });
    expect(['stop', 'length']).toContain(completion.choices[0].finish_reason);
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
    if (completion.choices[0].finish_reason === 'length') {
      // The end of the context: stories260K has 2048 tokens per sequence.
      expect(completion.usage!.total_tokens).toBe(2048);
    }
  });

  it('completes text greedily as the README says, with logprobs and echo', async () => {
    const plain = await client.completions.create({
      model: CHAT_MODEL,
      prompt: 'Once upon a time',
      max_tokens: 24,
      temperature: 0,
    });
    expect(plain.choices[0].text).toBe(GREEDY_ONCE);
    expect(plain.choices[0].logprobs).toBeNull();

    const scored = await client.completions.create({
      model: CHAT_MODEL,
      prompt: 'Once upon a time',
      max_tokens: 24,
      temperature: 0,
      logprobs: 2,
    });
    const logprobs = scored.choices[0].logprobs!;
    expect(scored.choices[0].text).toBe(GREEDY_ONCE);
    expect(logprobs.tokens!.join('')).toBe(GREEDY_ONCE);
    expect(logprobs.tokens).toHaveLength(24);
    for (const [i, lp] of logprobs.token_logprobs!.entries()) {
      expect(lp).toBeLessThanOrEqual(0);
      const top = Object.entries(logprobs.top_logprobs![i]);
      expect(top).toHaveLength(2);
      // Greedy: the chosen token is the most likely one.
      expect(Math.max(...top.map(([, value]) => value))).toBeCloseTo(lp, 4);
    }
    expect(logprobs.text_offset![1]).toBe(logprobs.tokens![0].length);

    const echoed = await client.completions.create({
      model: CHAT_MODEL,
      prompt: 'Once upon a time',
      max_tokens: 24,
      temperature: 0,
      echo: true,
    });
    expect(echoed.choices[0].text).toBe(`Once upon a time${GREEDY_ONCE}`);
  });

  it('reports chat logprobs, streamed and collected, that spell the answer', async () => {
    const request = { model: CHAT_MODEL, messages: [user], max_tokens: 12, temperature: 0 };
    const collected = await client.chat.completions.create({ ...request, logprobs: true, top_logprobs: 3 });
    const content = collected.choices[0].logprobs!.content!;
    expect(content.map((t) => t.token).join('')).toBe(collected.choices[0].message.content);
    expect(content.every((t) => t.top_logprobs.length === 3 && t.logprob <= 0)).toBe(true);
    expect(Buffer.from(content.flatMap((t) => t.bytes!)).toString('utf8')).toBe(
      collected.choices[0].message.content,
    );
    const plain = await client.chat.completions.create(request);
    expect(plain.choices[0].message.content).toBe(collected.choices[0].message.content);

    const stream = await client.chat.completions.create({ ...request, logprobs: true, stream: true });
    let text = '';
    const tokens: string[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      tokens.push(...(chunk.choices[0]?.logprobs?.content ?? []).map((t) => t.token));
    }
    expect(text).toBe(collected.choices[0].message.content);
    expect(tokens.join('')).toBe(text);
  });

  it('applies logit_bias through the engine', async () => {
    const llama = await getLlama({ build: 'never', gpu: false });
    const vocab = await llama.loadModel({
      modelPath: join(modelsDir(), `${CHAT_MODEL}.gguf`),
      vocabOnly: true,
    });
    const comma = vocab.tokenize(',', false, 'trimLeadingSpace');
    const dog = vocab.tokenize(' dog', false, 'trimLeadingSpace');
    const dogId = dog[dog.length - 1];
    const dogText = vocab.detokenize([dogId]).trim();
    await vocab.dispose();
    expect(comma).toHaveLength(1);
    const request = { model: CHAT_MODEL, prompt: 'Once upon a time', max_tokens: 4, temperature: 0 };
    const banned = await client.completions.create({ ...request, logit_bias: { [comma[0]]: -100 } });
    expect(banned.choices[0].text.startsWith(',')).toBe(false);
    const forced = await client.completions.create({
      ...request,
      max_tokens: 1,
      logit_bias: { [dogId]: 100 },
    });
    expect(dogText.length).toBeGreaterThan(0);
    expect(forced.choices[0].text.trim()).toBe(dogText);
  });

  it('gives every choice and every request its own seed', async () => {
    const sampled = { model: CHAT_MODEL, prompt: 'Once upon a time', max_tokens: 16, temperature: 1 };
    const four = await client.completions.create({ ...sampled, n: 4 });
    expect(new Set(four.choices.map((c) => c.text)).size).toBeGreaterThanOrEqual(3);
    const concurrent = await Promise.all(Array.from({ length: 4 }, () => client.completions.create(sampled)));
    expect(new Set(concurrent.map((r) => r.choices[0].text)).size).toBeGreaterThanOrEqual(3);
    const seeded = await client.completions.create({ ...sampled, n: 2, seed: 42 });
    const again = await client.completions.create({ ...sampled, n: 2, seed: 42 });
    expect(again.choices.map((c) => c.text)).toEqual(seeded.choices.map((c) => c.text));
    expect(seeded.choices[0].text).not.toBe(seeded.choices[1].text);
    const chat = await client.chat.completions.create({
      model: CHAT_MODEL,
      messages: [user],
      max_tokens: 16,
      temperature: 1,
      n: 4,
    });
    expect(new Set(chat.choices.map((c) => c.message.content)).size).toBeGreaterThanOrEqual(3);
  });

  it('returns unit-length embeddings, honours dimensions and token-array inputs', async () => {
    const whole = await client.embeddings.create({ model: CHAT_MODEL, input: ['hello', 'world'] });
    expect(whole.data).toHaveLength(2);
    for (const item of whole.data) expect(norm(item.embedding)).toBeCloseTo(1, 4);
    const short = await client.embeddings.create({ model: CHAT_MODEL, input: 'hello', dimensions: 16 });
    expect(short.data[0].embedding).toHaveLength(16);
    expect(norm(short.data[0].embedding)).toBeCloseTo(1, 4);
    const tooMany = await client.embeddings
      .create({ model: CHAT_MODEL, input: 'hello', dimensions: 65 })
      .catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooMany as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('dimensions');
    const one = await client.embeddings.create({ model: CHAT_MODEL, input: [15, 16, 17] });
    const many = await client.embeddings.create({ model: CHAT_MODEL, input: [[15, 16, 17], [18]] });
    expect(one.data).toHaveLength(1);
    expect(many.data).toHaveLength(2);
    expect(many.data[0].embedding[0]).toBeCloseTo(one.data[0].embedding[0], 5);
    expect(one.usage.prompt_tokens).toBe(3);
    const outside = await client.embeddings
      .create({ model: CHAT_MODEL, input: [99_999] })
      .catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('refuses embeddings on a model that does not embed with a 400 at once, not a retried 503', async () => {
    const before = calls;
    const error = await client.embeddings
      .create({ model: NO_EMBEDDINGS_MODEL, input: 'hello' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('model_does_not_embed');
    expect(calls - before).toBe(1);
  });

  it('streams OpenAI’s chunk details: usage null until the last, logprobs null, system_fingerprint', async () => {
    const stream = await client.chat.completions.create({
      model: CHAT_MODEL,
      messages: [user],
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true, include_obfuscation: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(8);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.usage).toBeNull();
      for (const choice of chunk.choices) expect(choice.logprobs).toBeNull();
    }
    expect(chunks.every((c) => typeof (c as { obfuscation?: string }).obfuscation === 'string')).toBe(true);
    const fingerprint = chunks[0].system_fingerprint;
    expect(fingerprint).toMatch(/^fp_[0-9a-f]{10}$/);
    expect(chunks.every((c) => c.system_fingerprint === fingerprint)).toBe(true);
    const collected = await client.chat.completions.create({
      model: CHAT_MODEL,
      messages: [user],
      max_tokens: 2,
    });
    expect(collected.system_fingerprint).toBe(fingerprint);
  });

  it('runs a tool loop that appends the SDK’s own returned messages, parse() and stream()', async () => {
    const tools = [
      {
        type: 'function' as const,
        function: {
          name: 'get_weather',
          description: 'Weather in a city',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string', maxLength: 12 } },
            required: ['city'],
            additionalProperties: false,
          },
        },
      },
    ];
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [user];
    const first = await client.chat.completions.create({
      model: CHAT_MODEL,
      messages,
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      parallel_tool_calls: false,
      max_tokens: 64,
    });
    const call = first.choices[0].message.tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(first.choices[0].message.tool_calls).toHaveLength(1);
    expect(typeof JSON.parse(call.function.arguments).city).toBe('string');
    messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: 'sunny' });
    const second = await client.chat.completions.create({ model: CHAT_MODEL, messages, max_tokens: 8 });
    expect(second.choices[0].message.content!.length).toBeGreaterThan(0);

    // parse(): the returned message carries `parsed` (and tool calls `parsed_arguments`), sent back as is.
    const Story = z.object({ title: z.string().max(20), happy: z.boolean() });
    const parsed = await client.chat.completions.parse({
      model: CHAT_MODEL,
      messages,
      response_format: zodResponseFormat(Story, 'story'),
      max_tokens: 64,
    });
    expect(Story.parse(parsed.choices[0].message.parsed)).toEqual(parsed.choices[0].message.parsed);
    messages.push(parsed.choices[0].message);

    // stream() + finalChatCompletion(): its message has `refusal`, and tool calls have `index`.
    const runner = client.chat.completions.stream({
      model: CHAT_MODEL,
      messages: [...messages, user],
      tools,
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 64,
    });
    const final = await runner.finalChatCompletion();
    const streamedCall = final.choices[0].message
      .tool_calls![0] as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    messages.push(final.choices[0].message, {
      role: 'tool',
      tool_call_id: streamedCall.id,
      content: 'rainy',
    });
    const third = await client.chat.completions.create({ model: CHAT_MODEL, messages, max_tokens: 4 });
    expect(third.choices[0].finish_reason).toBe('length');
  });

  it('accepts the parameters real apps send and records the end user', async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: CHAT_MODEL,
        messages: [user],
        max_tokens: 2,
        metadata: { feature: 'compat' },
        store: true,
        user: 'legacy-user',
        safety_identifier: 'user-7f3a',
        prompt_cache_key: 'conversation-1',
        reasoning_effort: 'none',
        parallel_tool_calls: false,
      })
      .withResponse();
    expect(data.choices[0].message.content!.length).toBeGreaterThan(0);
    const requestId = response.headers.get('x-request-id')!;
    const records = await platform.auditRecords(requestId);
    const request = records.find((r) => r.kind === 'request');
    expect(JSON.parse(String(request.details_json ?? request.detailsJson))).toEqual({
      end_user: 'user-7f3a',
    });
    // A reasoning level on a model without one cannot be honoured: refused by name.
    const minimal = await client.chat.completions
      .create({ model: CHAT_MODEL, messages: [user], max_tokens: 2, reasoning_effort: 'minimal' })
      .catch((e: unknown) => e);
    expect(minimal).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('raises the SDK’s error classes, and retries only what may succeed later', async () => {
    const before = calls;
    const bad = await client.chat.completions
      .create({ model: CHAT_MODEL, messages: [user], temperature: 5 })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    expect(calls - before).toBe(1);
    const missing = await client.chat.completions
      .create({ model: 'no-such-model', messages: [user], max_tokens: 2 })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    const limited = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: await platform.createKey({ requests_per_minute: 1 }),
      maxRetries: 0,
    });
    await limited.chat.completions.create({ model: CHAT_MODEL, messages: [user], max_tokens: 2 });
    const throttled = await limited.chat.completions
      .create({ model: CHAT_MODEL, messages: [user], max_tokens: 2 })
      .catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(OpenAI.RateLimitError);
    expect(
      Number((throttled as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')),
    ).toBeGreaterThan(0);
  });

  it('answers CORS preflights only for the allowlisted origins', async () => {
    const preflight = (url: string, origin: string) =>
      fetch(`${url}/v1/chat/completions`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, x-stainless-os',
        },
      });
    const off = await preflight(platform.url, 'http://app.test');
    expect(off.headers.get('access-control-allow-origin')).toBeNull();
    const gateway = await platform.startGateway({ corsOrigins: ['http://app.test'] });
    const url = `http://127.0.0.1:${gateway.port}`;
    const allowed = await preflight(url, 'http://app.test');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://app.test');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('x-stainless-os');
    const other = await preflight(url, 'http://evil.test');
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const browserLike = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: await platform.createKey({}),
      defaultHeaders: { origin: 'http://app.test' },
    });
    const { response } = await browserLike.models.list().withResponse();
    expect(response.headers.get('access-control-allow-origin')).toBe('http://app.test');
  });
});
