// End to end: the real auth-audit (PGlite), the real worker (node-llama-cpp on stories260K) and the gateway,
// driven with the official `openai` npm client.
import OpenAI from 'openai';
import { MODEL, Platform, describeWithModels } from './platform.js';

const STORY = ', there was a little girl named Lily. She loved to play outside in the p';

const WEATHER_TOOL: OpenAI.Chat.Completions.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

/** `12s` → 12: the reset headers are whole seconds, as OpenAI writes them. */
function resetSeconds(value: string | null): number {
  expect(value).toMatch(/^\d+s$/);
  return Number(value!.slice(0, -1));
}

describeWithModels('OpenAI API through the gateway (PGlite)', () => {
  const platform = new Platform({ database: 'pglite' });
  let client: OpenAI;

  beforeAll(async () => {
    await platform.start();
    client = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: await platform.createKey(), maxRetries: 0 });
  }, 180_000);
  afterAll(() => platform.close(), 60_000);

  it('lists and gets models', async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain(MODEL);
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
  });

  it('completes text greedily, streamed and not, with audit records that carry the token counts', async () => {
    const { data, request_id } = await client.completions
      .create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 24, temperature: 0 })
      .withResponse();
    expect(data.choices[0].text).toBe(STORY);
    expect(data.usage?.completion_tokens).toBe(24);
    const stream = await client.completions.create({
      model: MODEL,
      prompt: 'Once upon a time',
      max_tokens: 24,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(STORY);
    expect(usage?.completion_tokens).toBe(24);

    const records = await platform.auditRecords(request_id!);
    const completion = records.find((r) => r.kind === 'completion');
    expect(completion).toMatchObject({
      outcome: 'succeeded',
      status_code: 200,
      model: MODEL,
      prompt_tokens: data.usage?.prompt_tokens,
      completion_tokens: 24,
    });
  });

  it('chats, streamed (with usage) and not, giving the same greedy answer', async () => {
    const request = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Hi' }],
      max_tokens: 16,
      temperature: 0,
    };
    const whole = await client.chat.completions.create(request);
    expect(whole.choices[0].message.content?.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(whole.choices[0].message.content);
    expect(chunks).toBeGreaterThan(3);
    expect(usage).toEqual(whole.usage);
  });

  it('embeds as floats and as base64 (the SDK default)', async () => {
    const base64 = await client.embeddings.create({ model: MODEL, input: ['hello', 'world'] });
    expect(base64.data).toHaveLength(2);
    expect(base64.data[0].embedding).toHaveLength(64);
    const floats = await client.embeddings.create({ model: MODEL, input: 'hello', encoding_format: 'float' });
    expect(floats.data[0].embedding[0]).toBeCloseTo(base64.data[0].embedding[0], 5);
  });

  it('calls a forced tool with JSON arguments', async () => {
    const answer = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Weather in Paris?' }],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 64,
      temperature: 0,
    });
    const call = answer.choices[0].message.tool_calls?.[0];
    expect(answer.choices[0].finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    expect(typeof JSON.parse(call?.type === 'function' ? call.function.arguments : '{}').city).toBe('string');
  });

  it('streams a forced tool call as tool_calls deltas ending in finish_reason tool_calls', async () => {
    const request = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Weather in Paris?' }],
      tools: [WEATHER_TOOL],
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
      max_tokens: 64,
      temperature: 0,
    };
    const whole = await client.chat.completions.create(request);
    const wholeCall = whole.choices[0].message.tool_calls?.[0];
    const stream = await client.chat.completions.create({ ...request, stream: true });
    const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    const finishes: (string | null)[] = [];
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        deltas.push(...(choice.delta.tool_calls ?? []));
        if (choice.finish_reason) finishes.push(choice.finish_reason);
      }
    }
    expect(finishes).toEqual(['tool_calls']);
    expect(deltas.length).toBeGreaterThan(0);
    expect(deltas[0]).toMatchObject({
      index: 0,
      id: expect.stringMatching(/\S/),
      type: 'function',
      function: { name: 'get_weather' },
    });
    expect(new Set(deltas.map((d) => d.index))).toEqual(new Set([0]));
    const streamedArguments = deltas.map((d) => d.function?.arguments ?? '').join('');
    // Greedy: the same call as the non-streamed answer, argument for argument.
    expect(JSON.parse(streamedArguments)).toEqual(
      JSON.parse(wholeCall?.type === 'function' ? wholeCall.function.arguments : 'null'),
    );
    // The SDK's own accumulator rebuilds the call from the deltas.
    const final = await client.chat.completions.stream(request).finalChatCompletion();
    expect(final.choices[0].finish_reason).toBe('tool_calls');
    expect(final.choices[0].message.tool_calls?.[0]).toMatchObject({
      type: 'function',
      function: { name: 'get_weather', arguments: streamedArguments },
    });
  });

  it('answers n choices and counts the prompt once in usage (and in the audit record), as OpenAI does', async () => {
    const request = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Hi' }],
      max_tokens: 8,
      temperature: 0,
    };
    const single = await client.chat.completions.create(request);
    const { prompt_tokens: prompt, completion_tokens: generated } = single.usage!;
    const { data: multi, request_id } = await client.chat.completions
      .create({ ...request, n: 3 })
      .withResponse();
    expect(multi.choices.map((c) => [c.index, c.message.content, c.finish_reason])).toEqual(
      [0, 1, 2].map((i) => [i, single.choices[0].message.content, single.choices[0].finish_reason]),
    );
    expect(multi.usage).toMatchObject({
      prompt_tokens: prompt,
      completion_tokens: 3 * generated,
      total_tokens: prompt + 3 * generated,
    });
    const completion = (await platform.auditRecords(request_id!)).find((r) => r.kind === 'completion');
    expect(completion).toMatchObject({ prompt_tokens: prompt, completion_tokens: 3 * generated });

    const stream = await client.chat.completions.create({
      ...request,
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ['', ''];
    const finishes: (string | null)[] = [null, null];
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        texts[choice.index] += choice.delta.content ?? '';
        finishes[choice.index] = choice.finish_reason ?? finishes[choice.index];
      }
      usage = chunk.usage ?? usage;
    }
    expect(texts).toEqual([single.choices[0].message.content, single.choices[0].message.content]);
    expect(finishes).toEqual([single.choices[0].finish_reason, single.choices[0].finish_reason]);
    expect(usage).toMatchObject({ prompt_tokens: prompt, completion_tokens: 2 * generated });

    // Legacy completions: two prompts x n = 2 → four choices, each prompt counted once.
    const once = { model: MODEL, max_tokens: 4, temperature: 0 };
    const a = await client.completions.create({ ...once, prompt: 'Once upon a time' });
    const b = await client.completions.create({ ...once, prompt: 'Hi' });
    const both = await client.completions.create({ ...once, prompt: ['Once upon a time', 'Hi'], n: 2 });
    expect(both.choices.map((c) => [c.index, c.text])).toEqual([
      [0, a.choices[0].text],
      [1, a.choices[0].text],
      [2, b.choices[0].text],
      [3, b.choices[0].text],
    ]);
    expect(both.usage).toMatchObject({
      prompt_tokens: a.usage!.prompt_tokens + b.usage!.prompt_tokens,
      completion_tokens: 2 * (a.usage!.completion_tokens + b.usage!.completion_tokens),
    });
  });

  it('constrains output to a JSON schema', async () => {
    const answer = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Name a girl.' }],
      response_format: {
        type: 'json_schema',
        json_schema: {
          name: 'person',
          schema: {
            type: 'object',
            properties: { name: { type: 'string', maxLength: 12 } },
            required: ['name'],
          },
        },
      },
      max_tokens: 64,
      temperature: 0,
    });
    expect(typeof JSON.parse(answer.choices[0].message.content ?? '').name).toBe('string');
  });

  it('maps every error class to the SDK error type', async () => {
    const badKey = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: 'alk_nosuchkey_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      maxRetries: 0,
    });
    await expect(badKey.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const otherModel = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: await platform.createKey({ allowed_models: ['other-model'] }),
      maxRetries: 0,
    });
    const chat = { model: MODEL, messages: [{ role: 'user' as const, content: 'x' }], max_tokens: 2 };
    await expect(otherModel.chat.completions.create(chat)).rejects.toBeInstanceOf(
      OpenAI.PermissionDeniedError,
    );
    await expect(client.chat.completions.create({ ...chat, model: 'no-such-model' })).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    const unsupported = await client.chat.completions
      .create({ ...chat, prediction: { type: 'content', content: 'x' } })
      .catch((e: unknown) => e);
    expect(unsupported).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unsupported as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('prediction');
    const limited = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: await platform.createKey({ requests_per_minute: 1 }),
      maxRetries: 0,
    });
    await limited.chat.completions.create(chat);
    let refused = await limited.chat.completions.create(chat).catch((e: unknown) => e);
    // Quotas count per calendar minute: had a new minute begun in between, the next one is refused.
    if (!(refused instanceof OpenAI.RateLimitError))
      refused = await limited.chat.completions.create(chat).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    expect(
      Number((refused as InstanceType<typeof OpenAI.RateLimitError>).headers?.get('retry-after')),
    ).toBeGreaterThan(0);
    const tooBig = await fetch(`${platform.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${platform.adminKey}` },
      body: JSON.stringify({ ...chat, messages: [{ role: 'user', content: 'a'.repeat(5 * 1024 * 1024) }] }),
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.headers.get('x-request-id')).toBeTruthy();
    expect(((await tooBig.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
  });

  it('cancels through AbortController: the worker frees the slot and the audit says cancelled', async () => {
    const abort = new AbortController();
    const { data: stream, request_id } = await client.chat.completions
      .create(
        { model: MODEL, messages: [{ role: 'user', content: 'Once' }], max_tokens: 1500, stream: true },
        { signal: abort.signal },
      )
      .withResponse();
    // The SDK ends the iteration quietly when its signal aborts.
    let seen = 0;
    for await (const chunk of stream) if (chunk && ++seen === 3) abort.abort();
    expect(seen).toBe(3);
    await platform.until(() => platform.gateway.pool.list()[0].status?.models[0].slotsBusy === 0);
    const completion = (await platform.auditRecords(request_id!)).find((r) => r.kind === 'completion');
    expect(completion.outcome).toBe('cancelled');
    expect(completion.completion_tokens).toBeGreaterThanOrEqual(2);
  });

  it('returns 429 with Retry-After when the queue is full, streamed or not, and the SDK retries it', async () => {
    // A gateway with no wait queue, and the worker frozen (SIGSTOP) so that the 8 in-flight places
    // (4 slots x 2) stay taken however fast the machine is; it polls worker status rarely, so the frozen
    // worker stays chosen.
    const gateway = await platform.startGateway({ queueCapacity: 0, workerStatusIntervalMs: 60_000 });
    const sdk = (maxRetries: number) =>
      new OpenAI({ baseURL: `http://127.0.0.1:${gateway.port}/v1`, apiKey: platform.adminKey, maxRetries });
    const refusals = async () =>
      (await gateway.metrics.requests.get()).values
        .filter((v) => v.labels.status === '429')
        .reduce((total, v) => total + v.value, 0);
    const abort = new AbortController();
    const long = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Once' }],
      max_tokens: 64,
      stream: true as const,
    };
    let answer: Promise<OpenAI.Chat.Completions.ChatCompletion> | undefined;
    platform.pauseWorker();
    try {
      const held = Array.from({ length: 8 }, () =>
        sdk(0)
          .chat.completions.create(long, { signal: abort.signal })
          .then(async (stream) => {
            for await (const chunk of stream) void chunk;
          })
          .catch(() => undefined),
      );
      await platform.until(() => gateway.pool.list()[0].inFlight.get(MODEL) === 8);
      // A stream is refused with a real 429 before any event, not an empty 200.
      const refused = await sdk(0)
        .chat.completions.create(long)
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
      const rateLimited = refused as InstanceType<typeof OpenAI.RateLimitError>;
      expect(Number(rateLimited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(rateLimited.code).toBe('queue_full');
      answer = sdk(3).chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: 'x' }],
        max_tokens: 2,
      });
      await platform.until(async () => (await refusals()) >= 2); // the retrying request was refused once
      abort.abort();
      await Promise.all(held);
    } finally {
      platform.resumeWorker();
    }
    expect((await answer).choices).toHaveLength(1);
    // The suite's own gateway may have taken the frozen worker out; it is probed back in.
    await platform.until(() => platform.gateway.pool.list()[0].alive);
  });

  it('sends x-ratelimit-* headers with the quota left, and Retry-After with them on a 429', async () => {
    const limit = { requests: 3, tokens: 100_000 };
    const limited = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: await platform.createKey({
        requests_per_minute: limit.requests,
        tokens_per_minute: limit.tokens,
      }),
      maxRetries: 0,
    });
    const chat = { model: MODEL, messages: [{ role: 'user' as const, content: 'x' }], max_tokens: 2 };
    const first = await limited.chat.completions.create(chat).withResponse();
    const h1 = first.response.headers;
    expect(h1.get('x-ratelimit-limit-requests')).toBe(String(limit.requests));
    expect(h1.get('x-ratelimit-remaining-requests')).toBe(String(limit.requests - 1));
    expect(h1.get('x-ratelimit-limit-tokens')).toBe(String(limit.tokens));
    // Admission reserves an estimate (prompt bytes / 4 + max_tokens) that the completion then settles to the real count.
    const reserved = limit.tokens - Number(h1.get('x-ratelimit-remaining-tokens'));
    expect(reserved).toBeGreaterThan(chat.max_tokens);
    expect(reserved).toBeLessThan(1_000);
    const reset1 = resetSeconds(h1.get('x-ratelimit-reset-requests'));
    expect(reset1).toBeGreaterThanOrEqual(1);
    expect(reset1).toBeLessThanOrEqual(60);
    expect(resetSeconds(h1.get('x-ratelimit-reset-tokens'))).toBe(reset1);

    await platform.auditRecords(first.request_id!); // its completion (and token charge) is committed
    const used = first.data.usage!.total_tokens;
    const h2 = (await limited.chat.completions.create(chat).withResponse()).response.headers;
    // Quotas are per calendar minute: a later reset than before means a new window began in between.
    if (resetSeconds(h2.get('x-ratelimit-reset-requests')) <= reset1) {
      expect(h2.get('x-ratelimit-remaining-requests')).toBe(String(limit.requests - 2));
      // The first request settled at what it used; the second, the same body, holds the same reservation.
      expect(h2.get('x-ratelimit-remaining-tokens')).toBe(String(limit.tokens - used - reserved));
    } else {
      expect(h2.get('x-ratelimit-remaining-requests')).toBe(String(limit.requests - 1));
    }

    // Spend the rest of the window: the refusal is a 429 the SDK maps, with Retry-After up to the reset.
    let refused: unknown = null;
    for (let i = 0; i < 2 * limit.requests + 2 && !refused; i++) {
      refused = await limited.chat.completions.create(chat).then(
        () => null,
        (e: unknown) => e,
      );
    }
    expect(refused).toBeInstanceOf(OpenAI.RateLimitError);
    const headers = (refused as InstanceType<typeof OpenAI.RateLimitError>).headers;
    const retryAfter = Number(headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(headers.get('x-ratelimit-remaining-requests')).toBe('0');
    expect(resetSeconds(headers.get('x-ratelimit-reset-requests'))).toBe(retryAfter);
    expect(headers.get('x-request-id')).toBeTruthy();
  });

  it('answers 504 when a request outlives its timeout or the worker stops producing tokens', async () => {
    // Deterministic on any machine: the worker process is frozen (SIGSTOP), so no token can arrive.
    // Each gateway polls worker status rarely, so the frozen worker stays chosen until the timer fires.
    const gatewayWith = async (timeouts: { requestTimeoutMs: number; idleTimeoutMs: number }) =>
      new OpenAI({
        baseURL: `http://127.0.0.1:${(await platform.startGateway({ ...timeouts, workerStatusIntervalMs: 60_000 })).port}/v1`,
        apiKey: platform.adminKey,
        maxRetries: 0,
      });
    const requestTimeout = await gatewayWith({ requestTimeoutMs: 300, idleTimeoutMs: 60_000 });
    const idleTimeout = await gatewayWith({ requestTimeoutMs: 60_000, idleTimeoutMs: 300 });
    const chat = { model: MODEL, messages: [{ role: 'user' as const, content: 'Once' }], max_tokens: 64 };
    platform.pauseWorker();
    let timedOut: unknown;
    let stalled: unknown;
    try {
      timedOut = await requestTimeout.chat.completions.create(chat).catch((e: unknown) => e);
      stalled = await idleTimeout.chat.completions.create({ ...chat, stream: true }).catch((e: unknown) => e);
    } finally {
      platform.resumeWorker();
    }
    for (const [error, code] of [
      [timedOut, 'timeout'],
      [stalled, 'idle_timeout'],
    ] as const) {
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      const apiError = error as InstanceType<typeof OpenAI.InternalServerError>;
      expect(apiError.status).toBe(504);
      expect(apiError.code).toBe(code);
      const completion = (await platform.auditRecords(apiError.requestID!)).find(
        (r) => r.kind === 'completion',
      );
      expect(completion).toMatchObject({ outcome: 'failed', status_code: 504, error_class: code });
    }
    // The main gateway may have taken the frozen worker out; it is probed back in.
    await platform.until(() => platform.gateway.pool.list()[0].alive);
  });

  it('answers a clear 501 to a scale request: static discovery has no Deployment to scale', async () => {
    const { status, json } = await platform.admin('PUT', `/models/${MODEL}/replicas`, { replicas: 2 });
    expect(status).toBe(501);
    expect(json.error).toMatchObject({
      type: 'invalid_request_error',
      code: 'scaling_unsupported',
      message: expect.stringContaining('AIRLOCK_DISCOVERY=kubernetes'),
    });
    const listed = await platform.admin('GET', '/models');
    expect((listed.json.data as { id: string; replicas: unknown }[])[0]).toMatchObject({
      id: MODEL,
      replicas: null,
    });
  });

  it('fails closed while auth-audit is down, and recovers when it is back', async () => {
    await platform.stopAuthAudit();
    const refused = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: 'user', content: 'x' }], max_tokens: 2 })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.InternalServerError);
    expect((refused as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(503);
    await platform.startAuthAudit();
    await platform.until(async () =>
      client.models.list().then(
        () => true,
        () => false,
      ),
    );
  });

  it('leaves an audit chain that verifies', async () => {
    const { status, json } = await platform.admin('POST', '/audit/verify', {});
    expect(status).toBe(200);
    expect(json.ok).toBe(true);
    expect(json.records_checked).toBeGreaterThan(10);
  });
});
