import {
  parseInputItemsQuery,
  parseResponsesRequest,
  pageOfItems,
  toChatMessages,
} from './responses-request.js';

const limits = { maxN: 4, tokenLimits: () => ({ maxTokens: 100 }) };
const parse = (body: object) => parseResponsesRequest({ model: 'm', input: 'hi', ...body }, limits);

describe('Responses requests', () => {
  it('gives each request its own seed unless the client sets one', () => {
    const seeds = new Set(Array.from({ length: 8 }, () => parse({}).request.sampling?.seed));
    expect(seeds.size).toBe(8);
    expect(parse({ seed: 42 }).request.sampling?.seed).toBe(42);
  });

  it('builds the conversation: instructions first, calls joined to the assistant turn, outputs as tool messages', () => {
    const messages = toChatMessages('Be brief.', [
      { role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Checking.' }] },
      { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'sunny' },
      { type: 'reasoning', summary: [] },
    ]);
    expect(messages).toEqual([
      { role: 'CHAT_ROLE_SYSTEM', content: 'Be brief.' },
      { role: 'CHAT_ROLE_USER', content: 'Weather?' },
      {
        role: 'CHAT_ROLE_ASSISTANT',
        content: 'Checking.',
        toolCalls: [{ id: 'c1', name: 'get_weather', argumentsJson: '{}' }],
      },
      { role: 'CHAT_ROLE_TOOL', content: 'sunny', toolCallId: 'c1', name: 'get_weather' },
    ]);
  });

  it('pages input items newest first by default, after a cursor', () => {
    const items = ['a', 'b', 'c'].map((id) => ({ id }));
    expect(pageOfItems(items, parseInputItemsQuery({ limit: '2' }))).toEqual({
      object: 'list',
      data: [{ id: 'c' }, { id: 'b' }],
      first_id: 'c',
      last_id: 'b',
      has_more: true,
    });
    expect(pageOfItems(items, parseInputItemsQuery({ order: 'asc', after: 'a' })).data).toEqual([
      { id: 'b' },
      { id: 'c' },
    ]);
    expect(() => parseInputItemsQuery({ limit: '0' })).toThrow(/limit/);
    expect(() => parseInputItemsQuery({ include: 'x' })).toThrow(/include/);
  });
});
