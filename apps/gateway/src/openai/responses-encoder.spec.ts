import type { ChatResponse } from '@airlock/contracts';
import { ApiError } from '../errors/api-error.js';
import type { Exchange } from '../inference/exchange.js';
import { ResponsesEncoder } from './responses-encoder.js';
import { parseResponsesRequest } from './responses-request.js';

// The encoder on scripted worker events: the reasoning path needs a Harmony model (gpt-oss), which no
// test here can load; the e2e suite covers the message path on a real model.

const limits = { maxN: 4, tokenLimits: () => ({ maxTokens: 100 }) };

/** Only what the encoder uses of an Exchange: the usage it fills and the token counters. */
function exchange(): Exchange {
  return {
    usage: { promptTokens: 0, completionTokens: 0, cachedTokens: 0 },
    onToken: () => undefined,
    onFinish: () => undefined,
  } as unknown as Exchange;
}

function encoder(body: object, streaming = true) {
  const parsed = parseResponsesRequest({ model: 'gpt-oss-20b', input: 'hi', ...body }, limits);
  return new ResponsesEncoder({ id: 'resp_test', createdAt: 1, store: false, parsed }, exchange(), streaming);
}

const finish = (
  reason: 'FINISH_REASON_STOP' | 'FINISH_REASON_LENGTH' = 'FINISH_REASON_STOP',
): ChatResponse => ({
  event: 'finish',
  finish: {
    finishReason: reason,
    usage: { promptTokens: 7, completionTokens: 5, cachedTokens: 0 },
    timeToFirstTokenMs: 1,
    queueWaitMs: 0,
  },
});

function run(enc: ResponsesEncoder, events: ChatResponse[]) {
  const out = [...enc.opening()];
  for (const event of events) out.push(...enc.onEvent(0, event));
  out.push(...enc.closing());
  return out;
}

describe('ResponsesEncoder', () => {
  it('turns reasoning deltas into a reasoning item before the message, each event numbered', () => {
    const enc = encoder({ reasoning: { effort: 'low' } });
    const events = run(enc, [
      { event: 'reasoningDelta', reasoningDelta: 'The user greets. ' },
      { event: 'reasoningDelta', reasoningDelta: 'Greet back.' },
      { event: 'textDelta', textDelta: 'Hel' },
      { event: 'textDelta', textDelta: 'lo!' },
      finish(),
    ]);
    expect(events.map((e) => e.event)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      'response.reasoning_text.delta',
      'response.reasoning_text.delta',
      'response.reasoning_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(events.map((e) => (e.data as { sequence_number: number }).sequence_number)).toEqual(
      events.map((_, i) => i),
    );
    const response = enc.collected();
    expect(response.status).toBe('completed');
    expect(response.reasoning).toEqual({ effort: 'low', summary: null });
    expect(response.output).toMatchObject([
      {
        type: 'reasoning',
        status: 'completed',
        summary: [],
        content: [{ type: 'reasoning_text', text: 'The user greets. Greet back.' }],
      },
      {
        type: 'message',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'Hello!' }],
      },
    ]);
    expect(response.usage).toMatchObject({ input_tokens: 7, output_tokens: 5, total_tokens: 12 });
  });

  it('keeps a surrogate pair split across deltas whole', () => {
    const enc = encoder({});
    const events = run(enc, [
      { event: 'textDelta', textDelta: 'a\ud83d' },
      { event: 'textDelta', textDelta: '\ude00b' },
      finish(),
    ]);
    const deltas = events
      .filter((e) => e.event === 'response.output_text.delta')
      .map((e) => (e.data as { delta: string }).delta);
    expect(deltas).toEqual(['a', '\ud83d\ude00b']);
  });

  it('emits function calls as items, at most one with parallel_tool_calls false', () => {
    const tools = [{ type: 'function', name: 'f', parameters: { type: 'object' } }];
    const call = (id: string): ChatResponse => ({
      event: 'toolCall',
      toolCall: { id, name: 'f', argumentsJson: '{"x":1}' },
    });
    const enc = encoder({ tools, parallel_tool_calls: false });
    const events = run(enc, [call('call_1'), call('call_2'), finish()]);
    expect(events.filter((e) => e.event === 'response.function_call_arguments.done')).toHaveLength(1);
    expect(enc.collected().output).toMatchObject([
      { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{"x":1}', status: 'completed' },
    ]);
    expect(
      run(encoder({ tools }), [call('a'), call('b'), finish()]).filter(
        (e) => e.event === 'response.output_item.done',
      ),
    ).toHaveLength(2);
  });

  it('ends at the token limit with response.incomplete and sends nothing when collecting', () => {
    const enc = encoder({ max_output_tokens: 5 }, false);
    expect(enc.onEvent(0, { event: 'textDelta', textDelta: 'abc' })).toHaveLength(0);
    enc.onEvent(0, finish('FINISH_REASON_LENGTH'));
    expect(enc.closing()[0].event).toBe('response.incomplete');
    expect(enc.collected()).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
      output: [{ type: 'message', status: 'incomplete' }],
    });
  });

  it('fails mid-stream with response.failed and an error event the SDKs raise', () => {
    const enc = encoder({});
    enc.onEvent(0, { event: 'textDelta', textDelta: 'par' });
    const events = enc.failure(
      new ApiError(504, 'server_error', 'The worker stopped producing tokens.', 'idle_timeout'),
    );
    expect(events.map((e) => e.event)).toEqual(['response.failed', 'error']);
    expect(events[0].data).toMatchObject({
      response: {
        status: 'failed',
        error: { code: 'server_error', message: 'The worker stopped producing tokens.' },
      },
    });
    expect(events[1].data).toMatchObject({ type: 'error', code: 'idle_timeout' });
  });
});
