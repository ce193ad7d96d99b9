// End to end: the real auth-audit (PGlite), the real worker (node-llama-cpp on stories260K) and the gateway,
// driven with the official `openai` npm client.
import OpenAI from 'openai';
import { MODEL, Platform } from './platform.js';

const STORY = ', there was a little girl named Lily. She loved to play outside in the p';

describe('OpenAI API through the gateway (PGlite)', () => {
  const platform = new Platform({ database: 'pglite', gateway: { queueCapacity: 0 } });
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
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
          },
        },
      ],
      tool_choice: { type: 'function', function: { name: 'get_weather' } },
      max_tokens: 64,
      temperature: 0,
    });
    const call = answer.choices[0].message.tool_calls?.[0];
    expect(answer.choices[0].finish_reason).toBe('tool_calls');
    expect(call?.type === 'function' && call.function.name).toBe('get_weather');
    expect(typeof JSON.parse(call?.type === 'function' ? call.function.arguments : '{}').city).toBe('string');
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
      .create({ ...chat, logprobs: true })
      .catch((e: unknown) => e);
    expect(unsupported).toBeInstanceOf(OpenAI.BadRequestError);
    expect((unsupported as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logprobs');
    const limited = new OpenAI({
      baseURL: `${platform.url}/v1`,
      apiKey: await platform.createKey({ requests_per_minute: 1 }),
      maxRetries: 0,
    });
    await limited.chat.completions.create(chat);
    const refused = await limited.chat.completions.create(chat).catch((e: unknown) => e);
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

  it('returns 429 with Retry-After when the queue is full, and the SDK retries it', async () => {
    // queueCapacity is 0 in this suite: with every in-flight place taken, the next request is refused.
    const abort = new AbortController();
    const long = {
      model: MODEL,
      messages: [{ role: 'user' as const, content: 'Once' }],
      max_tokens: 1900,
      stream: true as const,
    };
    const streams = await Promise.all(
      Array.from({ length: 8 }, () => client.chat.completions.create(long, { signal: abort.signal })),
    );
    const drains = streams.map((s) =>
      (async () => {
        for await (const chunk of s) void chunk;
      })().catch(() => undefined),
    );
    const retrying = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: platform.adminKey, maxRetries: 3 });
    const answer = retrying.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'x' }],
      max_tokens: 2,
    });
    await platform.until(async () =>
      (await platform.gateway.metrics.requests.get()).values.some((v) => v.labels.status === '429'),
    );
    abort.abort();
    await Promise.all(drains);
    expect((await answer).choices).toHaveLength(1);
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
