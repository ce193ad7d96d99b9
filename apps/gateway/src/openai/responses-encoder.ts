import type { ChatResponse, Finish } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import type { Exchange } from '../inference/exchange.js';
import { NO_EVENTS, type StreamEvent, type SurfaceEncoder } from '../inference/surface-encoder.js';
import {
  outputItemId,
  responseObject,
  type FunctionCallItem,
  type OutputItem,
  type OutputMessage,
  type ReasoningItem,
  type ResponseHeader,
  type ResponseObject,
  type ResponseState,
} from './response-object.js';
import { addUsage } from './responses.js';
import { WholeCharacterDeltas } from './sse.js';

/** The message or reasoning item text is streaming into, with its place in `output`. */
interface OpenItem {
  item: OutputMessage | ReasoningItem;
  index: number;
  text: string;
  deltas: WholeCharacterDeltas;
}

/**
 * `/v1/responses`: worker chat events → output items (reasoning, message, function calls) and OpenAI's
 * event sequence: response.created, response.in_progress, then per item output_item.added,
 * content_part.added, output_text.delta…, output_text.done, content_part.done, output_item.done, and
 * response.completed (or response.incomplete at the token limit), every event numbered.
 */
export class ResponsesEncoder implements SurfaceEncoder<ChatResponse> {
  readonly endsWithDone = false;
  private sequence = 0;
  private readonly output: OutputItem[] = [];
  private open: OpenItem | null = null;
  private finish: Finish | null = null;
  private calls = 0;

  constructor(
    private readonly header: ResponseHeader,
    private readonly exchange: Exchange,
    private readonly streaming: boolean,
    /** Runs once the answer is whole, before it is sent (storing it). */
    private readonly onSettle?: (response: ResponseObject) => Promise<void>,
  ) {}

  opening(): readonly StreamEvent[] {
    const response = responseObject(this.header, this.state('in_progress'));
    return [this.event('response.created', { response }), this.event('response.in_progress', { response })];
  }

  onEvent(_index: number, event: ChatResponse): readonly StreamEvent[] {
    const events: StreamEvent[] = [];
    switch (event.event) {
      case 'textDelta':
        this.exchange.onToken();
        this.append('message', event.textDelta, events);
        break;
      case 'reasoningDelta':
        this.exchange.onToken();
        this.append('reasoning', event.reasoningDelta, events);
        break;
      case 'toolCall': {
        this.exchange.onToken();
        // parallel_tool_calls: false asks for at most one call per response.
        if (this.header.parsed.body.parallel_tool_calls === false && this.calls > 0) break;
        this.calls++;
        this.close(events);
        const call = event.toolCall;
        const item: FunctionCallItem = {
          id: outputItemId('fc', this.header.id, this.output.length),
          type: 'function_call',
          status: 'in_progress',
          call_id: call.id,
          name: call.name,
          arguments: '',
        };
        const index = this.output.push(item) - 1;
        const at = { item_id: item.id, output_index: index };
        events.push(this.event('response.output_item.added', { output_index: index, item: { ...item } }));
        item.arguments = call.argumentsJson;
        item.status = 'completed';
        events.push(this.event('response.function_call_arguments.delta', { ...at, delta: item.arguments }));
        events.push(
          this.event('response.function_call_arguments.done', {
            ...at,
            name: item.name,
            arguments: item.arguments,
          }),
        );
        events.push(this.event('response.output_item.done', { output_index: index, item: { ...item } }));
        break;
      }
      case 'finish':
        this.finish = event.finish;
        addUsage(this.exchange.usage, event.finish.usage);
        this.exchange.onFinish(event.finish.model);
        this.close(events);
        break;
    }
    return this.streaming ? events : NO_EVENTS;
  }

  async settle(): Promise<void> {
    await this.onSettle?.(this.collected());
  }

  closing(): readonly StreamEvent[] {
    const response = this.collected();
    return [
      this.event(response.status === 'incomplete' ? 'response.incomplete' : 'response.completed', {
        response,
      }),
    ];
  }

