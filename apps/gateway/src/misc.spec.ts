import { HttpException } from '@nestjs/common';
import { pino } from 'pino';
import { CompletionRecorder, MAX_AUDIT_BODY_BYTES } from './auth/completion-recorder.js';
import type { CompletionRecord } from './auth/auth-audit.port.js';
import { ConfigError, loadGatewayConfig } from './config.js';
import { toApiError } from './errors/error.filter.js';
import { ApiError } from './errors/api-error.js';
import { WholeCharacterDeltas } from './openai/sse.js';
import { WaitQueue, WaitRejectedError } from './workers/wait-queue.js';

const silent = pino({ level: 'silent' });

describe('settings', () => {
  it('names the bad variable', () => {
    expect(() => loadGatewayConfig({ AIRLOCK_PORT: 'eighty' })).toThrow(/AIRLOCK_PORT/);
    expect(() => loadGatewayConfig({ AIRLOCK_WORKERS: 'nohost' })).toThrow(ConfigError);
    expect(() => loadGatewayConfig({ AIRLOCK_MODEL_MAX_TOKENS: 'a=x' })).toThrow(/AIRLOCK_MODEL_MAX_TOKENS/);
  });

  it('parses lists and per-model limits', () => {
    const config = loadGatewayConfig({
      AIRLOCK_WORKERS: 'a:1, b:2',
      AIRLOCK_MODEL_MAX_TOKENS: 'x=5,y=6',
      AIRLOCK_INTERNAL_PLAINTEXT: 'true',
    });
    expect(config.discovery).toEqual({ kind: 'static', workers: ['a:1', 'b:2'] });
    expect(config.modelMaxTokens).toEqual({ x: 5, y: 6 });
    expect(config.port).toBe(8080);
  });

  it('trusts no proxy unless told, and refuses anything but IPs and CIDRs', () => {
    const load = (proxies?: string) =>
      loadGatewayConfig({
        AIRLOCK_INTERNAL_PLAINTEXT: 'true',
        ...(proxies === undefined ? {} : { AIRLOCK_TRUSTED_PROXIES: proxies }),
      });
    expect(load().trustedProxies).toEqual([]);
    expect(load('10.42.0.0/16, fd00::/8,192.0.2.1').trustedProxies).toEqual([
      '10.42.0.0/16',
      'fd00::/8',
      '192.0.2.1',
    ]);
    for (const bad of ['ingress.local', '10.0.0.0/33', '10.0.0.1/8/1', '*']) {
      expect(() => load(bad)).toThrow(/AIRLOCK_TRUSTED_PROXIES/);
    }
  });
});

describe('error mapping', () => {
  it('keeps ApiErrors, maps framework statuses and hides everything else', () => {
    expect(toApiError(ApiError.unsupported('x')).toBody()).toEqual({
      error: {
        message: "Parameter 'x' is not supported by Airlock.",
        type: 'invalid_request_error',
        param: 'x',
        code: 'unsupported_parameter',
      },
    });
    expect(toApiError(Object.assign(new Error('too big'), { statusCode: 413 })).status).toBe(413);
    expect(toApiError(new HttpException('nope', 404)).code).toBe('not_found');
    const hidden = toApiError(new Error('database password is hunter2'));
    expect(hidden.status).toBe(500);
    expect(hidden.message).not.toContain('hunter2');
  });

  it('puts Retry-After on 429s', () => {
    expect(ApiError.rateLimited('slow down', 2.2).headers).toEqual({ 'retry-after': '3' });
  });
});

describe('WholeCharacterDeltas', () => {
  it('never emits half of a surrogate pair', () => {
    const deltas = new WholeCharacterDeltas();
    const emoji = '\u{1F600}';
    expect(deltas.push(`a${emoji[0]}`)).toBe('a');
    expect(deltas.push(`${emoji[1]}b`)).toBe(`${emoji}b`);
    expect(deltas.push(emoji[0])).toBe('');
    expect(deltas.flush()).toBe(emoji[0]);
  });
});

