import type { Llama } from 'node-llama-cpp';
import type { GetStatusResponse, ModelProvenance, ModelStatus } from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';
import type { ModelSpec } from '../catalog/model-catalog.js';
import { FileDigestCache } from '../catalog/file-digest.js';
import { ModelRefusedError, ModelVerification } from '../catalog/model-verification.js';
import { availableCpus } from './available-cpus.js';
import type { LlamaRuntime } from './llama-runtime.js';
import { VocabularyTokenizer } from './vocabulary-tokenizer.js';
import { LlamaServerRunner } from './llama-server-runner.js';
import type { ModelEngine } from './model-engine.js';
import { ModelRunner } from './model-runner.js';
import { draining, modelNotFound, modelNotReady } from './worker-errors.js';
import { WorkerMetrics } from './worker-metrics.js';

/**
 * Every model this worker owns, and the worker-wide lifecycle: load (checksums first), serve, drain.
 * A model that fails to load is reported as failed while the others keep serving.
 */
export class ModelFleet {
  readonly metrics: WorkerMetrics;
  private readonly runners = new Map<string, ModelEngine>();
  private isDraining = false;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private loading?: Promise<void>;
  private readonly shutdown = new AbortController();
  /** Models whose weights are verified and serving: what every answer from them says about its weights. */
  private readonly provenance = new Map<string, ModelProvenance>();
  private readonly verification: ModelVerification;

  constructor(
    specs: ModelSpec[],
    private readonly runtime: LlamaRuntime,
    digests: FileDigestCache,
    private readonly workerId: string,
    private readonly logger: Logger,
    /** llama-server, for models whose entry says `engine: llama-server`. */
    llamaServerBin = '',
  ) {
    this.verification = new ModelVerification(digests);
    this.metrics = new WorkerMetrics(() => [...this.runners.values()].map((runner) => this.statusOf(runner)));
    const cpus = availableCpus();
    for (const spec of specs) {
      const threads = Math.min(spec.threads ?? cpus, cpus);
      this.runners.set(
        spec.id,
        spec.engine === 'llama-server'
          ? new LlamaServerRunner(spec, threads, llamaServerBin, this.metrics, logger)
          : new ModelRunner(spec, threads, this.metrics, logger),
      );
    }
  }

  /** Starts loading every model, one after another (each may need most of the node's memory). */
  load(): Promise<void> {
    this.loading ??= (async () => {
      for (const runner of this.runners.values()) await this.loadOne(runner);
    })();
    return this.loading;
  }

  /** Ready for traffic: nothing still loading or being hashed, at least one model serving, not draining. */
  get ready(): boolean {
    const runners = [...this.runners.values()];
    return (
      !this.isDraining &&
      runners.every((r) => r.settled && (!r.ready || this.serving(r))) &&
      runners.some((r) => this.serving(r))
    );
  }

  /** Loaded by its engine and its weights verified. */
  private serving(runner: ModelEngine): boolean {
    return runner.ready && this.provenance.has(runner.spec.id);
  }

  /** The verified weights of a model that serves: carried in each of its answers. */
  provenanceOf(modelId: string): ModelProvenance {
    const provenance = this.provenance.get(modelId);
    if (!provenance) throw modelNotReady(modelId, 'its file is still being verified');
    return provenance;
  }

  get draining(): boolean {
    return this.isDraining;
  }

  /** The runner for a request; refuses new work once draining. */
  runnerFor(modelId: string): ModelEngine {
    if (this.isDraining) throw draining();
    const runner = this.runners.get(modelId);
    if (!runner) throw modelNotFound(modelId);
    // An engine may be ready before the hash of an unpinned file is: nothing is answered before it is known.
    if (runner.ready) this.provenanceOf(modelId);
    return runner;
  }

  status(): GetStatusResponse {
    return {
      workerId: this.workerId,
      draining: this.isDraining,
      models: [...this.runners.values()].map((runner) => this.statusOf(runner)),
    };
  }

  /** A model still being hashed is loading, whatever its engine says. */
  private statusOf(runner: ModelEngine): ModelStatus {
    const status = runner.status();
    const provenance = this.provenance.get(runner.spec.id);
    if (provenance) return { ...status, provenance };
    return status.state === 'MODEL_STATE_READY' ? { ...status, state: 'MODEL_STATE_LOADING' } : status;
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

  /** Hashes and checks before load, and the provenance every answer carries once the model serves. */
  private async loadOne(runner: ModelEngine): Promise<void> {
    const { spec } = runner;
    let known: ModelProvenance | undefined;
    try {
      known = await this.verification.beforeLoad(spec);
    } catch (error) {
      if (!(error instanceof ModelRefusedError)) throw error;
      this.refuse(runner, error);
      return;
    }
    // Unpinned by the catalog: the file is hashed while the engine loads it; the model serves once both are done.
    const hashing = known ? Promise.resolve(known) : this.verification.digestOf(spec);
    hashing.catch(() => undefined);
    // The same verified file goes to either engine.
    if (runner instanceof LlamaServerRunner) {
      await runner.load();
      if (!runner.ready) return;
      await this.attachVocabulary(runner);
      await this.serveOnceHashed(runner, hashing, (sha256) => runner.identify(sha256));
      return;
    }
    if (!(runner instanceof ModelRunner)) return;
    let llama: Llama;
    try {
      llama = await this.runtime.get(spec.gpu);
    } catch (error) {
      runner.fail(`cannot start the ${spec.gpu} backend: ${(error as Error).message}`);
      this.logger.error(
        { model: spec.id, gpu: spec.gpu, err: (error as Error).message },
        'backend unavailable',
      );
      return;
    }
    await runner.load(llama);
    if (!runner.ready) return;
    await this.serveOnceHashed(runner, hashing, (sha256) => runner.identify(sha256, llama));
  }

  /**
   * The model's vocabulary in this process for the llama-server engine (node-llama-cpp's CPU binding, no
   * weights), so that a request's prompt is tokenized without a round trip to the child. Without it llama-server
   * tokenizes every text, as before.
   */
  private async attachVocabulary(runner: LlamaServerRunner): Promise<void> {
    try {
      const llama = await this.runtime.get('cpu');
      const vocabulary = await llama.loadModel({ modelPath: runner.spec.path, vocabOnly: true });
      await runner.useVocabulary(new VocabularyTokenizer(vocabulary));
    } catch (error) {
      this.logger.warn(
        { model: runner.spec.id, err: (error as Error).message },
        'cannot load the vocabulary in process; llama-server tokenizes every text',
      );
    }
  }

  private async serveOnceHashed(
    runner: ModelEngine,
    hashing: Promise<ModelProvenance>,
    identify: (sha256: string) => void,
  ): Promise<void> {
    const { spec } = runner;
    try {
      const provenance = await hashing;
      identify(provenance.sha256);
      this.provenance.set(spec.id, provenance);
      this.logger.info(
        { model: spec.id, sha256: provenance.sha256, signer: provenance.signer || 'unsigned' },
        'model serving',
      );
    } catch (error) {
      if (!(error instanceof ModelRefusedError)) throw error;
      await runner.dispose();
      this.refuse(runner, error);
    }
  }

  private refuse(runner: ModelEngine, error: ModelRefusedError): void {
    runner.fail(error.message);
    const { reason, ...fields } = error.log;
    this.logger.error({ model: runner.spec.id, ...fields }, reason);
  }
}