  collected(): ResponseObject {
    if (!this.finish) throw ApiError.internal('The worker ended the generation without a result.');
    const status = this.finish.finishReason === 'FINISH_REASON_LENGTH' ? 'incomplete' : 'completed';
    return responseObject(this.header, {
      ...this.state(status),
      usage: this.exchange.usage,
      completedAt: status === 'completed' ? Math.floor(Date.now() / 1000) : null,
    });
  }

  /** A failed response (its state so far), then an `error` event, which the SDKs raise. */
  failure(error: ApiError): readonly StreamEvent[] {
    const code = error.status >= 500 ? 'server_error' : (error.code ?? 'invalid_request');
    const response = responseObject(this.header, {
      ...this.state('failed'),
      error: { code, message: error.message },
    });
    return [
      this.event('response.failed', { response }),
      this.event('error', { code: error.code, message: error.message, param: error.param }),
    ];
  }

  private state(status: ResponseState['status']): ResponseState {
    return {
      status,
      output: this.output.map((item) => structuredClone(item)),
      usage: null,
      error: null,
      completedAt: null,
    };
  }

  /** Text into the open item of that kind, opening one (and closing another kind) first. */
  private append(kind: 'message' | 'reasoning', delta: string, events: StreamEvent[]): void {
    if (!delta) return;
    if (this.open?.item.type !== kind) {
      this.close(events);
      this.start(kind, events);
    }
    const open = this.open!;
    const piece = open.deltas.push(delta);
    if (!piece) return;
    open.text += piece;
    events.push(this.delta(open, piece));
  }

  private start(kind: 'message' | 'reasoning', events: StreamEvent[]): void {
    const item: OutputMessage | ReasoningItem =
      kind === 'message'
        ? {
            id: outputItemId('msg', this.header.id, this.output.length),
            type: 'message',
            status: 'in_progress',
            role: 'assistant',
            content: [],
          }
        : {
            id: outputItemId('rs', this.header.id, this.output.length),
            type: 'reasoning',
            status: 'in_progress',
            summary: [],
            content: [],
          };
    const index = this.output.push(item) - 1;
    this.open = { item, index, text: '', deltas: new WholeCharacterDeltas() };
    events.push(
      this.event('response.output_item.added', { output_index: index, item: structuredClone(item) }),
    );
    events.push(
      this.event('response.content_part.added', {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: this.part(kind, ''),
      }),
    );
  }

  /** Ends the open item: the last held-back character, the done events, the item's final form. */
  private close(events: StreamEvent[]): void {
    const open = this.open;
    if (!open) return;
    this.open = null;
    const rest = open.deltas.flush();
    if (rest) {
      open.text += rest;
      events.push(this.delta(open, rest));
    }
    const kind = open.item.type;
    const at = { item_id: open.item.id, output_index: open.index, content_index: 0 };
    const part = this.part(kind, open.text);
    if (open.item.type === 'message') {
      open.item.content = [part as OutputMessage['content'][number]];
      events.push(this.event('response.output_text.done', { ...at, text: open.text, logprobs: [] }));
    } else {
      open.item.content = [part as ReasoningItem['content'][number]];
      events.push(this.event('response.reasoning_text.done', { ...at, text: open.text }));
    }
    // A message cut off by max_output_tokens is incomplete, as OpenAI marks it.
    open.item.status = this.finish?.finishReason === 'FINISH_REASON_LENGTH' ? 'incomplete' : 'completed';
    events.push(this.event('response.content_part.done', { ...at, part }));
    events.push(
      this.event('response.output_item.done', { output_index: open.index, item: structuredClone(open.item) }),
    );
  }

  private part(kind: 'message' | 'reasoning', text: string) {
    return kind === 'message'
      ? { type: 'output_text' as const, text, annotations: [], logprobs: [] }
      : { type: 'reasoning_text' as const, text };
  }

  private delta(open: OpenItem, delta: string): StreamEvent {
    const at = { item_id: open.item.id, output_index: open.index, content_index: 0 };
    return open.item.type === 'message'
      ? this.event('response.output_text.delta', { ...at, delta, logprobs: [] })
      : this.event('response.reasoning_text.delta', { ...at, delta });
  }

  /** Every event names its type on the `event:` line and in the data, with the next sequence number. */
  private event(type: string, fields: object): StreamEvent {
    return { event: type, data: { type, sequence_number: this.sequence++, ...fields } };
  }
}
