import { ApiError } from '../errors/api-error.js';
import { parseChatRequest, type RequestLimits } from './chat-request.js';
import { parseCompletionRequest } from './completion-request.js';
import { parseEmbeddingRequest } from './embedding-request.js';
import { toOpenAiVector } from './embedding-vectors.js';

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
    expect(parsed.seeds).toEqual([4294967295]);
    expect(parsed.endUser).toBe('u1');
    expect(parsed.request.tools).toEqual([
      { name: 'f', description: '', parametersJsonSchema: '{"type":"object"}' },
    ]);
    expect(parsed.request.toolChoiceMode).toBe('TOOL_CHOICE_MODE_REQUIRED');
    expect(parsed.request.toolChoiceFunction).toBe('f');
  });

  it('without max_tokens runs to the end of the context, within the model limit', () => {
    const sampling = parseChatRequest({ ...base, model: 'small' }, limits).request.sampling;
    expect(sampling?.maxTokens).toBe(0);
    expect(sampling?.maxTokensLimit).toBe(64);
  });

  it('accepts the output-only fields SDKs send back with their own messages, and ignores them', () => {
    const parsed = parseChatRequest(
      {
        ...base,
        messages: [
          { role: 'user', content: 'hi' },
          {
            role: 'assistant',
            content: null,
            refusal: null,
            annotations: [],
            audio: null,
            function_call: null,
            parsed: { x: 1 },
            tool_calls: [
              {
                id: 'c1',
                index: 0,
                type: 'function',
                function: { name: 'f', arguments: '{"x":1}', parsed_arguments: { x: 1 } },
              },
            ],
          },
          { role: 'tool', content: '42', tool_call_id: 'c1', name: 'f' },
        ],
      },
      limits,
    );
    expect(parsed.request.messages[1].toolCalls).toEqual([{ id: 'c1', name: 'f', argumentsJson: '{"x":1}' }]);
    expect(parsed.request.messages[2].name).toBe('f');
  });

  it('maps logprobs, logit_bias, parallel_tool_calls and the hints', () => {
    const parsed = parseChatRequest(
      {
        ...base,
        logprobs: true,
        top_logprobs: 3,
        logit_bias: { 17: -100, 5: 2.5 },
        parallel_tool_calls: false,
        store: true,
        metadata: { app: 'x' },
        user: 'u',
        safety_identifier: 'hashed-user',
        prompt_cache_key: 'conversation-1',
        reasoning_effort: 'none',
        stream: true,
        stream_options: { include_usage: true, include_obfuscation: true },
      },
      limits,
    );
    expect(parsed.request.sampling?.logprobs).toBe(true);
    expect(parsed.request.sampling?.topLogprobs).toBe(3);
    expect(parsed.request.sampling?.logitBias).toEqual([
      { token: 5, bias: 2.5 },
      { token: 17, bias: -100 },
    ]);
    expect(parsed.request.maxToolCalls).toBe(1);
    expect(parsed.request.reasoningEffort).toBe('REASONING_EFFORT_NONE');
    expect(parsed).toMatchObject({
      endUser: 'hashed-user',
      cacheKey: 'conversation-1',
      includeObfuscation: true,
      logprobs: true,
    });
  });

  it('gives every choice its own seed: random without a seed, derived and reproducible with one', () => {
    const unseeded = parseChatRequest({ ...base, n: 4 }, limits).seeds;
    expect(new Set(unseeded).size).toBe(4);
    expect(new Set([...unseeded, ...parseChatRequest({ ...base, n: 4 }, limits).seeds]).size).toBe(8);
    const seeded = parseChatRequest({ ...base, n: 4, seed: 7 }, limits).seeds;
    expect(seeded[0]).toBe(7);
    expect(new Set(seeded).size).toBe(4);
    expect(parseChatRequest({ ...base, n: 4, seed: 7 }, limits).seeds).toEqual(seeded);
  });

  it.each([
    [{ ...base, top_logprobs: 2 }, 'top_logprobs', 'invalid_request'],
    [{ ...base, logit_bias: { a: 2 } }, 'logit_bias.a', 'invalid_value'],
    [{ ...base, logit_bias: { 1: 101 } }, 'logit_bias.1', 'invalid_value'],
    [{ ...base, user: 'a\nb' }, 'user', 'invalid_value'],
    [{ ...base, prediction: { type: 'content', content: 'x' } }, 'prediction', 'unsupported_parameter'],
    [
      { ...base, messages: [{ role: 'assistant', content: 'x', audio: { id: 'a1' } }] },
      'messages[0].audio',
      'invalid_value',
    ],
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

  it('maps logprobs and echo, gives each choice its seed', () => {
    const parsed = parseCompletionRequest(
      { model: 'm', prompt: ['a', 'b'], n: 2, logprobs: 2, echo: true },
      limits,
    );
    expect(parsed.requests[0]).toMatchObject({ echo: true, sampling: { logprobs: true, topLogprobs: 2 } });
    expect(new Set(parsed.seeds).size).toBe(4);
  });

  it('refuses token prompts and too many choices', () => {
    expect(refusal(() => parseCompletionRequest({ model: 'm', prompt: [[1, 2]] }, limits)).param).toBe(
      'prompt[0]',
    );
    expect(
      refusal(() => parseCompletionRequest({ model: 'm', prompt: ['a', 'b', 'c'], n: 2 }, limits)).param,
    ).toBe('n');
  });

  it('accepts base64, dimensions and token-array inputs', () => {
    expect(parseEmbeddingRequest({ model: 'm', input: 'x', encoding_format: 'base64' }, 8).encoding).toBe(
      'base64',
    );
    expect(parseEmbeddingRequest({ model: 'm', input: 'x', dimensions: 8 }, 8).dimensions).toBe(8);
    expect(parseEmbeddingRequest({ model: 'm', input: [15, 16, 17] }, 8).request.tokenInputs).toEqual([
      { ids: [15, 16, 17] },
    ]);
    expect(parseEmbeddingRequest({ model: 'm', input: [[1], [2, 3]] }, 8).request.tokenInputs).toEqual([
      { ids: [1] },
      { ids: [2, 3] },
    ]);
    expect(refusal(() => parseEmbeddingRequest({ model: 'm', input: ['a', 1] }, 8)).param).toBe('input');
    expect(refusal(() => parseEmbeddingRequest({ model: 'm', input: ['a', 'b', 'c'] }, 2)).param).toBe(
      'input',
    );
  });
});

describe('embedding vectors', () => {
  it('are unit length, truncated and renormalised for dimensions, refused above the model size', () => {
    const norm = (v: number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
    expect(norm(toOpenAiVector([3, 4, 12], null))).toBeCloseTo(1, 6);
    expect(toOpenAiVector([3, 4, 12], 2)).toEqual([0.6, 0.8]);
    expect(refusal(() => toOpenAiVector([1, 2], 3)).param).toBe('dimensions');
  });
});
