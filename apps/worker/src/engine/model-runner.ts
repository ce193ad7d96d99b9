import { createHash, randomUUID } from 'node:crypto';
import {
  HarmonyChatWrapper,
  JinjaTemplateChatWrapper,
  LlamaChat,
  LlamaCompletion,
  TokenBias,
  type ChatWrapper,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import type {
  ChatRequest,
  CompleteRequest,
  EmbedResponse,
  Finish,
  FinishReason,
  ModelStatus,
  ReasoningEffort,
  SamplingParams,
} from '@airlock/contracts';
import type { Logger } from '@airlock/telemetry';
import type { ModelSpec } from '../catalog/model-catalog.js';
import type { GenerationOptions, ModelEngine } from './model-engine.js';
import { toChatFunctions, toChatHistory } from './chat-history.js';
import { generationBudget } from './generation-budget.js';
import { DecodeLockstep } from './decode-lockstep.js';
import { systemFingerprint } from './fingerprint.js';
import { generateWithLogprobs, type LogprobGenerationOptions } from './logprob-generation.js';
import { toLlamaSampling } from './sampling.js';
import { SlotScheduler, type SlotLease } from './slot-scheduler.js';
import { ThroughputWindow } from './throughput-window.js';
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

export type { GenerationEvent, GenerationOptions } from './model-engine.js';

/** Limits on embedding requests: a batch of many inputs is one request, so it is bounded too. */
export const MAX_EMBEDDING_INPUTS = 2048;

const DEFAULT_CONTEXT_SIZE = 4096;
/** Characters tokenized per event-loop turn when a long text is checked against the context. */
export const TOKENIZE_SLICE_CHARS = 16_384;
/** Compiled JSON-schema grammars kept per model (each is a small native object). */
const GRAMMAR_CACHE_ENTRIES = 64;
/** Tokens a cut between two slices may add (a merge split in two). */
const SLICE_CUT_SLACK_TOKENS = 4;

type LoadState = 'MODEL_STATE_LOADING' | 'MODEL_STATE_READY' | 'MODEL_STATE_FAILED';

interface Slot {
  index: number;
  sequence: LlamaContextSequence;
  /** Whose tokens the sequence holds (undefined: none yet). */
  tenant?: string;
}

interface StopMeta {
  stopReason: string;
}

/**
 * One loaded model: a context with `parallel` sequences (continuous batching in node-llama-cpp), a bounded
 * queue in front of them, and an optional embedding context. Each request leases one sequence for its
 * whole generation and releases it on every path (done, error, cancel).
 */
export class ModelRunner implements ModelEngine {
  private state: LoadState = 'MODEL_STATE_LOADING';
  private loadProgress = 0;
  private loadError = '';
  private model?: LlamaModel;
  private context?: LlamaContext;
  private embeddingContext?: LlamaEmbeddingContext;
  private embeddingContextSize = 0;
  private embeddingLock: Promise<unknown> = Promise.resolve();
  private scheduler?: SlotScheduler<Slot>;
  private lockstep?: DecodeLockstep;
  private chatWrapper?: ChatWrapper;
  private fingerprint = '';
  private readonly throughput = new ThroughputWindow();
  /** Slices tokenized by the long-text check, in total (tests count them: the work a request may cause). */
  tokenizeSlices = 0;
  /** JSON-schema grammars compiled, in total (tests count them: a repeated schema compiles once). */
  grammarsCompiled = 0;
  /** Compiled grammars by schema digest, least recently used first: a repeated schema costs a lookup. */
  private readonly grammarCache = new Map<string, LlamaGrammar>();
  /** Per-token metrics, bound to this model's label once: the per-token path stays cheap. */
  private readonly tokenMetrics: {
    generated: { inc(n: number): void };
    perToken: { observe(seconds: number): void };
    firstToken: { observe(seconds: number): void };
  };
  private readonly decodeMetrics: {
    steps: { inc(n?: number): void };
    sequences: { inc(n?: number): void };
    lateSteps: { inc(n?: number): void };
  };

  constructor(
    readonly spec: ModelSpec,
    private readonly threads: number,
    private readonly metrics: WorkerMetrics,
    private readonly logger: Logger,
  ) {
    const labels = { model: spec.id };
    this.tokenMetrics = {
      generated: metrics.generatedTokens.labels(labels),
      perToken: metrics.timePerOutputToken.labels(labels),
      firstToken: metrics.timeToFirstToken.labels(labels),
    };
    this.decodeMetrics = {
      steps: metrics.decodeSteps.labels(labels),
      sequences: metrics.decodedSequences.labels(labels),
      lateSteps: metrics.lateDecodeSteps.labels(labels),
    };
  }

  get ready(): boolean {
    return this.state === 'MODEL_STATE_READY';
  }

  get settled(): boolean {
    return this.state !== 'MODEL_STATE_LOADING';
  }

  /** Sets the system fingerprint from the model file's SHA-256 (known once it is hashed). */
  identify(sha256: string, llama: Llama): void {
    this.fingerprint = systemFingerprint(sha256, llama);
  }

  async load(llama: Llama): Promise<void> {
    const started = performance.now();
    try {
      this.model = await llama.loadModel({
        modelPath: this.spec.path,
        gpuLayers: this.spec.gpuLayers,
        onLoadProgress: (progress) => {
          this.loadProgress = progress;
        },
      });
      this.context = await this.model.createContext({
        contextSize: this.spec.contextSize ?? Math.min(DEFAULT_CONTEXT_SIZE, this.model.trainContextSize),
        sequences: this.spec.parallel,
        threads: this.threads,
        batching: DecodeLockstep.batching,
      });
      this.lockstep = DecodeLockstep.attach(this.context, (step) => {
        this.decodeMetrics.steps.inc();
        this.decodeMetrics.sequences.inc(step.sequences);
        if (step.late) this.decodeMetrics.lateSteps.inc();
      });
      if (!this.lockstep) {
        this.logger.warn({ model: this.spec.id }, 'decode lockstep unavailable: sequences batch less');
      }
      const slots: Slot[] = [];
      for (let index = 0; index < this.spec.parallel; index++) {
        slots.push({ index, sequence: this.context.getSequence() });
      }
      this.scheduler = new SlotScheduler(slots, this.spec.queueSize, () =>
        queueFull(this.spec.id, this.spec.queueSize),
      );
      if (this.spec.embeddings) {
        this.embeddingContextSize = Math.min(this.context.contextSize, this.model.trainContextSize);
        this.embeddingContext = await this.model.createEmbeddingContext({
          contextSize: this.embeddingContextSize,
          threads: this.threads,
        });
      }
      this.chatWrapper = this.spec.chatTemplate
        ? new JinjaTemplateChatWrapper({ template: this.spec.chatTemplate })
        : new LlamaChat({ contextSequence: slots[0].sequence }).chatWrapper;
      this.state = 'MODEL_STATE_READY';
      this.loadProgress = 1;
      const seconds = (performance.now() - started) / 1000;
      this.metrics.modelLoadSeconds.set({ model: this.spec.id }, seconds);
      this.logger.info(
        {
          model: this.spec.id,
          seconds,
          contextSize: this.context.contextSize,
          parallel: this.spec.parallel,
          threads: this.threads,
          chatFormat: this.chatWrapper.wrapperName,
        },
        'model loaded',
      );
    } catch (error) {
      this.state = 'MODEL_STATE_FAILED';
      this.loadError = `cannot load ${this.spec.path}: ${(error as Error).message}`;
      this.logger.error({ model: this.spec.id, err: this.loadError }, 'model failed to load');
      await this.dispose();
    }
  }

  /** Marks the model failed without loading it (e.g. its checksum did not match). */
  fail(reason: string): void {
    this.state = 'MODEL_STATE_FAILED';
    this.loadError = reason;
  }

  async chat(request: ChatRequest, options: GenerationOptions): Promise<Finish> {
    const { model, chatWrapper } = this.requireReady();
    const sampling = toLlamaSampling(request.sampling);
    const history = toChatHistory(request.messages);
    const wrapper = this.wrapperFor(chatWrapper, request.reasoningEffort);
    await this.refuseCertainlyTooLong(request.messages.map((message) => message.content ?? '').join('\n'));
    const toolMode = request.toolChoiceMode ?? 'TOOL_CHOICE_MODE_UNSPECIFIED';
    const forcedTool = request.toolChoiceFunction || undefined;
    const tools = request.tools ?? [];
    if (forcedTool && !tools.some((tool) => tool.name === forcedTool)) {
      throw invalidArgument(`tool_choice names function "${forcedTool}", which is not among tools`);
    }
    if (toolMode === 'TOOL_CHOICE_MODE_REQUIRED' && !forcedTool && tools.length !== 1) {
      throw invalidArgument(
        'tool_choice "required" is supported with exactly one tool; name the function instead',
      );
    }
    const forced = forcedTool ?? (toolMode === 'TOOL_CHOICE_MODE_REQUIRED' ? tools[0].name : undefined);
    const offerTools = toolMode !== 'TOOL_CHOICE_MODE_NONE' && !forced;
    const functions = offerTools ? toChatFunctions(tools) : undefined;
    const grammar = forced
      ? await this.grammarForSchema(
          tools.find((tool) => tool.name === forced)?.parametersJsonSchema || '{}',
          'tools parameters',
          options.tenant,
        )
      : await this.grammarFor(request.sampling, options.tenant);
    if (functions && grammar) throw invalidArgument('response_format cannot be combined with tools');

    let promptTokens: number;
    try {
      promptTokens = wrapper
        .generateContextState({ chatHistory: history, availableFunctions: functions })
        .contextText.tokenize(model.tokenizer).length;
    } catch {
      // Fixed text: the template engine's message may quote the messages.
      throw invalidArgument('cannot apply the chat template to these messages');
    }
    const maxTokens = this.generationBudget(promptTokens, request.sampling);
    const tokenBias = this.tokenBiasFor(request.sampling);

    if (request.sampling?.logprobs) {
      if (wrapper instanceof HarmonyChatWrapper || functions || forced || grammar) {
        throw featureNotSupported(
          'logprobs are supported for plain text answers only (not with tools, response_format or Harmony models)',
        );
      }
      const state = wrapper.generateContextState({ chatHistory: history });
      const tokens = state.contextText.tokenize(model.tokenizer);
      return this.generateWithLogprobs('chat', options, promptTokens, {
        model,
        promptTokens: tokens,
        sampling,
        tokenBias,
        maxTokens,
        topLogprobs: request.sampling?.topLogprobs ?? 0,
      });
    }

    return this.generate('chat', options, promptTokens, async (sequence, onTokens) => {
      const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: wrapper });
      try {
        let forcedArguments = '';
        const result = await chat.generateResponse(history, {
          ...sampling,
          maxTokens,
          tokenBias,
          signal: options.signal,
          stopOnAbortSignal: true,
          ...(grammar
            ? { grammar }
            : {
                functions,
                ...(request.maxToolCalls ? { maxParallelFunctionCalls: request.maxToolCalls } : {}),
              }),
          onResponseChunk: (chunk) => {
            onTokens(chunk.tokens.length);
            if (!chunk.text) return;
            if (forced) forcedArguments += chunk.text;
            else if (chunk.type === 'segment')
              options.onEvent({ event: 'reasoningDelta', reasoningDelta: chunk.text });
            else options.onEvent({ event: 'textDelta', textDelta: chunk.text });
          },
        });
        if (forced && result.metadata.stopReason !== 'abort') {
          options.onEvent({
            event: 'toolCall',
            toolCall: { id: newCallId(), name: forced, argumentsJson: forcedArguments },
          });
          return { stopReason: 'functionCalls' };
        }
        const calls = result.functionCalls ?? [];
        for (const call of request.maxToolCalls ? calls.slice(0, request.maxToolCalls) : calls) {
          options.onEvent({
            event: 'toolCall',
            toolCall: {
              id: newCallId(),
              name: call.functionName,
              argumentsJson: JSON.stringify(call.params ?? {}),
            },
          });
        }
        return result.metadata;
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    });
  }

  async complete(request: CompleteRequest, options: GenerationOptions): Promise<Finish> {
    const { model } = this.requireReady();
    const sampling = toLlamaSampling(request.sampling);
    const grammar = await this.grammarFor(request.sampling, options.tenant);
    await this.refuseCertainlyTooLong(request.prompt);
    const promptTokens = model.tokenize(request.prompt).length + (model.tokens.shouldPrependBosToken ? 1 : 0);
    const maxTokens = this.generationBudget(promptTokens, request.sampling);
    const tokenBias = this.tokenBiasFor(request.sampling);
    if (request.echo && request.sampling?.logprobs) {
      throw featureNotSupported('echo with logprobs (log probabilities of the prompt) is not supported');
    }
    const echo = (): void => {
      if (request.echo && request.prompt) options.onEvent({ event: 'textDelta', textDelta: request.prompt });
    };

    if (request.sampling?.logprobs) {
      if (grammar) throw featureNotSupported('logprobs are not supported together with a JSON grammar');
      const bos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? [model.tokens.bos] : [];
      const tokens = [...bos, ...model.tokenize(request.prompt)];
      return this.generateWithLogprobs('completion', options, promptTokens, {
        model,
        promptTokens: tokens,
        sampling,
        tokenBias,
        maxTokens,
        topLogprobs: request.sampling?.topLogprobs ?? 0,
      });
    }

    return this.generate('completion', options, promptTokens, async (sequence, onTokens) => {
      echo();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      try {
        const result = await completion.generateCompletionWithMeta(request.prompt, {
          ...sampling,
          maxTokens,
          tokenBias,
          grammar,
          signal: options.signal,
          stopOnAbortSignal: true,
          disableContextShift: true,
          onToken: (tokens) => onTokens(tokens.length),
          onTextChunk: (text) => {
            if (text) options.onEvent({ event: 'textDelta', textDelta: text });
          },
        });
        return result.metadata;
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    });
  }

  async embed(inputs: string[], tokenInputs: number[][] = []): Promise<EmbedResponse> {
    const { model } = this.requireReady();
    const context = this.embeddingContext;
    if (!context) throw embeddingsNotServed(this.spec.id);
    const count = inputs.length + tokenInputs.length;
    if (count === 0) throw invalidArgument('input must contain at least one text');
    if (count > MAX_EMBEDDING_INPUTS)
      throw invalidArgument(`input takes at most ${MAX_EMBEDDING_INPUTS} texts`);
    const vocabulary = this.vocabularySize();
    tokenInputs.forEach((ids, index) => {
      const bad = ids.find((id) => id >= vocabulary);
      // An id past the vocabulary would read out of bounds in llama.cpp: refused here.
      if (bad !== undefined)
        throw invalidArgument(`input[${index}] has token ${bad}, outside the vocabulary of ${vocabulary}`);
    });
    const tokenized = [
      ...inputs.map((input) => model.tokenize(input)),
      ...tokenInputs.map((ids) => ids as Token[]),
    ];
    const limit = this.embeddingContextSize;
    tokenized.forEach((tokens, index) => {
      if (tokens.length === 0) throw invalidArgument(`input[${index}] is empty`);
      if (tokens.length + 1 > limit) throw contextExceeded(this.spec.id, tokens.length + 1, limit);
    });

    // One embedding context, one batch at a time: requests queue here rather than allocate more contexts.
    const run = this.embeddingLock.then(async () => {
      const embeddings: { values: number[] }[] = [];
      for (const tokens of tokenized) {
        const embedding = await context.getEmbeddingFor(tokens);
        embeddings.push({ values: [...embedding.vector] });
      }
      return embeddings;
    });
    this.embeddingLock = run.catch(() => undefined);
    const embeddings = await run;
    const promptTokens = tokenized.reduce((sum, tokens) => sum + tokens.length, 0);
    this.metrics.promptTokens.inc({ model: this.spec.id }, promptTokens);
    return { embeddings, promptTokens };
  }

  tokenize(text: string): number[] {
    const { model } = this.requireReady();
    return [...model.tokenize(text)];
  }

  status(): ModelStatus {
    const scheduler = this.scheduler;
    const busySlots = scheduler?.busySlots() ?? [];
    const capacity = (this.context?.contextSize ?? 0) * this.spec.parallel;
    const used = busySlots.reduce((sum, slot) => sum + slot.sequence.nextTokenIndex, 0);
    const memory =
      this.context && this.model
        ? { ram: this.model.size + this.context.memoryUsage.ram, vram: this.context.memoryUsage.vram }
        : { ram: 0, vram: 0 };
    return {
      id: this.spec.id,
      state: this.state,
      loadProgress: this.loadProgress,
      error: this.loadError,
      slotsTotal: this.spec.parallel,
      slotsBusy: scheduler?.busy ?? 0,
      queueLength: scheduler?.queued ?? 0,
      queueCapacity: this.spec.queueSize,
      kvCacheUsedTokens: used,
      kvCacheCapacityTokens: capacity,
      kvCacheUtilization: capacity > 0 ? used / capacity : 0,
      tokensPerSecond: this.throughput.tokensPerSecond(),
      vramUsedBytes: this.model && this.model.gpuLayers > 0 ? memory.vram : 0,
      ramUsedBytes: memory.ram,
      contextSize: this.context?.contextSize ?? 0,
      servesEmbeddings: this.spec.embeddings,
      chatFormat: this.chatWrapper?.wrapperName ?? '',
      systemFingerprint: this.fingerprint,
    };
  }

  /** Refuses queued requests; running generations finish on their own. */
  rejectWaiting(error: Error): void {
    this.scheduler?.rejectWaiting(error);
  }

  async dispose(): Promise<void> {
    this.scheduler?.rejectWaiting(modelNotReady(this.spec.id, 'unloading'));
    await this.embeddingContext?.dispose();
    await this.context?.dispose();
    await this.model?.dispose();
    this.embeddingContext = undefined;
    this.context = undefined;
    this.lockstep = undefined;
    this.model = undefined;
    this.grammarCache.clear();
  }

  private requireReady(): { model: LlamaModel; chatWrapper: ChatWrapper } {
    if (this.state === 'MODEL_STATE_LOADING') {
      throw modelNotReady(this.spec.id, `still loading (${Math.round(this.loadProgress * 100)}%)`);
    }
    if (this.state === 'MODEL_STATE_FAILED' || !this.model || !this.chatWrapper) {
      throw modelNotReady(this.spec.id, this.loadError || 'failed to load');
    }
    return { model: this.model, chatWrapper: this.chatWrapper };
  }

  /**
   * A long text is tokenized in slices, one per turn of the event loop, and refused as soon as it certainly
   * exceeds the context: a 4 MB prompt costs one slice instead of blocking every other request and model on
   * this worker while all of it is tokenized. Slicing can only add tokens at the cuts, hence the slack.
   */
  private async refuseCertainlyTooLong(text: string): Promise<void> {
    if (text.length <= TOKENIZE_SLICE_CHARS) return;
    const contextSize = this.context!.contextSize;
    const model = this.model!;
    let tokens = 0;
    let slices = 0;
    for (let start = 0; start < text.length; start += TOKENIZE_SLICE_CHARS) {
      tokens += model.tokenize(text.slice(start, start + TOKENIZE_SLICE_CHARS)).length;
      slices += 1;
      this.tokenizeSlices += 1;
      if (tokens - slices * SLICE_CUT_SLACK_TOKENS >= contextSize) {
        throw contextExceeded(this.spec.id, tokens - slices * SLICE_CUT_SLACK_TOKENS, contextSize);
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  private generationBudget(promptTokens: number, sampling: SamplingParams | undefined): number {
    return generationBudget(this.spec.id, promptTokens, this.context!.contextSize, sampling);
  }

  /** OpenAI's logit_bias (added to the logits; -100 bans a token) in node-llama-cpp's terms. */
  private tokenBiasFor(sampling: SamplingParams | undefined): TokenBias | undefined {
    const entries = sampling?.logitBias ?? [];
    if (entries.length === 0) return undefined;
    const vocabulary = this.vocabularySize();
    const bias = new TokenBias(this.model!.tokenizer);
    for (const { token, bias: value } of entries) {
      if (token >= vocabulary) {
        throw invalidArgument(`logit_bias names token ${token}, outside the vocabulary of ${vocabulary}`);
      }
      bias.set(token as Token, value <= -100 ? 'never' : { logit: value });
    }
    return bias;
  }

  private vocabularySize(): number {
    const tokens = this.model!.fileInfo.metadata.tokenizer?.ggml?.tokens;
    return Array.isArray(tokens) ? tokens.length : Number.MAX_SAFE_INTEGER;
  }

  private wrapperFor(base: ChatWrapper, effort: ReasoningEffort | undefined): ChatWrapper {
    if (!effort || effort === 'REASONING_EFFORT_UNSPECIFIED') return base;
    // "none" asks for no reasoning: what a model without a reasoning setting does anyway.
    if (effort === 'REASONING_EFFORT_NONE' && !(base instanceof HarmonyChatWrapper)) return base;
    if (!(base instanceof HarmonyChatWrapper)) {
      throw invalidArgument(
        `model "${this.spec.id}" has no reasoning effort setting (only Harmony-format models such as gpt-oss do)`,
      );
    }
    const level = (
      {
        REASONING_EFFORT_LOW: 'low',
        REASONING_EFFORT_MEDIUM: 'medium',
        REASONING_EFFORT_HIGH: 'high',
        // gpt-oss always reasons; its lowest level is the closest to none.
        REASONING_EFFORT_NONE: 'low',
      } as const
    )[effort];
    return new HarmonyChatWrapper({ reasoningEffort: level });
  }

  private async grammarFor(
    sampling: SamplingParams | undefined,
    tenant: string,
  ): Promise<LlamaGrammar | undefined> {
    if (sampling?.jsonSchema)
      return this.grammarForSchema(sampling.jsonSchema, 'response_format json_schema', tenant);
    if (sampling?.jsonObject) return this.model!.llama.getGrammarFor('json');
    return undefined;
  }

  private async grammarForSchema(schemaText: string, what: string, tenant: string): Promise<LlamaGrammar> {
    let schema: unknown;
    try {
      schema = JSON.parse(schemaText);
    } catch {
      throw invalidArgument(`${what} is not valid JSON`);
    }
    // Per tenant, like the prompt cache: a hit (no compile) must not tell one tenant which schema another sent.
    const digest = createHash('sha256').update(tenant).update('\0').update(schemaText).digest('hex');
    const cached = this.grammarCache.get(digest);
    if (cached) {
      this.grammarCache.delete(digest);
      this.grammarCache.set(digest, cached);
      return cached;
    }
    // The compile is one synchronous native call (a few ms for the largest accepted schema): give the
    // streams already in flight their turn first, so it never lands behind a pending token or tokenize slice.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      const grammar = await this.model!.llama.createGrammarForJsonSchema(schema as never);
      this.grammarsCompiled += 1;
      this.grammarCache.set(digest, grammar);
      if (this.grammarCache.size > GRAMMAR_CACHE_ENTRIES) {
        this.grammarCache.delete(this.grammarCache.keys().next().value!);
      }
      return grammar;
    } catch {
      // Fixed text: the grammar builder's message may quote property names and enum values.
      throw invalidArgument(`${what} is not supported by the grammar engine`);
    }
  }

  /** A generation that reports token log probabilities (chat and completion alike), streamed as events. */
  private generateWithLogprobs(
    kind: 'chat' | 'completion',
    options: GenerationOptions,
    promptTokenCount: number,
    generation: Omit<LogprobGenerationOptions, 'sequence' | 'signal' | 'onTokens' | 'onText' | 'onLogprobs'>,
  ): Promise<Finish> {
    return this.generate(kind, options, promptTokenCount, (sequence, onTokens) =>
      generateWithLogprobs({
        ...generation,
        sequence,
        signal: options.signal,
        onTokens,
        onText: (text) => options.onEvent({ event: 'textDelta', textDelta: text }),
        onLogprobs: (logprobs) => options.onEvent({ event: 'logprobs', logprobs: { tokens: logprobs } }),
      }),
    );
  }

  /**
   * Waits for a sequence, runs one generation on it and reports usage. The lease is released on every path,
   * so a cancelled or failed request frees its sequence for the next one in the queue.
   */
  private async generate(
    kind: 'chat' | 'completion',
    options: GenerationOptions,
    promptTokens: number,
    run: (sequence: LlamaContextSequence, onTokens: (count: number) => void) => Promise<StopMeta>,
  ): Promise<Finish> {
    const arrived = performance.now();
    const labels = { model: this.spec.id };
    let lease: SlotLease<Slot>;
    try {
      lease = await this.scheduler!.acquire(options.signal);
    } catch (error) {
      if (error instanceof WorkerError) this.metrics.rejected.inc({ ...labels, reason: error.reason });
      throw error;
    }
    const queueWaitMs = performance.now() - arrived;
    const { sequence } = lease.slot;
    // Another tenant's tokens are never a prefix for this request: a cache hit (and its faster first token)
    // would tell this tenant how another tenant's prompt began.
    if (lease.slot.tenant !== options.tenant) {
      lease.slot.tenant = undefined;
      try {
        await sequence.clearHistory();
      } catch (error) {
        lease.release();
        throw error;
      }
      lease.slot.tenant = options.tenant;
    }
    const meterBefore = sequence.tokenMeter.getState();
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
      this.throughput.record(count);
      this.tokenMetrics.generated.inc(count);
    };

    try {
      const meta = await run(sequence, onTokens);
      const meterAfter = sequence.tokenMeter.getState();
      const evaluatedPrompt = meterAfter.usedInputTokens - meterBefore.usedInputTokens;
      // The sequence keeps its tokens between requests, so a shared prefix is not evaluated again.
      const cachedTokens = Math.max(0, Math.min(promptTokens, promptTokens - evaluatedPrompt));
      const finishReason = options.signal.aborted
        ? 'FINISH_REASON_CANCELLED'
        : toFinishReason(meta.stopReason);
      this.metrics.promptTokens.inc(labels, promptTokens);
      this.metrics.requests.inc({ ...labels, kind, finish_reason: finishReason });
      return {
        finishReason,
        usage: { promptTokens, completionTokens, cachedTokens },
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
      this.logger.error({ model: this.spec.id, kind, err: (error as Error).message }, 'generation failed');
      throw new WorkerError(13, 'GENERATION_FAILED', `generation failed on model "${this.spec.id}"`);
    } finally {
      this.lockstep?.leave(sequence);
      lease.release();
      options.onUsage?.({ promptTokens, completionTokens });
    }
  }
}

function toFinishReason(stopReason: string): FinishReason {
  switch (stopReason) {
    case 'maxTokens':
      return 'FINISH_REASON_LENGTH';
    case 'functionCalls':
      return 'FINISH_REASON_TOOL_CALLS';
    case 'abort':
      return 'FINISH_REASON_CANCELLED';
    default:
      return 'FINISH_REASON_STOP';
  }
}

function newCallId(): string {
  return `call_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
}