describe('WaitQueue', () => {
  it('serves in order, rejects when full, on timeout and on abort', async () => {
    const queue = new WaitQueue<number>(2, 50);
    const first = queue.wait();
    const abort = new AbortController();
    const second = queue.wait(abort.signal);
    await expect(queue.wait()).rejects.toEqual(new WaitRejectedError('queue_full'));
    let next = 1;
    queue.serve(() => (next <= 1 ? next++ : undefined));
    await expect(first).resolves.toBe(1);
    abort.abort();
    await expect(second).rejects.toMatchObject({ reason: 'aborted' });
    await expect(queue.wait()).rejects.toMatchObject({ reason: 'timeout' });
    expect(queue.length).toBe(0);
  });
});

describe('CompletionRecorder', () => {
  const record = { requestId: 'r1' } as CompletionRecord;

  it('retries a record until auth-audit commits it', async () => {
    let calls = 0;
    const delivered: number[] = [];
    const recorder = new CompletionRecorder(
      {
        complete: () => {
          calls++;
          return calls < 3 ? Promise.reject(new Error('unavailable')) : Promise.resolve();
        },
        recordRefusal: () => Promise.resolve(),
      },
      {
        maxBackoffMs: 5,
        initialBackoffMs: 1,
        logger: silent,
        onDelivered: (_r, attempts) => delivered.push(attempts),
      },
    );
    recorder.record(record);
    expect(recorder.pendingCount).toBe(1);
    expect(await recorder.flush(5_000)).toBe(0);
    expect(delivered).toEqual([3]);
  });

  it('holds a record until the next Authorize goes out (or its hold ends), so both share a commit', async () => {
    let sent = 0;
    const recorder = new CompletionRecorder(
      {
        complete: () => {
          sent++;
          return Promise.resolve();
        },
        recordRefusal: () => Promise.resolve(),
      },
      { maxBackoffMs: 5, logger: silent, holdMs: 60_000 },
    );
    recorder.record(record);
    recorder.record({ ...record, requestId: 'r2' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toBe(0);
    recorder.sendHeld();
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent).toBe(2);
    expect(await recorder.flush(1_000)).toBe(0);

    const timed = new CompletionRecorder(
      { complete: () => Promise.resolve(), recordRefusal: () => Promise.resolve() },
      { maxBackoffMs: 5, logger: silent, holdMs: 5, onDelivered: () => sent++ },
    );
    timed.record(record);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sent).toBe(3);
  });

  it('reports what is still undelivered when the flush times out', async () => {
    const recorder = new CompletionRecorder(
      { complete: () => Promise.reject(new Error('down')), recordRefusal: () => Promise.resolve() },
      { maxBackoffMs: 5, initialBackoffMs: 1, logger: silent },
    );
    recorder.record(record);
    expect(await recorder.flush(20)).toBe(1);
  });

  it('dead-letters a record no retry can commit instead of retrying it forever', async () => {
    let calls = 0;
    const dead: string[] = [];
    const recorder = new CompletionRecorder(
      {
        complete: () => {
          calls++;
          return Promise.reject(Object.assign(new Error('bad'), { code: 3 /* INVALID_ARGUMENT */ }));
        },
        recordRefusal: () => Promise.resolve(),
      },
      { maxBackoffMs: 5, initialBackoffMs: 1, logger: silent, onDeadLetter: (reason) => dead.push(reason) },
    );
    recorder.record(record);
    expect(await recorder.flush(5_000)).toBe(0);
    expect(calls).toBe(1);
    expect(dead).toEqual(['INVALID_ARGUMENT']);
  });

  it('is bounded: full at maxPending, and a response over the audit limit is cut and flagged, not refused', async () => {
    const sent: CompletionRecord[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const recorder = new CompletionRecorder(
      {
        complete: async (r) => {
          sent.push(r);
          await gate;
        },
        recordRefusal: () => Promise.resolve(),
      },
      { maxBackoffMs: 5, initialBackoffMs: 1, logger: silent, maxPending: 2 },
    );
    const big = Buffer.alloc(MAX_AUDIT_BODY_BYTES + 10, 0x61);
    recorder.record({ ...record, responseBody: big });
    expect(recorder.full).toBe(false);
    recorder.record(record);
    expect(recorder.full).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    release();
    expect(await recorder.flush(5_000)).toBe(0);
    expect(sent[0].responseBody.length).toBe(MAX_AUDIT_BODY_BYTES);
    expect(sent[0].responseBodyBytes).toBe(MAX_AUDIT_BODY_BYTES + 10);
    expect(recorder.full).toBe(false);
  });
});
