// Steady load through the official OpenAI SDK, as a real client sends it: streamed and whole chat answers
// (some without max_tokens, the SDK's default shape), legacy completions; no retries, so that every error the
// platform gives is seen. Each call has a deadline that only a hang reaches: it tells a hang from an error.
import OpenAI from 'openai';

/** How one call ended, as the client saw it. */
export interface CallResult {
  shape: string;
  /** The gateway's x-request-id and x-airlock-audit-sequence, when a response (or error) carried them. */
  requestId: string;
  sequence: number;
  /** HTTP status of the response; 0 when none came (connection refused or reset before the headers). */
  status: number;
  /** Streams: the chunks with content the client had received (each is one token here). */
  chunks: number;
  /** `ok`, `http_<status>:<code>`, `stream_error:<code>`, `connection`, `truncated` or `hang`. */
  outcome: string;
  startedAt: number;
  endedAt: number;
}

/** One kind of call; it writes what it has seen into `seen` as it goes (the headers before a stream is read). */
type Shape = {
  name: string;
  run: (client: OpenAI, signal: AbortSignal, seen: Partial<CallResult>) => Promise<void>;
};

const messages = [{ role: 'user' as const, content: 'Once upon a time' }];

function noteHeaders(seen: Partial<CallResult>, response: Response): void {
  seen.status = response.status;
  seen.requestId = response.headers.get('x-request-id') ?? '';
  seen.sequence = Number(response.headers.get('x-airlock-audit-sequence') ?? 0);
}

/** A stream is whole when a choice finished; one that just stops, without an error, is cut silently. */
async function drain(
  stream: AsyncIterable<{
    choices: { finish_reason?: string | null; delta?: { content?: string | null } }[];
  }>,
  seen: Partial<CallResult>,
): Promise<'ok' | 'truncated'> {
  let finished = false;
  seen.chunks = 0;
  for await (const chunk of stream) {
    if (chunk.choices.some((c) => c.delta?.content)) seen.chunks = (seen.chunks ?? 0) + 1;
    if (chunk.choices.some((c) => c.finish_reason)) finished = true;
  }
  return finished ? 'ok' : 'truncated';
}

export function loadShapes(model: string): Shape[] {
  return [
    {
      name: 'chat_stream_default',
      run: async (client, signal, seen) => {
        const { data, response } = await client.chat.completions
          .create({ model, messages, stream: true }, { signal })
          .withResponse();
        noteHeaders(seen, response);
        seen.outcome = await drain(data, seen);
      },
    },
    {
      // Not in the rotation: the stream a fault is timed to cut (end-of-sequence banned, so it runs long).
      name: 'chat_stream_long',
      run: async (client, signal, seen) => {
        const { data, response } = await client.chat.completions
          .create({ model, messages, max_tokens: 220, stream: true, logit_bias: { '2': -100 } }, { signal })
          .withResponse();
        noteHeaders(seen, response);
        seen.outcome = await drain(data, seen);
      },
    },
    {
      name: 'chat_short',
      run: async (client, signal, seen) => {
        const { response } = await client.chat.completions
          .create({ model, messages, max_tokens: 16 }, { signal })
          .withResponse();
        noteHeaders(seen, response);
        seen.outcome = 'ok';
      },
    },
    {
      name: 'chat_stream_short',
      run: async (client, signal, seen) => {
        const { data, response } = await client.chat.completions
          .create({ model, messages, max_tokens: 32, stream: true }, { signal })
          .withResponse();
        noteHeaders(seen, response);
        seen.outcome = await drain(data, seen);
      },
    },
    {
      name: 'chat_default',
      run: async (client, signal, seen) => {
        const { response } = await client.chat.completions
          .create({ model, messages }, { signal })
          .withResponse();
        noteHeaders(seen, response);
        seen.outcome = 'ok';
      },
    },
    {
      name: 'completion_short',
      run: async (client, signal, seen) => {
        const { response } = await client.completions
          .create({ model, prompt: 'Once upon a time', max_tokens: 8 }, { signal })
          .withResponse();
        noteHeaders(seen, response);
        seen.outcome = 'ok';
      },
    },
  ];
}

