import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import type { Logger } from '@airlock/telemetry';
import type { GpuBackend } from '../catalog/model-catalog.js';

/**
 * One llama.cpp binding per GPU backend, shared by every model that asks for it. Never builds or downloads
 * anything: only the prebuilt binaries that ship inside the npm packages are used (air-gapped).
 */
export class LlamaRuntime {
  private readonly bindings = new Map<GpuBackend, Promise<Llama>>();

  constructor(private readonly logger: Logger) {}

  get(backend: GpuBackend): Promise<Llama> {
    let binding = this.bindings.get(backend);
    if (!binding) {
      binding = getLlama({
        gpu: backend === 'cpu' ? false : backend,
        build: 'never',
        usePrebuiltBinaries: true,
        progressLogs: false,
        skipDownload: true,
        logLevel: LlamaLogLevel.warn,
        // Every native line comes here (nothing goes to stderr) and is reduced by nativeLogLine: llama.cpp
        // quotes a grammar it cannot parse, or a template, and those hold request content.
        logger: (level, message) => {
          const line = nativeLogLine(message);
          if (line && level !== LlamaLogLevel.debug && level !== LlamaLogLevel.info) {
            this.logger.warn({ llamaLevel: level, chars: message.length }, line);
          }
        },
      });
      this.bindings.set(backend, binding);
      binding.catch(() => this.bindings.delete(backend));
    }
    return binding;
  }

  async dispose(): Promise<void> {
    const bindings = [...this.bindings.values()];
    this.bindings.clear();
    await Promise.allSettled(bindings.map(async (binding) => (await binding).dispose()));
  }
}

/** Native lines that describe the model or the machine, never a request: their text is kept (120 chars). */
const SAFE_NATIVE_PREFIX =
  /^(llama_model_load|llama_model_loader|llama_init_from_model|llama_context|load_tensors|ggml_|gguf_|llm_load)/;

/** The log line for one native message: its own text when it is about the model, else a fixed sentence. */
export function nativeLogLine(message: string): string | undefined {
  const text = message.trim();
  if (text === '') return undefined;
  if (SAFE_NATIVE_PREFIX.test(text)) return `llama.cpp: ${text.slice(0, 120).replace(/[^\x20-\x7e]/g, '?')}`;
  return 'llama.cpp: native message withheld (it may quote request content such as a grammar or template)';
}
