import type { ChatResponse, Finish, ToolCall } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import type { Exchange } from '../inference/exchange.js';
import { NO_EVENTS, type StreamEvent, type SurfaceEncoder } from '../inference/surface-encoder.js';
import {
  FINISH_REASON,
  addUsage,
  chatChunk,
  toOpenAiToolCall,
  toOpenAiUsage,
  type ResponseIdentity,
} from './responses.js';
import { ChoiceLogprobs } from './logprobs.js';
import { WholeCharacterDeltas } from './sse.js';

/** `/v1/chat/completions`: `chat.completion` bodies and `chat.completion.chunk` events, n choices. */
export class ChatEncoder implements SurfaceEncoder<ChatResponse> {
  readonly endsWithDone = true;
  private readonly choices: ChatChoice[];

  constructor(
    private readonly identity: ResponseIdentity,
    private readonly exchange: Exchange,
    n: number,
    private readonly streaming: boolean,
    private readonly includeUsage: boolean,
    logprobs = false,
  ) {
    this.choices = Array.from({ length: n }, (_, index) => new ChatChoice(index === 0, logprobs));
  }

  opening(): readonly StreamEvent[] {
    const opening = this.choices.map((_, index) => ({
      index,
      delta: { role: 'assistant', content: '' },
      logprobs: null,
      finish_reason: null,
    }));
    return [{ data: chatChunk(this.identity, opening) }];
  }

  onEvent(index: number, event: ChatResponse): readonly StreamEvent[] {
    const choice = this.choices[index].apply(event, this.exchange, index, this.streaming);
    return choice && this.streaming ? [{ data: chatChunk(this.identity, [choice]) }] : NO_EVENTS;
  }

  closing(): readonly StreamEvent[] {
    if (!this.includeUsage) return NO_EVENTS;
    return [{ data: chatChunk(this.identity, [], toOpenAiUsage(this.exchange.usage)) }];
  }

  collected(): object {
    return {
      id: this.identity.id,
      object: 'chat.completion',
      created: this.identity.created,
      model: this.identity.model,
      system_fingerprint: this.identity.systemFingerprint || null,
      choices: this.choices.map((choice, index) => choice.toChoice(index)),
      usage: toOpenAiUsage(this.exchange.usage),
    };
  }

  failure(error: ApiError): readonly StreamEvent[] {
    return [{ data: error.toBody() }];
  }
}

/** One chat choice: turns worker events into stream deltas and keeps the collected message. */
class ChatChoice {
  private readonly logprobs: ChoiceLogprobs;

  constructor(
    private readonly countsPrompt: boolean,
    logprobs: boolean,
  ) {
    this.logprobs = new ChoiceLogprobs(logprobs);
  }

  private content = '';
  private reasoning = '';
  private readonly toolCalls: ToolCall[] = [];
  private finish: Finish | null = null;
  private readonly text = new WholeCharacterDeltas();
  private readonly thoughts = new WholeCharacterDeltas();

  apply(event: ChatResponse, exchange: Exchange, index: number, streaming: boolean): object | null {
    switch (event.event) {
      case 'textDelta': {
        exchange.onToken();
        const piece = this.text.push(event.textDelta);
        this.content += piece;
        if (!streaming || !piece) return null;
        return {
          index,
          delta: { content: piece },
          logprobs: this.logprobs.enabled ? this.logprobs.chat(this.logprobs.take()) : null,
          finish_reason: null,
        };
      }
      case 'logprobs': {
        this.logprobs.push(event.logprobs.tokens ?? []);
        return null;
      }
      case 'reasoningDelta': {
        exchange.onToken();
        const piece = this.thoughts.push(event.reasoningDelta);
        this.reasoning += piece;
        return streaming && piece
          ? { index, delta: { reasoning_content: piece }, logprobs: null, finish_reason: null }
          : null;
      }
      case 'toolCall': {
        exchange.onToken();
        this.toolCalls.push(event.toolCall);
        const call = { index: this.toolCalls.length - 1, ...toOpenAiToolCall(event.toolCall) };
        return streaming
          ? { index, delta: { tool_calls: [call] }, logprobs: null, finish_reason: null }
          : null;
      }
      case 'finish': {
        this.finish = event.finish;
        addUsage(exchange.usage, event.finish.usage, this.countsPrompt);
        exchange.onFinish(event.finish.model);
        const rest = this.text.flush();
        this.content += rest;
        const late = this.logprobs.take();
        return {
          index,
          delta: rest ? { content: rest } : {},
          logprobs: this.logprobs.enabled && (rest || late.length > 0) ? this.logprobs.chat(late) : null,
          finish_reason: this.finishReason(),
        };
      }
    }
  }

  toChoice(index: number) {
    return {
      index,
      message: {
        role: 'assistant',
        content: this.content.length > 0 || this.toolCalls.length === 0 ? this.content : null,
        refusal: null,
        ...(this.reasoning ? { reasoning_content: this.reasoning } : {}),
        ...(this.toolCalls.length > 0 ? { tool_calls: this.toolCalls.map(toOpenAiToolCall) } : {}),
      },
      logprobs: this.logprobs.chat(),
      finish_reason: this.finishReason(),
    };
  }

  private finishReason() {
    if (!this.finish) throw ApiError.internal('The worker ended the generation without a result.');
    if (this.toolCalls.length > 0) return 'tool_calls' as const;
    return FINISH_REASON[this.finish.finishReason];
  }
}