/** The client-side name of an error: what kind it was, and the API's error code when one came. */
function classify(error: unknown, hung: boolean): Partial<CallResult> {
  if (hung) return { outcome: 'hang' };
  if (error instanceof OpenAI.APIError && error.status !== undefined) {
    const header = (name: string): string | null =>
      (error.headers as globalThis.Headers | undefined)?.get(name) ?? null;
    const code = error.code ?? (error.error as { type?: string } | undefined)?.type ?? '';
    return {
      status: error.status,
      requestId: header('x-request-id') ?? '',
      sequence: Number(header('x-airlock-audit-sequence') ?? 0),
      outcome: `http_${error.status}:${code}`,
    };
  }
  if (error instanceof OpenAI.APIConnectionError) return { outcome: 'connection' };
  // An error event inside a 200 stream (the SDK raises it without a status).
  if (error instanceof OpenAI.APIError) return { outcome: `stream_error:${error.code ?? ''}` };
  // The body of a started response cut off (the connection reset mid-stream).
  return { outcome: 'connection' };
}

export class SteadyLoad {
  readonly results: CallResult[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private next = 0;
  private readonly client: OpenAI;
  private readonly shapes: Shape[];
  private readonly rotation: Shape[];

  constructor(
    baseURL: string,
    apiKey: string,
    model: string,
    private readonly options: {
      concurrency: number;
      deadlineMs: number;
      maxCalls: number;
      backoffMs: number;
    },
  ) {
    // No retries (every error counts); the SDK's own timeout stays above the hang deadline.
    this.client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: options.deadlineMs + 30_000 });
    this.shapes = loadShapes(model);
    this.rotation = this.shapes.filter((shape) => shape.name !== 'chat_stream_long');
  }

  get started(): number {
    return this.next;
  }

  start(): void {
    this.running = true;
    this.loops = Array.from({ length: this.options.concurrency }, () => this.loop());
  }

  /** Stops sending and waits for every call in flight to end (each ends by its deadline at the latest). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Resolves once `count` calls have ended since the load started. */
  async ended(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.results.length < count) {
      if (Date.now() > deadline) {
        const outcomes = this.results.map((r) => `${r.shape} ${r.outcome} ${r.endedAt - r.startedAt} ms`);
        throw new Error(`only ${this.results.length} of ${count} calls ended:\n${outcomes.join('\n')}`);
      }
      if (this.next >= this.options.maxCalls && this.results.length >= this.next)
        throw new Error(`all ${this.next} calls ended before ${count}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * One call of the given shape (default: the next in turn), recorded with the others; `seen` fills in as
   * it goes (a test can wait for a stream's first chunk).
   */
  async call(shapeName?: string, seen: Partial<CallResult> = {}): Promise<CallResult> {
    const shape = shapeName
      ? this.shapes.find((s) => s.name === shapeName)!
      : this.rotation[this.next % this.rotation.length];
    this.next += 1;
    const abort = new AbortController();
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      abort.abort();
    }, this.options.deadlineMs);
    const startedAt = Date.now();
    try {
      await shape.run(this.client, abort.signal, seen);
    } catch (error) {
      Object.assign(seen, classify(error, hung));
    } finally {
      clearTimeout(timer);
    }
    const result: CallResult = {
      shape: shape.name,
      requestId: '',
      sequence: 0,
      status: 0,
      chunks: 0,
      outcome: 'connection',
      ...seen,
      startedAt,
      endedAt: Date.now(),
    };
    this.results.push(result);
    return result;
  }

  private async loop(): Promise<void> {
    while (this.running && this.next < this.options.maxCalls) {
      const result = await this.call();
      // A client backs off after an error (as the SDK's retries would), rather than spinning on a refusal.
      if (result.outcome !== 'ok') await new Promise((r) => setTimeout(r, this.options.backoffMs));
    }
  }
}
