import type { CompleteResponse, Finish } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import type { Exchange } from '../inference/exchange.js';
import { NO_EVENTS, type StreamEvent, type SurfaceEncoder } from '../inference/surface-encoder.js';
import {
  FINISH_REASON,
  addUsage,
  completionChunk,
  toOpenAiUsage,
  type ResponseIdentity,
} from './responses.js';
import { ChoiceLogprobs } from './logprobs.js';
import { WholeCharacterDeltas } from './sse.js';

/** `/v1/completions`: `text_completion` objects, prompts × n choices. */
export class CompletionEncoder implements SurfaceEncoder<CompleteResponse> {
  readonly endsWithDone = true;
  private readonly choices: TextChoice[];

  /** `choices` is prompts × n; choice i answers prompt ⌊i/n⌋, whose first choice counts its prompt tokens. */
  constructor(
    private readonly identity: ResponseIdentity,
    private readonly exchange: Exchange,
    choices: number,
    n: number,
    private readonly includeUsage: boolean,
    logprobs = false,
  ) {
    this.choices = Array.from({ length: choices }, (_, index) => new TextChoice(index % n === 0, logprobs));
  }

  opening(): readonly StreamEvent[] {
    return NO_EVENTS;
  }

  onEvent(index: number, event: CompleteResponse): readonly StreamEvent[] {
    const choice = this.choices[index].apply(event, this.exchange, index);
    return choice ? [{ data: completionChunk(this.identity, [choice]) }] : NO_EVENTS;
  }

  closing(): readonly StreamEvent[] {
    if (!this.includeUsage) return NO_EVENTS;
    return [{ data: completionChunk(this.identity, [], toOpenAiUsage(this.exchange.usage)) }];
  }

  collected(): object {
    return {
      ...completionChunk(
        this.identity,
        this.choices.map((choice, index) => choice.toChoice(index)),
      ),
      usage: toOpenAiUsage(this.exchange.usage),
    };
  }

  failure(error: ApiError): readonly StreamEvent[] {
    return [{ data: error.toBody() }];
  }
}

/** One legacy-completion choice. */
class TextChoice {
  private readonly logprobs: ChoiceLogprobs;

  constructor(
    private readonly countsPrompt: boolean,
    logprobs: boolean,
  ) {
    this.logprobs = new ChoiceLogprobs(logprobs);
  }

  private text = '';
  /** Text offset of the first logprob not yet sent in a chunk. */
  private sentOffset = 0;
  private finish: Finish | null = null;
  private readonly deltas = new WholeCharacterDeltas();

  apply(event: CompleteResponse, exchange: Exchange, index: number): object | null {
    if (event.event === 'logprobs') {
      this.logprobs.push(event.logprobs.tokens ?? []);
      return null;
    }
    if (event.event === 'textDelta') {
      exchange.onToken();
      const piece = this.deltas.push(event.textDelta);
      this.text += piece;
      return piece ? { index, text: piece, logprobs: this.chunkLogprobs(), finish_reason: null } : null;
    }
    this.finish = event.finish;
    addUsage(exchange.usage, event.finish.usage, this.countsPrompt);
    exchange.onFinish(event.finish.model);
    const rest = this.deltas.flush();
    this.text += rest;
    return {
      index,
      text: rest,
      logprobs: this.chunkLogprobs(),
      finish_reason: FINISH_REASON[event.finish.finishReason],
    };
  }

  toChoice(index: number) {
    if (!this.finish) throw ApiError.internal('The worker ended the generation without a result.');
    return {
      index,
      text: this.text,
      logprobs: this.logprobs.completion(),
      finish_reason: FINISH_REASON[this.finish.finishReason],
    };
  }

  private chunkLogprobs() {
    if (!this.logprobs.enabled) return null;
    const tokens = this.logprobs.take();
    const shaped = this.logprobs.completion(tokens, this.sentOffset);
    for (const token of tokens) this.sentOffset += token.token.length;
    return shaped;
  }
}
