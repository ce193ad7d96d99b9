import { setTimeout as sleep } from 'node:timers/promises';
import type { IncomingMessage } from 'node:http';
import { readGgufFileInfo } from 'node-llama-cpp';
import type {
  ChatRequest,
  CompleteRequest,
  EmbedResponse,
  Finish,
  FinishReason,
  ModelStatus,
  SamplingParams,
} from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';
import type { ModelSpec } from '../catalog/model-catalog.js';
import { engineFingerprint } from './fingerprint.js';
import { generationBudget } from './generation-budget.js';
import { completionSampling, toFinishReason, toTokenLogprobs } from './llama-server-params.js';
import { LlamaServerHttpError, LlamaServerProcess, httpError, readText } from './llama-server-process.js';
import type { GenerationOptions, ModelEngine } from './model-engine.js';
import { MAX_EMBEDDING_INPUTS } from './model-runner.js';
import { SlotScheduler, type SlotLease } from './slot-scheduler.js';
import { ThroughputWindow } from './throughput-window.js';
import type { TokenizeOptions, VocabularyTokenizer } from './vocabulary-tokenizer.js';
import type { WorkerMetrics } from './worker-metrics.js';
import {
  contextExceeded,
  embeddingsNotServed,
  featureNotSupported,
  invalidArgument,
  modelNotReady,
  queueFull,
  WorkerError,
} from './worker-errors.js';

const DEFAULT_CONTEXT_SIZE = 4096;
/** Restarts tried, with growing pauses (0.25 s … 8 s), before the model is reported failed. */
const MAX_RESTART_ATTEMPTS = 6;
/** Chat templates with reasoning or tool syntax that this engine would pass through unparsed. */
const UNPARSED_TEMPLATE = /<\|channel\|>|<think>|<tool_call>/;

/**
 * llama-server logs ~8 info lines per request, which this worker would read and drop (it keeps only errors, to
 * say why a child died): errors alone.
 */
const ERRORS_ONLY = ['--log-verbosity', '1'];

type LoadState = 'MODEL_STATE_LOADING' | 'MODEL_STATE_READY' | 'MODEL_STATE_FAILED';

interface Slot {
  index: number;
  /** Whose tokens the llama-server slot holds (undefined: unknown or none). */
  tenant?: string;
  /** Tokens in the slot while a request holds it (for the KV-cache gauge). */
  usedTokens: number;
}

interface ServerInfo {
  contextSize: number;
  vocabularySize: number;
  modelBytes: number;
  chatTemplate: string;
  build: string;
}

interface StreamEvent {
  content?: string;
  tokens?: number[];
  stop?: boolean;
  stop_type?: string;
  truncated?: boolean;
  tokens_cached?: number;
  timings?: { cache_n?: number };
  completion_probabilities?: Parameters<typeof toTokenLogprobs>[0];
  error?: { type?: string };
}

/**
 * One model served by llama.cpp's own llama-server, run as this worker's child process (LlamaServerProcess),
 * behind the same contract as the in-process engine. The worker keeps the scheduling: its own bounded queue
 * in front of `parallel` llama-server slots, each request pinned to the slot it leased (`id_slot`).
 *
 * Tenant isolation: llama-server's cross-slot prompt cache is off (`--cache-ram 0`), its similarity-based slot
 * choice is bypassed (`id_slot`), and a slot's kept prompt is reused (`cache_prompt`) only for the tenant whose
 * request left it there; for anyone else llama-server evaluates the prompt from scratch.
 */
