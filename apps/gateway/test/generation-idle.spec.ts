// The idle timer of one generation (one timer per call, re-armed per event), against a FAKE in-process
// gRPC worker (test/fake-worker.ts): a worker that stops sending is cancelled with 504 idle_timeout, while a
// slow consumer that holds an event longer than the idle timeout is not mistaken for an idle worker.
import { pino } from 'pino';
import type { ChatResponse } from '@airlock/contracts';
import { ApiError } from '../src/errors/api-error.js';
import { generate } from '../src/workers/generation.js';
import { WorkerPool } from '../src/workers/worker-pool.js';
import { FakeWorker } from './fake-worker.js';

const IDLE_MS = 400;
const request = {
  model: 'm',
  tenant: 'default',
  messages: [{ role: 'CHAT_ROLE_USER' as const, content: 'x' }],
};

describe('generation idle timeout', () => {
  let worker: FakeWorker;
  let pool: WorkerPool;

  async function start(behaviour: ConstructorParameters<typeof FakeWorker>[1]): Promise<void> {
    worker = new FakeWorker('w1', behaviour);
    await worker.start();
    pool = new WorkerPool({
      statusIntervalMs: 100,
      queueCapacity: 4,
      queueTimeoutMs: 2_000,
      logger: pino({ level: 'silent' }),
    });
    pool.start();
    pool.setEndpoints([{ address: worker.address }]);
    for (let i = 0; i < 200 && !pool.list()[0]?.alive; i++) await new Promise((r) => setTimeout(r, 20));
  }

  afterEach(async () => {
    pool?.close();
    await worker?.stop();
  });

  function generation() {
    return generate<ChatResponse>(
      pool,
      {
        model: 'm',
        signal: new AbortController().signal,
        attempts: 1,
        requestTimeoutMs: 10_000,
        idleTimeoutMs: IDLE_MS,
      },
      (client, deadline) => client.chat(request, deadline),
    );
  }

  it('cancels a worker that stops sending, with 504 idle_timeout', async () => {
    await start({ deltas: ['a', 'b'], hold: true });
    const events: ChatResponse[] = [];
    const failure = await (async () => {
      for await (const event of generation()) events.push(event);
    })().catch((error: unknown) => error);
    expect(events.map((e) => e.event)).toEqual(['textDelta', 'textDelta']);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(504);
    expect((failure as ApiError).code).toBe('idle_timeout');
    // The cancel reached the worker, which freed its slot.
    for (let i = 0; i < 100 && worker.cancelled === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(worker.cancelled).toBe(1);
  });

  it('does not time out while the consumer holds an event longer than the idle timeout', async () => {
    // The worker sends three deltas and then waits; the reader holds the first delta for 2.5 idle periods
    // (a slow client), then lets the worker finish. A timer left running during the hold would cancel.
    await start({ deltas: ['a', 'b', 'c'], hold: true });
    const events: ChatResponse[] = [];
    for await (const event of generation()) {
      events.push(event);
      if (events.length === 1) {
        await new Promise((r) => setTimeout(r, IDLE_MS * 2.5));
        worker.releaseAll();
      }
    }
    expect(events.map((e) => e.event)).toEqual(['textDelta', 'textDelta', 'textDelta', 'finish']);
  });
});
