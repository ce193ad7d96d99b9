import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

/**
 * Server-sent events on a raw Node response: every event is written (and so flushed) as it comes, and a
 * slow reader applies backpressure back to the worker instead of growing a buffer here.
 */
export class SseWriter {
  constructor(
    private readonly response: ServerResponse,
    /** The reply's headers, read at open (the audit receipt is set only once the record is durable). */
    private readonly baseHeaders: () => OutgoingHttpHeaders = () => ({}),
  ) {}

  open(headers: OutgoingHttpHeaders = {}): void {
    this.response.writeHead(200, {
      ...this.baseHeaders(),
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.response.flushHeaders();
  }

  get closed(): boolean {
    return this.response.destroyed || this.response.writableEnded;
  }

  /** One event; `event` adds an `event:` line (the Responses API names each event's type there). */
  async send(data: unknown, event?: string): Promise<void> {
    const json = JSON.stringify(data);
    await this.write(event === undefined ? `data: ${json}\n\n` : `event: ${event}\ndata: ${json}\n\n`);
  }

  async done(): Promise<void> {
    await this.write('data: [DONE]\n\n');
    this.response.end();
  }

  end(): void {
    if (!this.response.writableEnded) this.response.end();
  }

  private async write(chunk: string): Promise<void> {
    if (this.closed) return;
    if (!this.response.write(chunk)) {
      await new Promise<void>((resolve) => {
        const settle = (): void => {
          this.response.off('drain', settle);
          this.response.off('close', settle);
          resolve();
        };
        this.response.on('drain', settle);
        this.response.on('close', settle);
      });
    }
  }
}

/**
 * Holds back a trailing high surrogate so that a character split across two deltas is sent whole.
 * (The worker sends whole UTF-8 characters; this keeps the gateway from ever emitting half of one.)
 */
export class WholeCharacterDeltas {
  private carry = '';

  push(delta: string): string {
    const text = this.carry + delta;
    const last = text.charCodeAt(text.length - 1);
    if (last >= 0xd800 && last <= 0xdbff) {
      this.carry = text.slice(-1);
      return text.slice(0, -1);
    }
    this.carry = '';
    return text;
  }

  flush(): string {
    const rest = this.carry;
    this.carry = '';
    return rest;
  }
}