export class LlamaServerRunner implements ModelEngine {
  private state: LoadState = 'MODEL_STATE_LOADING';
  private loadError = '';
  private info?: ServerInfo;
  private fingerprint = '';
  private modelSha256?: string;
  private disposed = false;
  private readonly server: LlamaServerProcess;
  /** A second llama-server in embeddings mode (`embeddings: true`): one process cannot serve both well. */
  private readonly embedder?: LlamaServerProcess;
  private embeddingContextSize = 0;
  private readonly slots: Slot[];
  private readonly scheduler: SlotScheduler<Slot>;
  private readonly throughput = new ThroughputWindow();
  /** llama-server's own decode counters as last read (reset when it restarts). */
  private decodeSeen = { steps: 0, sequences: 0 };
  /** Times the child died and was started again. */
  restarts = 0;
  /** The model's vocabulary in this process (undefined: every text is tokenized by llama-server). */
  private vocabulary?: VocabularyTokenizer;
  /** Texts tokenized in this process rather than by llama-server (tests count them). */
  tokenizedInProcess = 0;
  private readonly tokenMetrics: {
    generated: { inc(n: number): void };
    perToken: { observe(seconds: number): void };
    firstToken: { observe(seconds: number): void };
  };

  constructor(
    readonly spec: ModelSpec,
    private readonly threads: number,
    bin: string,
    private readonly metrics: WorkerMetrics,
    private readonly logger: Logger,
  ) {
    this.slots = Array.from({ length: spec.parallel }, (_, index) => ({ index, usedTokens: 0 }));
    this.scheduler = new SlotScheduler(this.slots, spec.queueSize, () => queueFull(spec.id, spec.queueSize));
    this.server = new LlamaServerProcess(bin, [], (why) => this.onUnexpectedExit(why));
    if (spec.embeddings) {
      this.embedder = new LlamaServerProcess(bin, [], (why) => this.onUnexpectedExit(`embeddings ${why}`));
    }
    const labels = { model: spec.id };
    this.tokenMetrics = {
      generated: metrics.generatedTokens.labels(labels),
      perToken: metrics.timePerOutputToken.labels(labels),
      firstToken: metrics.timeToFirstToken.labels(labels),
    };
    metrics.onScrape(() => this.syncDecodeCounters());
  }

  get ready(): boolean {
    return this.state === 'MODEL_STATE_READY';
  }

  get settled(): boolean {
    return this.state !== 'MODEL_STATE_LOADING';
  }

  /** The child process (tests kill it to see the worker notice and recover). */
  get process() {
    return this.server.process;
  }

  fail(reason: string): void {
    this.state = 'MODEL_STATE_FAILED';
    this.loadError = reason;
  }

  /** Sets the system fingerprint from the model file's SHA-256 and llama-server's build. */
  identify(sha256: string): void {
    this.modelSha256 = sha256;
    if (this.info) {
      this.fingerprint = engineFingerprint(sha256, `llama-server@${this.info.build}/${this.spec.gpu}`);
    }
  }

  /** Starts llama-server on the (already verified) model file. */
  async load(): Promise<void> {
    const started = performance.now();
    try {
      const args = await this.serverArgs();
      this.server.setArgs(args);
      await this.server.start();
      if (this.embedder) {
        this.embeddingContextSize = Math.min(
          this.spec.contextSize ?? DEFAULT_CONTEXT_SIZE,
          await trainContextSize(this.spec.path),
        );
        this.embedder.setArgs(this.embedderArgs());
        await this.embedder.start();
      }
      await this.readInfo();
      this.state = 'MODEL_STATE_READY';
      const seconds = (performance.now() - started) / 1000;
      this.metrics.modelLoadSeconds.set({ model: this.spec.id }, seconds);
      this.logger.info(
        {
          model: this.spec.id,
          engine: 'llama-server',
          seconds,
          contextSize: this.info!.contextSize,
          parallel: this.spec.parallel,
          threads: this.threads,
        },
        'model loaded',
      );
    } catch (error) {
      this.state = 'MODEL_STATE_FAILED';
      this.loadError = `cannot load ${this.spec.path} on llama-server: ${(error as Error).message}`;
      this.logger.error({ model: this.spec.id, err: this.loadError }, 'model failed to load');
      await this.server.stop();
      await this.embedder?.stop();
    }
  }

