import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

export type GpuBackend = 'auto' | 'cuda' | 'vulkan' | 'cpu';
export type GpuLayers = 'auto' | 'max' | number;
/**
 * What runs the model: node-llama-cpp in the worker's process, or llama.cpp's own `llama-server` as the
 * worker's child process (same llama.cpp release, built from the source node-llama-cpp ships).
 */
export type EngineKind = 'node-llama-cpp' | 'llama-server';

/** One model the worker serves, as the catalog describes it. */
export interface ModelSpec {
  /** The name clients use (e.g. `gpt-oss-20b`). */
  id: string;
  /** Absolute path of the GGUF file. */
  path: string;
  engine: EngineKind;
  /** Expected SHA-256 of the file (hex); verified before loading when given. */
  sha256?: string;
  /** Tokens per sequence; defaults to the smaller of 4096 and what the model was trained on. */
  contextSize?: number;
  /** Sequences generated in parallel on one context. */
  parallel: number;
  /** Requests that may wait for a free sequence before new ones are refused. */
  queueSize: number;
  gpuLayers: GpuLayers;
  gpu: GpuBackend;
  /** CPU threads; capped at the CPUs available to the process. */
  threads?: number;
  /** Serve embeddings (one extra embedding context). */
  embeddings: boolean;
  /** Jinja chat template replacing the one in the GGUF. */
  chatTemplate?: string;
  /**
   * Require an OpenSSF model-signing signature: the sigstore bundle file and the PEM public key the operator
   * trusts (both absolute). The model is refused when it is unsigned, signed by another key or differs.
   */
  signature?: { bundle: string; publicKey: string };
  /**
   * The other files of a split GGUF (`…-00002-of-00003.gguf`, …; llama.cpp opens them from the first part's name),
   * each with its SHA-256, verified before loading like the first part's.
   */
  parts: { path: string; sha256: string }[];
}

const modelId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'letters, digits, ".", "_", ":" and "-" only (at most 128)');

const entrySchema = z
  .object({
    id: modelId,
    path: z.string().min(1),
    engine: z.enum(['node-llama-cpp', 'llama-server']).default('node-llama-cpp'),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'a 64-digit hex SHA-256')
      .transform((s) => s.toLowerCase())
      .optional(),
    contextSize: z.number().int().min(64).max(1_048_576).optional(),
    parallel: z.number().int().min(1).max(256).default(4),
    queueSize: z.number().int().min(0).max(100_000).default(64),
    gpuLayers: z.union([z.literal('auto'), z.literal('max'), z.number().int().min(0)]).default('auto'),
    gpu: z.enum(['auto', 'cuda', 'vulkan', 'cpu']).default('auto'),
    threads: z.number().int().min(1).max(1024).optional(),
    embeddings: z.boolean().default(false),
    chatTemplate: z.string().min(1).optional(),
    signature: z
      .object({ bundle: z.string().min(1), publicKey: z.string().min(1) })
      .strict()
      .optional(),
    parts: z
      .array(
        z
          .object({
            path: z.string().min(1),
            sha256: z
              .string()
              .regex(/^[0-9a-fA-F]{64}$/, 'a 64-digit hex SHA-256')
              .transform((s) => s.toLowerCase()),
          })
          .strict(),
      )
      .max(256)
      .default([]),
  })
  .strict();

const catalogSchema = z.object({ models: z.array(entrySchema).min(1) }).strict();

export class CatalogError extends Error {}

/** The catalog file: `models:` entries; relative paths are relative to the file. */
export async function readCatalogFile(file: string): Promise<ModelSpec[]> {
  let document: unknown;
  try {
    document = parseYaml(await readFile(file, 'utf8'));
  } catch (error) {
    throw new CatalogError(`cannot read model catalog ${file}: ${(error as Error).message}`);
  }
  return parseCatalog(document, dirname(file), file);
}

export function parseCatalog(document: unknown, baseDir: string, source = 'catalog'): ModelSpec[] {
  const parsed = catalogSchema.safeParse(document);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`,
    );
    throw new CatalogError(`invalid model catalog ${source}: ${problems.join('; ')}`);
  }
  const specs = parsed.data.models.map((entry) => ({
    ...entry,
    path: resolve(baseDir, entry.path),
    parts: entry.parts.map((part) => ({ ...part, path: resolve(baseDir, part.path) })),
    ...(entry.signature
      ? {
          signature: {
            bundle: resolve(baseDir, entry.signature.bundle),
            publicKey: resolve(baseDir, entry.signature.publicKey),
          },
        }
      : {}),
  }));
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.id))
      throw new CatalogError(`invalid model catalog ${source}: model id "${spec.id}" appears twice`);
    seen.add(spec.id);
  }
  return specs;
}

/** The one-model case: AIRLOCK_MODEL names a GGUF file; the id is its name without `.gguf`. */
export function catalogForSingleModel(path: string): ModelSpec[] {
  const id = basename(path).replace(/\.gguf$/i, '');
  return parseCatalog({ models: [{ id, path }] }, process.cwd(), 'AIRLOCK_MODEL');
}
