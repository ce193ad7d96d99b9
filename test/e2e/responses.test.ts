// End to end: OpenAI's Responses API on the real platform (auth-audit on PostgreSQL with a content key,
// the worker serving stories260K-chat), on the wire: the exact shapes and event sequence clients parse.
import { Platform, describeWithModels, type Json } from './platform.js';

const MODEL = 'stories260K-chat';

/** Server-sent events as a client reads them: the `event:` line and the parsed data. */
async function readEvents(response: Response): Promise<{ event: string; data: Json }[]> {
  const text = await response.text();
  return text
    .split('\n\n')
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7) ?? '';
      const data = JSON.parse(lines.find((l) => l.startsWith('data: '))!.slice(6));
      return { event, data };
    });
}

function outputText(response: Json): string {
  return response.output
    .filter((item: Json) => item.type === 'message')
    .flatMap((item: Json) => item.content.map((part: Json) => part.text))
    .join('');
}

describeWithModels('Responses API through the gateway (PostgreSQL)', () => {
  const platform = new Platform({ database: 'postgres', model: MODEL, contentKeys: true });
  const keys: Record<'owner' | 'sameTenant' | 'digest', string> = { owner: '', sameTenant: '', digest: '' };

  const call = (method: string, path: string, key: string, body?: unknown) =>
    fetch(`${platform.url}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  const create = async (body: object, key = keys.owner) => {
    const response = await call('POST', '/responses', key, { model: MODEL, temperature: 0, ...body });
    return {
      status: response.status,
      json: (await response.json()) as Json,
      requestId: response.headers.get('x-request-id'),
    };
  };
  const chatText = async (messages: object[], maxTokens: number) => {
    const response = await call('POST', '/chat/completions', keys.owner, {
      model: MODEL,
      messages,
      max_tokens: maxTokens,
      temperature: 0,
    });
    return ((await response.json()) as Json).choices[0].message.content as string;
  };

  beforeAll(async () => {
    await platform.start();
    const tenant = await platform.admin('PUT', '/tenants/forensic', { content_capture: 'full' });
    expect(tenant.status).toBe(200);
    keys.owner = await platform.createKey({ tenant: 'forensic' });
    keys.sameTenant = await platform.createKey({ tenant: 'forensic' });
    keys.digest = await platform.createKey({});
  }, 180_000);
  afterAll(() => platform.close(), 60_000);

  it('answers a string input with instructions like the same chat completion, stored by policy', async () => {
    const { status, json } = await create({
      instructions: 'You tell short stories.',
      input: 'Once upon a time',
      max_output_tokens: 12,
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      object: 'response',
      model: MODEL,
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      instructions: 'You tell short stories.',
      max_output_tokens: 12,
      store: true,
      error: null,
      previous_response_id: null,
      text: { format: { type: 'text' } },
    });
    expect(json.id).toMatch(/^resp_[0-9a-f]{32}$/);
    expect(json.output).toHaveLength(1);
    expect(json.output[0]).toMatchObject({ type: 'message', role: 'assistant', status: 'incomplete' });
    expect(json.output[0].id).toMatch(/^msg_/);
    expect(json.output[0].content[0]).toMatchObject({ type: 'output_text', annotations: [] });
    expect(json.usage.output_tokens).toBe(12);
    expect(json.usage.total_tokens).toBe(json.usage.input_tokens + 12);
    const chat = await chatText(
      [
        { role: 'system', content: 'You tell short stories.' },
        { role: 'user', content: 'Once upon a time' },
      ],
      12,
    );
    expect(outputText(json)).toBe(chat);
    expect(chat.length).toBeGreaterThan(0);
  });

  it('streams OpenAI’s event sequence, numbered, and the stored response matches the stream', async () => {
    const response = await call('POST', '/responses', keys.owner, {
      model: MODEL,
      input: [{ role: 'user', content: [{ type: 'input_text', text: 'Tell me a story.' }] }],
      temperature: 0,
      max_output_tokens: 16,
      stream: true,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await readEvents(response);
    const types = events.map((e) => e.data.type);
    for (const e of events) expect(e.event).toBe(e.data.type);
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(0);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.incomplete',
    ]);
    const created = events[0].data.response;
    expect(created).toMatchObject({ status: 'in_progress', output: [], usage: null });
    const streamed = events
      .filter((e) => e.data.type === 'response.output_text.delta')
      .map((e) => e.data.delta)
      .join('');
    const done = events.find((e) => e.data.type === 'response.output_text.done')!.data;
    expect(done.text).toBe(streamed);
    const final = events[events.length - 1].data.response;
    expect(final.id).toBe(created.id);
    expect(outputText(final)).toBe(streamed);
    expect(final.usage.output_tokens).toBe(16);

    const stored = await call('GET', `/responses/${final.id}`, keys.owner);
    expect(stored.status).toBe(200);
    expect(await stored.json()).toEqual(final);
  });

  it('continues a stored conversation with previous_response_id, and lists its input items', async () => {
    const first = await create({ input: 'Once upon a time', max_output_tokens: 8 });
    const second = await create({
      previous_response_id: first.json.id,
      input: 'And then?',
      max_output_tokens: 8,
    });
    expect(second.status).toBe(200);
    expect(second.json.previous_response_id).toBe(first.json.id);
    // The model saw the whole conversation: the same as a chat completion of those three messages.
    const chat = await chatText(
      [
        { role: 'user', content: 'Once upon a time' },
        { role: 'assistant', content: outputText(first.json) },
        { role: 'user', content: 'And then?' },
      ],
      8,
    );
    expect(outputText(second.json)).toBe(chat);
    expect(second.json.usage.input_tokens).toBeGreaterThan(first.json.usage.input_tokens);
    // The same turn with the earlier answer sent as an item_reference (as the Vercel AI SDK does).
    const referenced = await create({
      input: [
        { role: 'user', content: 'Once upon a time' },
        { type: 'item_reference', id: first.json.output[0].id },
        { role: 'user', content: 'And then?' },
      ],
      max_output_tokens: 8,
    });
    expect(outputText(referenced.json)).toBe(chat);
    const dangling = await create({ input: [{ type: 'item_reference', id: 'msg_unknown' }] });
    expect([dangling.status, dangling.json.error.param]).toEqual([404, 'input[0].id']);

    const listed = await call('GET', `/responses/${second.json.id}/input_items?order=asc`, keys.owner);
    const items = (await listed.json()) as Json;
    expect(items).toMatchObject({ object: 'list', has_more: false });
    expect(items.data.map((i: Json) => [i.type, i.role, i.content[0].text])).toEqual([
      ['message', 'user', 'Once upon a time'],
      ['message', 'assistant', outputText(first.json)],
      ['message', 'user', 'And then?'],
    ]);
    expect(items.data[1].id).toBe(first.json.output[0].id);
    const page = (await (
      await call('GET', `/responses/${second.json.id}/input_items?limit=2`, keys.owner)
    ).json()) as Json;
    expect(page.data.map((i: Json) => i.content[0].text)).toEqual(['And then?', outputText(first.json)]);
    expect(page.has_more).toBe(true);
    const rest = (await (
      await call('GET', `/responses/${second.json.id}/input_items?limit=2&after=${page.last_id}`, keys.owner)
    ).json()) as Json;
    expect(rest.data.map((i: Json) => i.content[0].text)).toEqual(['Once upon a time']);
    expect(rest.has_more).toBe(false);
  });

  it('keeps stored responses to their key: others get 404, delete removes them', async () => {
    const { json } = await create({ input: 'Once upon a time', max_output_tokens: 4 });
    for (const key of [keys.sameTenant, keys.digest]) {
      const response = await call('GET', `/responses/${json.id}`, key);
      expect(response.status).toBe(404);
      expect(((await response.json()) as Json).error.message).toBe(
        `Response with id '${json.id}' not found.`,
      );
      expect((await call('DELETE', `/responses/${json.id}`, key)).status).toBe(404);
    }
    const follow = await create({ previous_response_id: json.id, input: 'more' }, keys.sameTenant);
    expect(follow.status).toBe(404);
    expect(follow.json.error).toMatchObject({
      param: 'previous_response_id',
      code: 'previous_response_not_found',
    });

    const deleted = await call('DELETE', `/responses/${json.id}`, keys.owner);
    expect(await deleted.json()).toEqual({ id: json.id, object: 'response', deleted: true });
    expect((await call('GET', `/responses/${json.id}`, keys.owner)).status).toBe(404);
    expect((await call('DELETE', `/responses/${json.id}`, keys.owner)).status).toBe(404);
    expect((await call('GET', '/responses/not-an-id', keys.owner)).status).toBe(404);
  });

  it('refuses store: true where the tenant does not keep content, naming the policy; unsaid, stores nothing', async () => {
    const refused = await create({ input: 'Once upon a time', store: true }, keys.digest);
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ param: 'store', code: 'store_not_allowed' });
    expect(refused.json.error.message).toMatch(/content_capture.*'full'/);
    const plain = await create({ input: 'Once upon a time', max_output_tokens: 4 }, keys.digest);
    expect(plain.status).toBe(200);
    expect(plain.json.store).toBe(false);
    expect((await call('GET', `/responses/${plain.json.id}`, keys.digest)).status).toBe(404);
    // The refused request is audited too: its request record and a 400 completion.
    const records = await platform.auditRecords(refused.requestId!);
    expect(records.find((r: Json) => r.kind === 'request')).toMatchObject({
      action: 'responses',
      model: MODEL,
    });
    expect(records.find((r: Json) => r.kind === 'completion')).toMatchObject({
      outcome: 'failed',
      status_code: 400,
      error_class: 'store_not_allowed',
    });
  });

  it('calls a function tool, then answers its output in the next turn', async () => {
    const tools = [
      {
        type: 'function',
        name: 'get_weather',
        description: 'The weather in a city',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
        strict: true,
      },
    ];
    const first = await create({
      input: 'What is the weather in Paris?',
      tools,
      tool_choice: { type: 'function', name: 'get_weather' },
      max_output_tokens: 40,
    });
    expect([first.status, first.json.error]).toEqual([200, null]);
    expect(first.json.status).toBe('completed');
    const call0 = first.json.output.find((item: Json) => item.type === 'function_call');
    expect(call0).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
    expect(typeof JSON.parse(call0.arguments).city).toBe('string');
    expect(first.json.tools[0]).toMatchObject({ type: 'function', name: 'get_weather', strict: true });

    const second = await create({
      previous_response_id: first.json.id,
      input: [{ type: 'function_call_output', call_id: call0.call_id, output: '{"temperature": 21}' }],
      tools,
      max_output_tokens: 8,
    });
    expect(second.status).toBe(200);
    expect(second.json.output.some((item: Json) => item.type === 'message')).toBe(true);

    // Stateless: the call and its output sent back as items, with nothing stored.
    const stateless = await create({
      store: false,
      input: [
        { role: 'user', content: 'What is the weather in Paris?' },
        { type: 'function_call', call_id: call0.call_id, name: 'get_weather', arguments: call0.arguments },
        { type: 'function_call_output', call_id: call0.call_id, output: '{"temperature": 21}' },
      ],
      tools,
      max_output_tokens: 8,
    });
    expect(stateless.status).toBe(200);
    expect(outputText(stateless.json)).toBe(outputText(second.json));
    expect(stateless.json.store).toBe(false);
  });

  it('constrains the output to text.format json_schema', async () => {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer' } },
      required: ['name', 'age'],
      additionalProperties: false,
    };
    const { status, json } = await create({
      input: 'Describe a person.',
      text: { format: { type: 'json_schema', name: 'person', schema, strict: true } },
      max_output_tokens: 60,
    });
    expect(status).toBe(200);
    expect(json.text.format).toMatchObject({ type: 'json_schema', name: 'person' });
    const person = JSON.parse(outputText(json));
    expect(typeof person.name).toBe('string');
    expect(Number.isInteger(person.age)).toBe(true);
  });

  it('refuses what it cannot honour by name', async () => {
    const cases: [object, string][] = [
      [{ input: 'x', tools: [{ type: 'web_search' }] }, 'tools[0].type'],
      [
        { input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] },
        'input[0].content[0].type',
      ],
      [{ input: 'x', truncation: 'auto' }, 'truncation'],
      [{ input: 'x', background: true }, 'background'],
      [{ input: 'x', reasoning: { summary: 'detailed' } }, 'reasoning.summary'],
      [{ input: 'x', max_output_tokens: 0 }, 'max_output_tokens'],
      [{ input: 'x', stream_options: { include_obfuscation: false } }, 'stream_options'],
      [{}, 'input'],
      [{ input: 'Once upon a time '.repeat(1500), max_output_tokens: 8 }, 'input'],
    ];
    for (const [body, param] of cases) {
      const { status, json } = await create(body);
      expect([param, status]).toEqual([param, 400]);
      expect(json.error.param).toBe(param);
    }
  });
});