  async chat(request: ChatRequest, options: GenerationOptions): Promise<Finish> {
    const info = this.requireReady();
    const tools = request.tools ?? [];
    const toolMode = request.toolChoiceMode ?? 'TOOL_CHOICE_MODE_UNSPECIFIED';
    if (request.toolChoiceFunction || (tools.length > 0 && toolMode !== 'TOOL_CHOICE_MODE_NONE')) {
      throw featureNotSupported(
        `tools are not supported by model "${this.spec.id}" (engine llama-server); serve it with engine node-llama-cpp`,
      );
    }
    const effort = request.reasoningEffort ?? 'REASONING_EFFORT_UNSPECIFIED';
    if (effort !== 'REASONING_EFFORT_UNSPECIFIED' && effort !== 'REASONING_EFFORT_NONE') {
      throw invalidArgument(`model "${this.spec.id}" has no reasoning effort setting (engine llama-server)`);
    }
    if (UNPARSED_TEMPLATE.test(info.chatTemplate)) {
      throw featureNotSupported(
        `chat on model "${this.spec.id}" needs its reasoning/tool format parsed: serve it with engine node-llama-cpp`,
      );
    }
    const messages = request.messages.map((message) => {
      if (message.role === 'CHAT_ROLE_TOOL' || (message.toolCalls ?? []).length > 0) {
        throw featureNotSupported(
          `tool calls in the conversation are not supported by model "${this.spec.id}" (engine llama-server)`,
        );
      }
      return { role: ROLE[message.role] ?? 'user', content: message.content ?? '' };
    });
    let prompt: string;
    try {
      prompt = (await this.server.json<{ prompt: string }>('POST', '/apply-template', { messages })).prompt;
    } catch (error) {
      if (error instanceof LlamaServerHttpError && error.status < 500) {
        // Fixed text: the template engine's message may quote the messages.
        throw invalidArgument('cannot apply the chat template to these messages');
      }
      throw this.engineFailure(error);
    }
    // The template's own special tokens (BOS, turn markers) are parsed as llama-server's chat endpoint does.
    const tokens = await this.tokens(prompt, { addSpecial: true, parseSpecial: true });
    return this.generate('chat', options, tokens, request.sampling);
  }

  async complete(request: CompleteRequest, options: GenerationOptions): Promise<Finish> {
    this.requireReady();
    if (request.echo && request.sampling?.logprobs) {
      throw featureNotSupported('echo with logprobs (log probabilities of the prompt) is not supported');
    }
    // Prompt text is text: "<s>" written by a client is not the BOS token (as node-llama-cpp tokenizes it).
    const tokens = await this.tokens(request.prompt, { addSpecial: true, parseSpecial: false });
    const echo = request.echo && request.prompt ? request.prompt : undefined;
    return this.generate('completion', options, tokens, request.sampling, echo);
  }

  async embed(inputs: string[], tokenInputs: number[][] = []): Promise<EmbedResponse> {
    const info = this.requireReady();
    const embedder = this.embedder;
    if (!embedder) throw embeddingsNotServed(this.spec.id);
    const count = inputs.length + tokenInputs.length;
    if (count === 0) throw invalidArgument('input must contain at least one text');
    if (count > MAX_EMBEDDING_INPUTS)
      throw invalidArgument(`input takes at most ${MAX_EMBEDDING_INPUTS} texts`);
    tokenInputs.forEach((ids, index) => {
      const bad = ids.find((id) => id >= info.vocabularySize);
      if (bad !== undefined) {
        throw invalidArgument(
          `input[${index}] has token ${bad}, outside the vocabulary of ${info.vocabularySize}`,
        );
      }
    });
    const tokenized = [...(await Promise.all(inputs.map((input) => this.tokenize(input)))), ...tokenInputs];
    tokenized.forEach((tokens, index) => {
      if (tokens.length === 0) throw invalidArgument(`input[${index}] is empty`);
      if (tokens.length + 1 > this.embeddingContextSize) {
        throw contextExceeded(this.spec.id, tokens.length + 1, this.embeddingContextSize);
      }
    });
    let answer: { index?: number; embedding: number[] | number[][] }[];
    try {
      answer = await embedder.json('POST', '/embedding', { content: tokenized });
    } catch (error) {
      throw this.engineFailure(error);
    }
    const embeddings = tokenized.map((_, index) => {
      const vector = (answer.find((item) => item.index === index) ?? answer[index]).embedding;
      // Pooled: one vector; unpooled models answer one per token, and the last token's stands for the text.
      const values = Array.isArray(vector[0]) ? (vector as number[][]).at(-1)! : (vector as number[]);
      return { values };
    });
    const promptTokens = tokenized.reduce((sum, tokens) => sum + tokens.length, 0);
    this.metrics.promptTokens.inc({ model: this.spec.id }, promptTokens);
    return { embeddings, promptTokens };
  }

