import { toLlamaSampling } from './sampling.js';
import { WorkerError } from './worker-errors.js';

describe('toLlamaSampling', () => {
  it('maps OpenAI sampling to node-llama-cpp options', () => {
    expect(
      toLlamaSampling({
        temperature: 0.7,
        topP: 0.9,
        topK: 40,
        minP: 0.05,
        seed: 3,
        stop: ['\n\n', ''],
        frequencyPenalty: 0.5,
      }),
    ).toEqual({
      temperature: 0.7,
      topP: 0.9,
      topK: 40,
      minP: 0.05,
      seed: 3,
      repeatPenalty: { penalty: undefined, frequencyPenalty: 0.5, presencePenalty: undefined },
      customStopTriggers: ['\n\n'],
    });
  });

  it('leaves penalties to the model defaults when none is given', () => {
    expect(toLlamaSampling({ temperature: 0 }).repeatPenalty).toBeUndefined();
  });

  it.each([
    [{ temperature: -1 }, /temperature must be between 0 and 2/],
    [{ topK: 1.5 }, /top_k must be an integer/],
    [{ presencePenalty: 3 }, /presence_penalty/],
    [{ seed: -4 }, /seed/],
    [{ stop: new Array(17).fill('x') }, /at most 16/],
    [{ stop: ['x'.repeat(257)] }, /at most 256 characters/],
    [{ temperature: Number.NaN }, /temperature must be a number/],
  ])('rejects %p', (params, message) => {
    expect(() => toLlamaSampling(params)).toThrow(message);
    expect(() => toLlamaSampling(params)).toThrow(WorkerError);
  });
});
