import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { status } from '@grpc/grpc-js';
import { writeLlamaGguf } from '@airlock/gguf';
import { findFreePort } from '@airlock/telemetry';
import { eventually, firstEvent, grpcCode, grpcReason, WorkerTestClient } from './worker-harness.js';

// Runs the built worker (apps/worker/dist/main.js, made by `npm test`'s build step) as a real process, on a
// generated model big enough that a generation is still running when SIGTERM arrives.
const MAIN = resolve('apps/worker/dist/main.js');

describe('worker process: drain on SIGTERM', () => {
  let child: ChildProcess;
  let exit: Promise<number | null>;
  let client: WorkerTestClient;
  let opsPort: number;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-drain-'));
    const model = join(dir, 'drain-model.gguf');
    await writeLlamaGguf(
      model,
      { layers: 8, embd: 512, heads: 8, kvHeads: 4, ff: 1024, ctx: 2048 },
      { tensorType: 'f16' },
    );
    const grpcPort = await findFreePort();
    opsPort = await findFreePort();
    child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        AIRLOCK_MODEL: model,
        AIRLOCK_DATA_DIR: dir,
        AIRLOCK_GRPC_PORT: String(grpcPort),
        AIRLOCK_OPS_PORT: String(opsPort),
        // Above the in-flight generation's time on a busy machine (the test's own bound below is larger still).
        AIRLOCK_DRAIN_TIMEOUT_SECONDS: '200',
        AIRLOCK_INTERNAL_PLAINTEXT: 'true',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    client = new WorkerTestClient(`127.0.0.1:${grpcPort}`);
    await eventually(
      async () => expect((await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status).toBe(200),
      30_000,
    );
  });

  afterAll(() => {
    client?.close();
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('goes unready, refuses new work, finishes the in-flight generation, then exits 0', async () => {
    const inFlight = client.open('complete', {
      model: 'drain-model',
      prompt: 'hello',
      sampling: { temperature: 0, maxTokens: 300 },
    });
    const result = client.collect(inFlight);
    await firstEvent(inFlight);

    child.kill('SIGTERM');
    await eventually(async () =>
      expect((await fetch(`http://127.0.0.1:${opsPort}/readyz`)).status).toBe(503),
    );
    const refused = await client
      .complete({ model: 'drain-model', prompt: 'x', sampling: { maxTokens: 1 } })
      .catch((e: unknown) => e);
    expect(grpcCode(refused)).toBe(status.UNAVAILABLE);
    expect(grpcReason(refused)).toBe('DRAINING');

    const finished = await result;
    expect(finished.finish?.finishReason).toBe('FINISH_REASON_LENGTH');
    expect(finished.finish?.usage.completionTokens).toBe(300);
    expect(await exit).toBe(0);
    // 300 tokens of the generated F16 model took over 60 s on 2 cores shared with the rest of the suite.
  }, 240_000);
});
