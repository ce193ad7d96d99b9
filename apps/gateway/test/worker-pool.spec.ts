// Routing logic against FAKE in-process gRPC workers (test/fake-worker.ts): least-loaded choice, retry
// before the first token, dead-worker removal, bounded queue → 429 / 503, cancellation freeing the slot.
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import type { ChatResponse } from '@airlock/contracts';
import { ApiError } from '../src/errors/api-error.js';
import { generate } from '../src/workers/generation.js';
import { WorkerPool } from '../src/workers/worker-pool.js';
import { FakeWorker } from './fake-worker.js';

const logger = pino({ level: 'silent' });
const request = {
  model: 'm',
  tenant: 'default',
  messages: [{ role: 'CHAT_ROLE_USER' as const, content: 'x' }],
};

function poolOf(options: Partial<{ queueCapacity: number; queueTimeoutMs: number }> = {}): WorkerPool {
  return new WorkerPool({
    statusIntervalMs: 100,
    queueCapacity: 4,
    queueTimeoutMs: 2_000,
    logger,
    ...options,
  });
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  if (!check()) throw new Error('condition not reached');
}

function run(pool: WorkerPool, signal = new AbortController().signal) {
  return generate<ChatResponse>(
    pool,
    { model: 'm', signal, attempts: 3, requestTimeoutMs: 10_000, idleTimeoutMs: 10_000 },
    (client, deadline) => client.chat(request, deadline),
  );
}

async function collect(pool: WorkerPool, signal?: AbortSignal): Promise<ChatResponse[]> {
  const events: ChatResponse[] = [];
  for await (const event of run(pool, signal)) events.push(event);
  return events;
}

describe('WorkerPool', () => {
  const workers: FakeWorker[] = [];
  let pool: WorkerPool;

  afterEach(async () => {
    pool?.close();
    await Promise.all(workers.splice(0).map((w) => w.stop()));
  });

  async function startWorkers(...list: FakeWorker[]): Promise<void> {
    workers.push(...list);
    await Promise.all(list.map((w) => w.start()));
    pool = poolOf();
    pool.start();
    pool.setEndpoints(list.map((w) => ({ address: w.address })));
    await until(() => pool.list().every((w) => w.alive));
  }

  it('spreads concurrent requests over the least-loaded workers', async () => {
    await startWorkers(
      new FakeWorker('a', { hold: true, slots: 2 }),
      new FakeWorker('b', { hold: true, slots: 2 }),
    );
    const streams = Array.from({ length: 4 }, () => run(pool));
    const firsts = streams.map((s) => s.next());
    await until(() => workers[0].chats + workers[1].chats === 4);
    expect([workers[0].chats, workers[1].chats]).toEqual([2, 2]);
    workers.forEach((w) => w.releaseAll());
    await Promise.all(firsts);
    await Promise.all(
      streams.map(async (s) => {
        for await (const _ of s) void _;
      }),
    );
  });

  it('retries on another worker when one refuses before the first token', async () => {
    await startWorkers(
      new FakeWorker('busy', { failWith: grpc.status.RESOURCE_EXHAUSTED, slots: 4 }),
      new FakeWorker('ok', { slots: 1 }),
    );
    // Four requests: the busy worker (more slots, so preferred) refuses, the other one serves all.
    const results = await Promise.all(Array.from({ length: 4 }, () => collect(pool)));
    for (const events of results) expect(events.at(-1)?.event).toBe('finish');
    expect(workers[0].chats).toBeGreaterThan(0);
    expect(workers[1].chats).toBe(4);
  });

  it('takes a dead worker out and serves from the others', async () => {
    await startWorkers(new FakeWorker('dies', { slots: 4 }), new FakeWorker('lives', { slots: 1 }));
    await workers[0].stop();
    const events = await collect(pool);
    expect(events.at(-1)?.event).toBe('finish');
    await until(() => !pool.list().find((w) => w.address === workers[0].address)!.alive);
  });

  it('answers 404 for an unknown model and 503 when no worker is alive', async () => {
    await startWorkers(new FakeWorker('a'));
    await expect(pool.acquire('nope', new Set())).rejects.toMatchObject({
      status: 404,
      code: 'model_not_found',
    });
    await workers[0].stop();
    await until(() => !pool.list()[0].alive);
    await expect(pool.acquire('m', new Set())).rejects.toMatchObject({ status: 503 });
  });

  it('queues past capacity and answers 429 with Retry-After when the queue is full', async () => {
    workers.push(new FakeWorker('one', { hold: true, slots: 1 }));
    await workers[0].start();
    pool = poolOf({ queueCapacity: 1, queueTimeoutMs: 5_000 });
    pool.start();
    pool.setEndpoints([{ address: workers[0].address }]);
    await until(() => pool.list()[0].alive);
    // One slot plus one pipelined request fill the worker; the third waits, the fourth is refused.
    const held = [run(pool), run(pool)];
    const heldFirsts = held.map((s) => s.next());
    await until(() => workers[0].chats === 2);
    const waiting = run(pool);
    const waitingFirst = waiting.next();
    await until(() => pool.queuedCount('m') === 1);
    const refused = (await pool.acquire('m', new Set()).catch((e: unknown) => e)) as ApiError;
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    // Finishing the held requests frees their slots: the waiting one is dispatched.
    workers[0].releaseAll();
    await Promise.all(heldFirsts);
    for (const stream of held) for await (const _ of stream) void _;
    await until(() => workers[0].chats === 3);
    workers[0].releaseAll();
    await waitingFirst;
    for await (const _ of waiting) void _;
  });

  it('cancels the worker call when the client aborts, freeing the slot', async () => {
    await startWorkers(new FakeWorker('a', { hold: true, slots: 1 }));
    const abort = new AbortController();
    const stream = run(pool, abort.signal);
    expect((await stream.next()).value).toEqual({ event: 'textDelta', textDelta: 'hello' });
    abort.abort();
    await expect(stream.next()).rejects.toBeDefined();
    await until(() => workers[0].cancelled === 1);
    expect(pool.list()[0].inFlight.get('m')).toBe(0);
  });

  it('routes a prompt_cache_key back to the worker that served it while it has room', async () => {
    await startWorkers(new FakeWorker('a', { slots: 2 }), new FakeWorker('b', { slots: 2 }));
    const first = await pool.acquire('m', new Set(), undefined, 'tenant\u0000conversation');
    const served = first.worker.address;
    first.release();
    // Load the served worker: without the key the next request goes to the other one...
    const busy = await pool.acquire('m', new Set());
    expect(busy.worker.address).toBe(served);
    const unkeyed = await pool.acquire('m', new Set());
    expect(unkeyed.worker.address).not.toBe(served);
    unkeyed.release();
    // ...with it, to the worker whose KV cache holds the prefix, although it is the busier one.
    const keyed = await pool.acquire('m', new Set(), undefined, 'tenant\u0000conversation');
    expect(keyed.worker.address).toBe(served);
    const other = await pool.acquire('m', new Set(), undefined, 'tenant\u0000another');
    expect(other.worker.address).not.toBe(served);
    [busy, keyed, other].forEach((lease) => lease.release());
  });
});
