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
        // llama.cpp's own lines never carry prompt text at warn level; they go through our structured logger.
        logger: (level, message) => {
          const text = message.trim();
          if (text && level !== LlamaLogLevel.debug && level !== LlamaLogLevel.info) {
            this.logger.warn({ llamaLevel: level }, `llama.cpp: ${text.slice(0, 300)}`);
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
