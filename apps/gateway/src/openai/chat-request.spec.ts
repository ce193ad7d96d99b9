import { ApiError } from '../errors/api-error.js';
import { parseChatRequest, type RequestLimits } from './chat-request.js';
import { parseCompletionRequest } from './completion-request.js';
import { parseEmbeddingRequest } from './embedding-request.js';

const limits: RequestLimits = {
  maxN: 4,
  tokenLimits: (model) => ({ maxTokens: model === 'small' ? 64 : 1024 }),
};
const base = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

function refusal(run: () => unknown): ApiError {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error('expected an ApiError');
}

describe('chat request mapping', () => {
  it('maps roles, sampling, stop, tools and json schema onto the worker contract', () => {
    const parsed = parseChatRequest(
      {
        ...base,
        messages: [
          { role: 'developer', content: 'be brief' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'a' },
              { type: 'text', text: 'b' },
            ],
          },
          {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"x":1}' } }],
          },
          { role: 'tool', content: '42', tool_call_id: 'c1' },
        ],
        temperature: 0.5,
        top_p: 0.9,
        seed: -1,
        stop: 'END',
        max_completion_tokens: 10,
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
        tool_choice: { type: 'function', function: { name: 'f' } },
        response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'object' } } },
        stream: true,
        stream_options: { include_usage: true },
        logprobs: false,
        user: 'u1',
      },
      limits,
    );
    expect(parsed.stream).toBe(true);
    expect(parsed.includeUsage).toBe(true);
    expect(parsed.request.messages.map((m) => m.role)).toEqual([
      'CHAT_ROLE_SYSTEM',
      'CHAT_ROLE_USER',
      'CHAT_ROLE_ASSISTANT',
      'CHAT_ROLE_TOOL',
    ]);
    expect(parsed.request.messages[1].content).toBe('ab');
    expect(parsed.request.messages[2].toolCalls).toEqual([{ id: 'c1', name: 'f', argumentsJson: '{"x":1}' }]);
    expect(parsed.request.messages[3].toolCallId).toBe('c1');
    expect(parsed.request.sampling).toEqual({
      temperature: 0.5,
      topP: 0.9,
      seed: 4294967295,
      stop: ['END'],
      maxTokens: 10,
      jsonSchema: '{"type":"object"}',
    });
    expect(parsed.request.tools).toEqual([
      { name: 'f', description: '', parametersJsonSchema: '{"type":"object"}' },
    ]);
    expect(parsed.request.toolChoiceMode).toBe('TOOL_CHOICE_MODE_REQUIRED');
    expect(parsed.request.toolChoiceFunction).toBe('f');
  });

  it('caps max_tokens at the model limit when the client gives none', () => {
    expect(parseChatRequest({ ...base, model: 'small' }, limits).request.sampling?.maxTokens).toBe(64);
  });

  it.each([
    [{ ...base, logprobs: true }, 'logprobs', 'unsupported_parameter'],
    [{ ...base, logit_bias: { 1: 2 } }, 'logit_bias', 'unsupported_parameter'],
    [{ ...base, frobnicate: 1 }, 'frobnicate', 'unsupported_parameter'],
    [
      { ...base, messages: [{ role: 'user', content: 'x', extra: 1 }] },
      'messages[0].extra',
      'unsupported_parameter',
    ],
    [
      { ...base, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
      'messages[0].content[0].type',
      'unsupported_content_type',
    ],
    [{ ...base, temperature: 3 }, 'temperature', 'invalid_value'],
    [{ model: 'm' }, 'messages', 'missing_required_parameter'],
    [{ ...base, model: 'small', max_tokens: 65 }, 'max_tokens', 'max_tokens_exceeded'],
    [{ ...base, n: 5 }, 'n', 'invalid_value'],
    [{ ...base, stream_options: { include_usage: true } }, 'stream_options', 'invalid_request'],
    [{ ...base, tool_choice: 'required' }, 'tool_choice', 'invalid_request'],
    [{ ...base, messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role', 'invalid_value'],
  ])('refuses %j naming %s', (body, param, code) => {
    const error = refusal(() => parseChatRequest(body, limits));
    expect(error.status).toBe(400);
    expect(error.param).toBe(param);
    expect(error.code).toBe(code);
  });

  it('refuses a body that is not an object', () => {
    expect(refusal(() => parseChatRequest([1], limits)).status).toBe(400);
  });
});

describe('completion and embedding request mapping', () => {
  it('makes one worker request per prompt with the OpenAI default of 16 tokens', () => {
    const parsed = parseCompletionRequest({ model: 'm', prompt: ['a', 'b'], n: 2, echo: false }, limits);
    expect(parsed.requests.map((r) => r.prompt)).toEqual(['a', 'b']);
    expect(parsed.requests[0].sampling?.maxTokens).toBe(16);
    expect(parsed.n).toBe(2);
  });

  it('refuses token prompts, echo and too many choices', () => {
    expect(refusal(() => parseCompletionRequest({ model: 'm', prompt: [[1, 2]] }, limits)).param).toBe(
      'prompt[0]',
    );
    expect(refusal(() => parseCompletionRequest({ model: 'm', prompt: 'a', echo: true }, limits)).param).toBe(
      'echo',
    );
    expect(
      refusal(() => parseCompletionRequest({ model: 'm', prompt: ['a', 'b', 'c'], n: 2 }, limits)).param,
    ).toBe('n');
  });

  it('accepts base64 embeddings and refuses dimensions', () => {
    expect(parseEmbeddingRequest({ model: 'm', input: 'x', encoding_format: 'base64' }, 8).encoding).toBe(
      'base64',
    );
    expect(refusal(() => parseEmbeddingRequest({ model: 'm', input: 'x', dimensions: 8 }, 8)).param).toBe(
      'dimensions',
    );
    expect(refusal(() => parseEmbeddingRequest({ model: 'm', input: ['a', 'b', 'c'] }, 2)).param).toBe(
      'input',
    );
  });
});
