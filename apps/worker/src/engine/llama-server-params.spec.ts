import { completionSampling, toFinishReason, toTokenLogprobs } from './llama-server-params.js';

describe('llama-server /completion sampling fields', () => {
  it('gives unset fields node-llama-cpp’s defaults, not llama-server’s', () => {
    expect(completionSampling(undefined, 512)).toEqual({
      temperature: 0,
      top_k: 40,
      top_p: 0.95,
      min_p: 0,
      seed: -1,
      repeat_penalty: 1,
      repeat_last_n: 64,
      presence_penalty: 0,
      frequency_penalty: 0,
      stop: [],
    });
  });

  it('maps what a request carries', () => {
    const body = completionSampling(
      {
        temperature: 0.7,
        topK: 5,
        seed: 7,
        maxTokens: 3,
        stop: ['\n'],
        frequencyPenalty: 0.5,
        logitBias: [
          { token: 3, bias: -100 },
          { token: 4, bias: 2 },
        ],
        jsonObject: true,
      },
      512,
    );
    expect(body).toMatchObject({
      temperature: 0.7,
      top_k: 5,
      seed: 7,
      stop: ['\n'],
      frequency_penalty: 0.5,
      logit_bias: [
        [3, false],
        [4, 2],
      ],
      json_schema: { type: 'object' },
    });
    expect(completionSampling({ maxTokens: 1, logprobs: true, topLogprobs: 0 }, 512)).toMatchObject({
      n_probs: 1,
      post_sampling_probs: false,
    });
  });

  it.each([
    [{ maxTokens: 1, temperature: 3 }, /temperature must be between 0 and 2/],
    [{ maxTokens: 1, logitBias: [{ token: 512, bias: 1 }] }, /outside the vocabulary of 512/],
    [{ maxTokens: 1, jsonSchema: '{' }, /not valid JSON/],
    [
      { maxTokens: 1, logprobs: true, jsonObject: true },
      /logprobs are not supported together with a JSON grammar/,
    ],
    [{ maxTokens: 1, logprobs: true, topLogprobs: 21 }, /top_logprobs must be at most 20/],
  ])('refuses %p', (sampling, message) => {
    expect(() => completionSampling(sampling, 512)).toThrow(message);
  });

  it('reads probabilities in either form and the stop type', () => {
    const [token] = toTokenLogprobs(
      [
        {
          token: 'a',
          bytes: [97],
          prob: 0.5,
          top_probs: [
            { token: 'a', prob: 0.5 },
            { token: 'b', prob: 0 },
          ],
        },
      ],
      2,
    );
    expect(token.logprob).toBeCloseTo(Math.log(0.5));
    expect(token.topLogprobs.map((t) => t.logprob)).toEqual([Math.log(0.5), -9999]);
    expect(toFinishReason('limit', false)).toBe('FINISH_REASON_LENGTH');
    expect(toFinishReason('eos', true)).toBe('FINISH_REASON_LENGTH');
    expect(toFinishReason('word', false)).toBe('FINISH_REASON_STOP');
  });
});
