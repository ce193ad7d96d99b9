import type { LlamaContextSequence, LlamaModel, Token, TokenBias } from 'node-llama-cpp';
import type { TokenLogprob, TopLogprob } from '@airlock/contracts';
import type { LlamaSampling } from './sampling.js';

/** OpenAI's stand-in for a probability of zero (JSON has no -Infinity). */
const LOGPROB_FLOOR = -9999;
/** node-llama-cpp's default window for the repeat penalty, kept so answers match the plain path. */
const REPEAT_PENALTY_LAST_TOKENS = 64;

export interface LogprobGenerationOptions {
  sequence: LlamaContextSequence;
  model: LlamaModel;
  /** The whole prompt, template applied and BOS included. */
  promptTokens: Token[];
  sampling: LlamaSampling;
  tokenBias?: TokenBias;
  maxTokens: number;
  topLogprobs: number;
  signal: AbortSignal;
  onTokens: (count: number) => void;
  onText: (text: string) => void;
  onLogprobs: (tokens: TokenLogprob[]) => void;
}

/**
 * A generation that reports each token's log probability. node-llama-cpp's LlamaChat and LlamaCompletion
 * do not expose probabilities, so this drives the sequence directly (the same sampling options, the same
 * repeat-penalty window), ending at an end-of-generation token, a stop sequence or `maxTokens`. Each
 * token's logprobs are reported before its text. The probabilities are those the sampler saw: the raw
 * distribution at temperature 0, the filtered one (top-k/top-p/min-p) otherwise.
 */
export async function generateWithLogprobs(
  options: LogprobGenerationOptions,
): Promise<{ stopReason: string }> {
  const { sequence, model, sampling, signal } = options;
  const generated: Token[] = [];
  const stops = sampling.customStopTriggers ?? [];
  const decoder = new TokenTextDecoder(model);
  let unsent = '';

  const input = [...options.promptTokens];
  // Reuse what the sequence already holds of this prompt (at least one token must be evaluated).
  const last = input.pop()!;
  await sequence.adaptStateToTokens(input, false);
  input.push(last);
  input.splice(0, sequence.nextTokenIndex);

  const penalty = sampling.repeatPenalty;
  const nl = model.tokens.nl;
  const iterator = sequence.evaluateWithMetadata(
    input,
    { confidence: true, probabilities: options.topLogprobs > 0 },
    {
      temperature: sampling.temperature,
      topK: sampling.topK,
      topP: sampling.topP,
      minP: sampling.minP,
      seed: sampling.seed,
      tokenBias: options.tokenBias,
      repeatPenalty: {
        punishTokens: () => generated.slice(-REPEAT_PENALTY_LAST_TOKENS).filter((token) => token !== nl),
        maxPunishTokens: REPEAT_PENALTY_LAST_TOKENS,
        penalty: penalty?.penalty,
        frequencyPenalty: penalty?.frequencyPenalty,
        presencePenalty: penalty?.presencePenalty,
      },
    },
  );

  const send = (text: string): void => {
    if (text) options.onText(text);
  };
  try {
    for await (const output of iterator) {
      if (signal.aborted) return { stopReason: 'abort' };
      generated.push(output.token);
      options.onTokens(1);
      const text = decoder.push(output.token);
      const probabilities = (output as { probabilities?: Map<Token, number> }).probabilities;
      options.onLogprobs([
        {
          token: text.piece,
          logprob: toLogprob(output.confidence),
          bytes: Buffer.from(text.piece, 'utf8'),
          topLogprobs: probabilities ? topOf(probabilities, options.topLogprobs, model) : [],
        },
      ]);
      unsent += text.complete;
      const stopAt = firstStop(unsent, stops);
      if (stopAt >= 0) {
        send(unsent.slice(0, stopAt));
        return { stopReason: 'customStopTrigger' };
      }
      const hold = heldBack(unsent, stops);
      send(unsent.slice(0, unsent.length - hold));
      unsent = unsent.slice(unsent.length - hold);
      if (generated.length >= options.maxTokens) {
        send(unsent + decoder.flush());
        return { stopReason: 'maxTokens' };
      }
    }
  } finally {
    await iterator.return();
  }
  send(unsent + decoder.flush());
  return { stopReason: signal.aborted ? 'abort' : 'eogToken' };
}

function toLogprob(probability: number): number {
  return probability > 0 ? Math.max(LOGPROB_FLOOR, Math.log(probability)) : LOGPROB_FLOOR;
}

/** The map is sorted from the most to the least likely token. */
function topOf(probabilities: Map<Token, number>, count: number, model: LlamaModel): TopLogprob[] {
  const top: TopLogprob[] = [];
  for (const [token, probability] of probabilities) {
    if (top.length >= count) break;
    const piece = model.detokenize([token]);
    top.push({ token: piece, logprob: toLogprob(probability), bytes: Buffer.from(piece, 'utf8') });
  }
  return top;
}

function firstStop(text: string, stops: string[]): number {
  let first = -1;
  for (const stop of stops) {
    const at = text.indexOf(stop);
    if (at >= 0 && (first < 0 || at < first)) first = at;
  }
  return first;
}

/** How many trailing characters could begin a stop sequence, and so must wait for the next token. */
function heldBack(text: string, stops: string[]): number {
  let hold = 0;
  for (const stop of stops) {
    for (let length = Math.min(stop.length - 1, text.length); length > hold; length--) {
      if (text.endsWith(stop.slice(0, length))) {
        hold = length;
        break;
      }
    }
  }
  return hold;
}

/**
 * Turns tokens into text as they come: each token's own piece (with the spacing the tokens before it give
 * it), and the text that is complete, holding back a UTF-8 character split across byte tokens.
 */
class TokenTextDecoder {
  private readonly tokens: Token[] = [];
  private pending: Token[] = [];

  constructor(private readonly model: LlamaModel) {}

  push(token: Token): { piece: string; complete: string } {
    const context = this.tokens.slice(-8);
    this.tokens.push(token);
    const piece = this.model.detokenize([token], false, context);
    this.pending.push(token);
    const text = this.model.detokenize(
      this.pending,
      false,
      this.tokens.slice(-8 - this.pending.length, -this.pending.length),
    );
    // An incomplete character decodes as U+FFFD; wait (a few tokens at most) for the rest of it.
    if (text.endsWith('\uFFFD') && this.pending.length < 4) return { piece, complete: '' };
    this.pending = [];
    return { piece, complete: text };
  }

  flush(): string {
    if (this.pending.length === 0) return '';
    const text = this.model.detokenize(
      this.pending,
      false,
      this.tokens.slice(-8 - this.pending.length, -this.pending.length),
    );
    this.pending = [];
    return text;
  }
}
