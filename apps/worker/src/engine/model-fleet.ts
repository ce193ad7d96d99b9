import { access } from 'node:fs/promises';
import type { Llama } from 'node-llama-cpp';
import { ModelSignatureError, type GetStatusResponse } from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';
import type { ModelSpec } from '../catalog/model-catalog.js';
import { FileDigestCache } from '../catalog/file-digest.js';
import { checkModelSignature } from '../catalog/model-signature.js';
import { availableCpus } from './available-cpus.js';
import type { LlamaRuntime } from './llama-runtime.js';
import { ModelRunner } from './model-runner.js';
import { draining, modelNotFound } from './worker-errors.js';
import { WorkerMetrics } from './worker-metrics.js';

/**
 * Every model this worker owns, and the worker-wide lifecycle: load (checksums first), serve, drain.
 * A model that fails to load is reported as failed while the others keep serving.
 */
export class ModelFleet {
  readonly metrics: WorkerMetrics;
  private readonly runners = new Map<string, ModelRunner>();
  private isDraining = false;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private loading?: Promise<void>;
  private readonly shutdown = new AbortController();

  constructor(
    specs: ModelSpec[],
    private readonly runtime: LlamaRuntime,
    private readonly digests: FileDigestCache,
    private readonly workerId: string,
    private readonly logger: Logger,
  ) {
    this.metrics = new WorkerMetrics(() => [...this.runners.values()].map((runner) => runner.status()));
    const cpus = availableCpus();
    for (const spec of specs) {
      const threads = Math.min(spec.threads ?? cpus, cpus);
      this.runners.set(spec.id, new ModelRunner(spec, threads, this.metrics, logger));
    }
  }

  /** Starts loading every model, one after another (each may need most of the node's memory). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      for (const runner of this.runners.values()) await this.loadOne(runner);
    })();
    return this.loading;
  }

  /** Ready for traffic: nothing still loading, at least one model serving, not draining. */
  get ready(): boolean {
    const runners = [...this.runners.values()];
    return !this.isDraining && runners.every((r) => r.settled) && runners.some((r) => r.ready);
  }

  get draining(): boolean {
    return this.isDraining;
  }

  /** The runner for a request; refuses new work once draining. */
  runnerFor(modelId: string): ModelRunner {
    if (this.isDraining) throw draining();
    const runner = this.runners.get(modelId);
    if (!runner) throw modelNotFound(modelId);
    return runner;
  }

  status(): GetStatusResponse {
    return {
      workerId: this.workerId,
      draining: this.isDraining,
      models: [...this.runners.values()].map((runner) => runner.status()),
    };
  }

  /** Aborted when the worker stops for good: generations still running then are cut off. */
  get shutdownSignal(): AbortSignal {
    return this.shutdown.signal;
  }

  abortAll(reason: Error): void {
    this.isDraining = true;
    for (const runner of this.runners.values()) runner.rejectWaiting(reason);
    this.shutdown.abort(reason);
  }

  /** Counts a request as in flight until the returned function is called. */
  track(): () => void {
    this.inFlight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight--;
      if (this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    };
  }

  /**
   * SIGTERM: stop taking work, refuse what is queued, let running generations finish for up to
   * `timeoutMs`. Resolves true when everything finished in time.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.isDraining = true;
    for (const runner of this.runners.values()) runner.rejectWaiting(draining());
    if (this.inFlight === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return finished;
  }

  async dispose(): Promise<void> {
    await this.loading?.catch(() => undefined);
    for (const runner of this.runners.values()) await runner.dispose();
    await this.runtime.dispose();
  }

  /**
   * The fingerprint needs the file's SHA-256: the catalog's when given (already checked), else hashed in
   * the background (cached by the digest cache) so that serving does not wait for a large file.
   */
  private identify(runner: ModelRunner, llama: Llama): void {
    const { spec } = runner;
    if (spec.sha256) {
      runner.identify(spec.sha256, llama);
      return;
    }
    this.digests.sha256(spec.path).then(
      (digest) => runner.identify(digest, llama),
      (error: unknown) =>
        this.logger.warn({ model: spec.id, err: (error as Error).message }, 'cannot hash model file'),
    );
  }

  private async loadOne(runner: ModelRunner): Promise<void> {
    const { spec } = runner;
    try {
      await access(spec.path);
    } catch {
      runner.fail(`model file ${spec.path} does not exist or cannot be read`);
      this.logger.error({ model: spec.id, file: spec.path }, 'model file missing');
      return;
    }
    if (spec.sha256 || spec.signature) {
      const actual = await this.digests.sha256(spec.path);
      if (spec.sha256 && actual !== spec.sha256) {
        runner.fail(`sha256 mismatch for ${spec.path}: catalog expects ${spec.sha256}, file has ${actual}`);
        this.logger.error(
          { model: spec.id, expected: spec.sha256, actual },
          'model checksum mismatch; not loading',
        );
        return;
      }
      if (spec.signature) {
        try {
          const verified = await checkModelSignature({ ...spec, signature: spec.signature }, actual);
          this.logger.info(
            { model: spec.id, modelDigest: verified.modelDigest, signer: verified.signer },
            'model signature verified',
          );
        } catch (error) {
          if (!(error instanceof ModelSignatureError)) throw error;
          runner.fail(`model signature refused for ${spec.path}: ${error.message}`);
          this.logger.error(
            { model: spec.id, reason: error.message },
            'model signature refused; not loading',
          );
          return;
        }
      }
    }
    // Every part of a split GGUF is checked, not only the first one that the catalog names.
    for (const part of spec.parts) {
      const actual = await this.digests.sha256(part.path).catch(() => undefined);
      if (actual !== part.sha256) {
        runner.fail(
          actual === undefined
            ? `model part ${part.path} does not exist or cannot be read`
            : `sha256 mismatch for ${part.path}: catalog expects ${part.sha256}, file has ${actual}`,
        );
        this.logger.error({ model: spec.id, file: part.path }, 'model part missing or changed; not loading');
        return;
      }
    }
    try {
      const llama = await this.runtime.get(spec.gpu);
      await runner.load(llama);
      if (runner.ready) this.identify(runner, llama);
    } catch (error) {
      runner.fail(`cannot start the ${spec.gpu} backend: ${(error as Error).message}`);
      this.logger.error(
        { model: spec.id, gpu: spec.gpu, err: (error as Error).message },
        'backend unavailable',
      );
    }
  }
}
