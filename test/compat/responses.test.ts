// The Responses API through real clients: the official `openai` Node SDK (create, stream, retrieve,
// delete, input items, previous_response_id, parse, a tool loop over its own returned items) and the
// Vercel AI SDK's `@ai-sdk/openai`, whose default model API is the Responses API. Real platform:
// auth-audit with a content key (a tenant capturing `full` content may store), the worker on stories260K-chat.
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import type { Platform } from '../e2e/platform.js';
import { CHAT_MODEL as MODEL, describeWithModels, startCompatPlatform } from './compat-platform.js';

describeWithModels('Responses API with the OpenAI Node SDK and the Vercel AI SDK', () => {
  let platform: Platform;
  let client: OpenAI;
  let digestClient: OpenAI;
  let apiKey = '';

  beforeAll(async () => {
    const started = await startCompatPlatform();
    platform = started.platform;
    apiKey = started.storeKey;
    client = new OpenAI({ baseURL: started.baseURL, apiKey, maxRetries: 0 });
    digestClient = new OpenAI({ baseURL: started.baseURL, apiKey: started.apiKey, maxRetries: 0 });
  }, 180_000);
  afterAll(() => platform?.close(), 60_000);

  it('creates, retrieves, continues, lists input items of and deletes a response', async () => {
    const first = await client.responses.create({
      model: MODEL,
      instructions: 'You tell short stories.',
      input: 'Once upon a time',
      max_output_tokens: 10,
      temperature: 0,
    });
    expect(first.output_text.length).toBeGreaterThan(0);
    expect(first.status).toBe('incomplete');
    expect(first.usage?.output_tokens).toBe(10);

    const again = await client.responses.retrieve(first.id);
    expect(again.output_text).toBe(first.output_text);

    const second = await client.responses.create({
      model: MODEL,
      previous_response_id: first.id,
      input: [{ role: 'user', content: 'And then?' }],
      max_output_tokens: 10,
      temperature: 0,
    });
    expect(second.previous_response_id).toBe(first.id);
    expect(second.usage!.input_tokens).toBeGreaterThan(first.usage!.input_tokens);

    const items: OpenAI.Responses.ResponseItem[] = [];
    for await (const item of client.responses.inputItems.list(second.id, { order: 'asc', limit: 1 }))
      items.push(item);
    expect(items.map((item) => item.type)).toEqual(['message', 'message', 'message']);
    expect(items[1].id).toBe(first.output[0].id);

    await client.responses.delete(first.id);
    await expect(client.responses.retrieve(first.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('streams with responses.stream and create({ stream: true }), the final response matching the deltas', async () => {
    const stream = client.responses.stream({
      model: MODEL,
      input: 'Once upon a time',
      max_output_tokens: 12,
      temperature: 0,
    });
    let text = '';
    stream.on('response.output_text.delta', (event) => (text += event.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe(text);
    expect(text.length).toBeGreaterThan(0);

    const events = await client.responses.create({
      model: MODEL,
      input: 'Once upon a time',
      max_output_tokens: 12,
      temperature: 0,
      stream: true,
    });
    const types: string[] = [];
    let streamed = '';
    for await (const event of events) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') streamed += event.delta;
    }
    expect(streamed).toBe(text);
    expect(types[0]).toBe('response.created');
    expect(types.at(-1)).toBe('response.incomplete');
  });

  it('parses structured output with zodTextFormat', async () => {
    const Person = z.object({ name: z.string(), age: z.number().int() });
    const response = await client.responses.parse({
      model: MODEL,
      input: 'Describe a person.',
      text: { format: zodTextFormat(Person, 'person') },
      max_output_tokens: 60,
      temperature: 0,
    });
    expect(Person.parse(response.output_parsed)).toEqual(response.output_parsed);
  });

  it('runs a tool loop that sends back the SDK’s own output items, stateless', async () => {
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'get_weather',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        strict: true,
      },
    ];
    const input: OpenAI.Responses.ResponseInputItem[] = [{ role: 'user', content: 'Weather in Paris?' }];
    const first = await client.responses.create({
      model: MODEL,
      input,
      tools,
      tool_choice: { type: 'function', name: 'get_weather' },
      store: false,
      max_output_tokens: 40,
      temperature: 0,
    });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call?.name).toBe('get_weather');
    expect(typeof JSON.parse(call!.arguments).city).toBe('string');
    input.push(...(first.output as OpenAI.Responses.ResponseInputItem[]), {
      type: 'function_call_output',
      call_id: call!.call_id,
      output: '{"c":21}',
    });
    const second = await client.responses.create({
      model: MODEL,
      input,
      tools,
      store: false,
      max_output_tokens: 8,
      temperature: 0,
    });
    expect(second.output.some((item) => item.type === 'message')).toBe(true);
    expect((second as { store?: boolean }).store).toBe(false);
  });

  it('refuses store where the tenant keeps no content, with a 400 the SDK raises', async () => {
    const error = await digestClient.responses
      .create({ model: MODEL, input: 'hi', store: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect((error as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('store_not_allowed');
    const unstored = await digestClient.responses.create({ model: MODEL, input: 'hi', max_output_tokens: 4 });
    expect((unstored as { store?: boolean }).store).toBe(false);
  });

  it('answers the Vercel AI SDK (Responses API by default), text, stream and a second turn', async () => {
    const provider = createOpenAI({ baseURL: `${platform.url}/v1`, apiKey });
    const model = provider(MODEL);
    const result = await generateText({
      model,
      prompt: 'Once upon a time',
      maxOutputTokens: 12,
      temperature: 0,
    });
    const direct = await client.responses.create({
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Once upon a time' }] }],
      max_output_tokens: 12,
      temperature: 0,
    });
    expect(result.text).toBe(direct.output_text);
    expect(result.usage.outputTokens).toBe(12);
    expect(result.finishReason).toBe('length');

    const streamed = streamText({ model, prompt: 'Once upon a time', maxOutputTokens: 12, temperature: 0 });
    let text = '';
    for await (const delta of streamed.textStream) text += delta;
    expect(text).toBe(result.text);

    // The second turn sends the first answer back as an item_reference (the SDK stores by default).
    const next = await generateText({
      model,
      messages: [
        { role: 'user', content: 'Once upon a time' },
        ...result.response.messages,
        { role: 'user', content: 'And then?' },
      ],
      maxOutputTokens: 8,
      temperature: 0,
    });
    expect(next.text.length).toBeGreaterThan(0);
    // What the model got: the first answer's stored item, resolved from its reference.
    const items: OpenAI.Responses.ResponseItem[] = [];
    for await (const item of client.responses.inputItems.list(next.response.id, { order: 'asc' }))
      items.push(item);
    expect(items.map((item) => item.type)).toEqual(['message', 'message', 'message']);
    expect(items[1]).toMatchObject({ id: expect.stringMatching(/^msg_[0-9a-f]{32}_0$/), role: 'assistant' });
    expect((await client.responses.retrieve(result.response.id)).output[0].id).toBe(items[1].id);
  });
});