  async tokenize(text: string): Promise<number[]> {
    this.requireReady();
    return this.tokens(text, { addSpecial: false, parseSpecial: false });
  }

  /** Tokenizes short texts in this process from now on (see VocabularyTokenizer); disposed with the runner. */
  async useVocabulary(vocabulary: VocabularyTokenizer): Promise<void> {
    // Unloaded while the vocabulary loaded: nobody would dispose it later.
    if (this.disposed) return vocabulary.dispose();
    this.vocabulary = vocabulary;
  }

  /** What llama-server's own /tokenize answers (long texts; tests compare it with the in-process answer). */
  async serverTokens(text: string, { addSpecial, parseSpecial }: TokenizeOptions): Promise<number[]> {
    try {
      const answer = await this.server.json<{ tokens: number[] }>('POST', '/tokenize', {
        content: text,
        add_special: addSpecial,
        parse_special: parseSpecial,
      });
      return answer.tokens;
    } catch (error) {
      throw this.engineFailure(error);
    }
  }

  status(): ModelStatus {
    const contextSize = this.info?.contextSize ?? 0;
    const capacity = contextSize * this.spec.parallel;
    const used = this.scheduler.busySlots().reduce((sum, slot) => sum + slot.usedTokens, 0);
    return {
      id: this.spec.id,
      state: this.state,
      loadProgress: this.state === 'MODEL_STATE_READY' ? 1 : 0,
      error: this.loadError,
      slotsTotal: this.spec.parallel,
      slotsBusy: this.scheduler.busy,
      queueLength: this.scheduler.queued,
      queueCapacity: this.spec.queueSize,
      kvCacheUsedTokens: used,
      kvCacheCapacityTokens: capacity,
      kvCacheUtilization: capacity > 0 ? used / capacity : 0,
      tokensPerSecond: this.throughput.tokensPerSecond(),
      vramUsedBytes: 0,
      ramUsedBytes: this.info?.modelBytes ?? 0,
      contextSize,
      servesEmbeddings: this.spec.embeddings,
      chatFormat: this.info ? 'llama-server-jinja' : '',
      systemFingerprint: this.fingerprint,
    };
  }

  rejectWaiting(error: Error): void {
    this.scheduler.rejectWaiting(error);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    this.scheduler.rejectWaiting(modelNotReady(this.spec.id, 'unloading'));
    await this.server.dispose();
    await this.embedder?.dispose();
    await this.vocabulary?.dispose();
  }

  private embedderArgs(): string[] {
    return [
      '--model',
      this.spec.path,
      '--embeddings',
      '--threads',
      String(this.threads),
      '--threads-batch',
      String(this.threads),
      '--parallel',
      '1',
      '--ctx-size',
      String(this.embeddingContextSize),
      '--batch-size',
      String(this.embeddingContextSize),
      '--ubatch-size',
      String(this.embeddingContextSize),
      '--cache-ram',
      '0',
      '--no-cache-prompt',
      '--no-slots',
      '--no-webui',
      '--offline',
      ...ERRORS_ONLY,
      ...(this.spec.gpu === 'cpu' ? ['--n-gpu-layers', '0'] : []),
    ];
  }

  private async serverArgs(): Promise<string[]> {
    const contextSize =
      this.spec.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, await trainContextSize(this.spec.path));
    const args = [
      '--model',
      this.spec.path,
      '--threads',
      String(this.threads),
      '--threads-batch',
      String(this.threads),
      '--parallel',
      String(this.spec.parallel),
      // Not unified: each slot gets exactly contextSize tokens, as a node-llama-cpp sequence does.
      '--ctx-size',
      String(contextSize * this.spec.parallel),
      '--no-kv-unified',
      '--no-context-shift',
      // Tenant isolation: no host-memory prompt cache shared by the slots, no similarity-based slot choice.
      '--cache-ram',
      '0',
      '--no-cache-idle-slots',
      '--slot-prompt-similarity',
      '0',
      '--metrics',
      '--no-slots',
      '--no-webui',
      '--jinja',
      '--offline',
      ...ERRORS_ONLY,
    ];
    const layers = this.spec.gpu === 'cpu' ? 0 : this.spec.gpuLayers;
    if (layers === 'max') args.push('--n-gpu-layers', 'all');
    else if (typeof layers === 'number') args.push('--n-gpu-layers', String(layers));
    if (this.spec.chatTemplate) {
      args.push(
        '--chat-template-file',
        await this.server.privateFile('chat-template.jinja', this.spec.chatTemplate),
      );
    }
    return args;
  }

  private async readInfo(): Promise<void> {
    const props = await this.server.json<{
      default_generation_settings?: { n_ctx?: number };
      chat_template?: string;
      build_info?: string;
    }>('GET', '/props');
    const models = await this.server.json<{ data?: { meta?: { n_vocab?: number; size?: number } }[] }>(
      'GET',
      '/v1/models',
    );
    const meta = models.data?.[0]?.meta ?? {};
    this.info = {
      contextSize: props.default_generation_settings?.n_ctx ?? 0,
      vocabularySize: meta.n_vocab ?? Number.MAX_SAFE_INTEGER,
      modelBytes: meta.size ?? 0,
      chatTemplate: props.chat_template ?? '',
      build: props.build_info ?? 'unknown',
    };
    if (this.modelSha256) this.identify(this.modelSha256);
  }

  private requireReady(): ServerInfo {
    if (this.state === 'MODEL_STATE_LOADING') {
      throw modelNotReady(this.spec.id, this.loadError || 'still loading');
    }
    if (this.state === 'MODEL_STATE_FAILED' || !this.info) {
      throw modelNotReady(this.spec.id, this.loadError || 'failed to load');
    }
    return this.info;
  }

  /** The text's tokens: in this process when it is short (one round trip less), else by llama-server. */
  async tokens(text: string, options: TokenizeOptions): Promise<number[]> {
    if (this.vocabulary?.takes(text)) {
      this.tokenizedInProcess += 1;
      return this.vocabulary.tokenize(text, options);
    }
    return this.serverTokens(text, options);
  }

  /**
   * Waits for a slot, streams one /completion on it and reports usage. The lease is released on every path;
   * a cancel (the signal) closes the connection, which is how llama-server learns to stop that slot.
   */
  private async generate(
    kind: 'chat' | 'completion',
    options: GenerationOptions,
    promptTokens: number[],
    sampling: SamplingParams | undefined,
    echo?: string,
  ): Promise<Finish> {
    const info = this.requireReady();
    const body: Record<string, unknown> = {
      ...completionSampling(sampling, info.vocabularySize),
      prompt: promptTokens,
      n_predict: generationBudget(this.spec.id, promptTokens.length, info.contextSize, sampling),
      stream: true,
    };
    const topLogprobs = sampling?.logprobs ? (sampling.topLogprobs ?? 0) : 0;
    const arrived = performance.now();
    const labels = { model: this.spec.id };
    let lease: SlotLease<Slot>;
    try {
      lease = await this.scheduler.acquire(options.signal);
    } catch (error) {
      if (error instanceof WorkerError) this.metrics.rejected.inc({ ...labels, reason: error.reason });
      throw error;
    }
    const queueWaitMs = performance.now() - arrived;
    const slot = lease.slot;
    body.id_slot = slot.index;
    // Another tenant's tokens are never a prefix for this request (a faster first token would tell).
    body.cache_prompt = slot.tenant === options.tenant;
    // Unknown until this request ends normally: a cancel may leave either tenant's tokens behind.
    slot.tenant = undefined;
    slot.usedTokens = promptTokens.length;

    let completionTokens = 0;
    let firstTokenAt = 0;
    let lastTokenAt = 0;
    const onTokens = (count: number) => {
      if (count === 0) return;
      const now = performance.now();
      if (firstTokenAt === 0) {
        firstTokenAt = now;
        this.tokenMetrics.firstToken.observe((now - arrived) / 1000);
      } else {
        this.tokenMetrics.perToken.observe((now - lastTokenAt) / 1000 / count);
      }
      lastTokenAt = now;
      completionTokens += count;
      slot.usedTokens += count;
      this.throughput.record(count);
      this.tokenMetrics.generated.inc(count);
    };

    try {
      if (echo) options.onEvent({ event: 'textDelta', textDelta: echo });
      const response = await this.server.send('POST', '/completion', body, {
        signal: options.signal,
        stream: true,
      });
      if (response.statusCode !== 200)
        throw this.refusal(httpError(response.statusCode ?? 0, await readText(response)), body);
      let final: StreamEvent | undefined;
      for await (const event of serverSentEvents(response)) {
        if (event.error) throw this.refusal(new LlamaServerHttpError(500, event.error.type ?? '', ''), body);
        if (event.completion_probabilities?.length) {
          options.onEvent({
            event: 'logprobs',
            logprobs: { tokens: toTokenLogprobs(event.completion_probabilities, topLogprobs) },
          });
        }
        onTokens(event.tokens?.length ?? (event.content ? 1 : 0));
        if (event.content) options.onEvent({ event: 'textDelta', textDelta: event.content });
        if (event.stop) {
          final = event;
          break;
        }
      }
      if (!final) throw new Error('llama-server ended the stream without a final event');
      slot.tenant = options.tenant;
      const finishReason: FinishReason = options.signal.aborted
        ? 'FINISH_REASON_CANCELLED'
        : toFinishReason(final.stop_type, final.truncated ?? false);
      const cachedTokens = Math.min(promptTokens.length, final.timings?.cache_n ?? final.tokens_cached ?? 0);
      this.metrics.promptTokens.inc(labels, promptTokens.length);
      this.metrics.requests.inc({ ...labels, kind, finish_reason: finishReason });
      return {
        finishReason,
        usage: { promptTokens: promptTokens.length, completionTokens, cachedTokens },
        timeToFirstTokenMs: firstTokenAt ? firstTokenAt - arrived : 0,
        queueWaitMs,
      };
    } catch (error) {
      if (options.signal.aborted) {
        this.metrics.requests.inc({ ...labels, kind, finish_reason: 'FINISH_REASON_CANCELLED' });
        throw options.signal.reason;
      }
      this.metrics.requests.inc({ ...labels, kind, finish_reason: 'error' });
      if (error instanceof WorkerError) throw error;
      throw this.engineFailure(error);
    } finally {
      slot.usedTokens = 0;
      lease.release();
      // Also when cancelled or failed: the worker reports this to auth-audit itself.
      options.onUsage?.({ promptTokens: promptTokens.length, completionTokens });
    }
  }

  /** An error answer to /completion as the contract's error (fixed texts: llama-server's may quote input). */
  private refusal(error: LlamaServerHttpError, body: Record<string, unknown>): WorkerError {
    if (error.type === 'exceed_context_size_error') {
      return contextExceeded(this.spec.id, (body.prompt as number[]).length + 1, this.info?.contextSize ?? 0);
    }
    if (error.status === 400 && body.json_schema !== undefined) {
      return invalidArgument('response_format json_schema is not supported by the grammar engine');
    }
    if (error.status === 400)
      return invalidArgument(`model "${this.spec.id}" refused the request's parameters`);
    return this.engineFailure(error);
  }

  private engineFailure(error: unknown): WorkerError {
    if (error instanceof WorkerError) return error;
    this.logger.error({ model: this.spec.id, err: (error as Error).message }, 'llama-server request failed');
    if (!this.ready) return modelNotReady(this.spec.id, this.loadError || 'llama-server is not running');
    return new WorkerError(13, 'GENERATION_FAILED', `generation failed on model "${this.spec.id}"`);
  }

  private onUnexpectedExit(why: string): void {
    if (this.disposed) return;
    const wasReady = this.state === 'MODEL_STATE_READY';
    this.state = 'MODEL_STATE_LOADING';
    this.loadError = `${why}; restarting`;
    this.restarts += 1;
    this.metrics.engineRestarts.inc({ model: this.spec.id });
    for (const slot of this.slots) slot.tenant = undefined;
    this.decodeSeen = { steps: 0, sequences: 0 };
    this.scheduler.rejectWaiting(modelNotReady(this.spec.id, this.loadError));
    this.logger.error({ model: this.spec.id, why, wasReady }, 'llama-server exited; restarting it');
    void this.restart();
  }

  private async restart(): Promise<void> {
    let why = this.loadError;
    for (let attempt = 0; attempt < MAX_RESTART_ATTEMPTS; attempt++) {
      await sleep(250 * 2 ** attempt);
      if (this.disposed) return;
      try {
        // Whichever died (the other one keeps its state).
        if (!this.server.process) await this.server.start();
        if (this.embedder && !this.embedder.process) await this.embedder.start();
        await this.readInfo();
        this.state = 'MODEL_STATE_READY';
        this.loadError = '';
        this.logger.info({ model: this.spec.id, attempt }, 'llama-server restarted');
        return;
      } catch (error) {
        why = (error as Error).message;
      }
    }
    this.fail(`llama-server keeps exiting: ${why}`);
    this.logger.error({ model: this.spec.id, err: why }, 'llama-server keeps exiting; model failed');
  }

  /** One of llama-server's own metrics (`llamacpp:<name>`), read now: tests count its decodes and busy slots. */
  async serverMetric(name: string): Promise<number> {
    return metricValue(await readText(await this.server.send('GET', '/metrics')), name);
  }

  /** Brings airlock_worker_decode_steps/decoded_sequences up to llama-server's own counters (on scrape). */
  private async syncDecodeCounters(): Promise<void> {
    if (!this.ready) return;
    const text = await readText(await this.server.send('GET', '/metrics'));
    const steps = metricValue(text, 'n_decode_total');
    // llama-server reports the average busy slots per decode; times the decodes, the sequences decoded.
    const sequences = Math.round(metricValue(text, 'n_busy_slots_per_decode') * steps);
    const labels = { model: this.spec.id };
    const newSteps = steps - this.decodeSeen.steps;
    const newSequences = sequences - this.decodeSeen.sequences;
    if (newSteps > 0) this.metrics.decodeSteps.inc(labels, newSteps);
    if (newSequences > 0) this.metrics.decodedSequences.inc(labels, newSequences);
    this.decodeSeen = { steps, sequences };
  }
}

const ROLE: Record<string, string> = {
  CHAT_ROLE_SYSTEM: 'system',
  CHAT_ROLE_USER: 'user',
  CHAT_ROLE_ASSISTANT: 'assistant',
};

function metricValue(text: string, name: string): number {
  const match = new RegExp(`^llamacpp:${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : 0;
}

async function trainContextSize(path: string): Promise<number> {
  const info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
  const trained = (info.architectureMetadata as { context_length?: number }).context_length;
  return typeof trained === 'number' && trained > 0 ? trained : DEFAULT_CONTEXT_SIZE;
}

/** The `data:` events of a server-sent event stream, parsed as JSON. */
async function* serverSentEvents(response: IncomingMessage): AsyncGenerator<StreamEvent> {
  let buffer = '';
  // Decoded as a stream: a character split between two chunks stays whole.
  response.setEncoding('utf8');
  for await (const chunk of response) {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split('\n')) {
        if (line.startsWith('data: ')) yield JSON.parse(line.slice(6)) as StreamEvent;
      }
    }
  }
}
