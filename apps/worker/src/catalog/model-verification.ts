import { access } from 'node:fs/promises';
import { ModelSignatureError, type ModelProvenance } from '@airlock/contracts';
import type { FileDigestCache } from './file-digest.js';
import type { ModelSpec } from './model-catalog.js';
import { checkModelSignature } from './model-signature.js';

/** Why a model is not loaded: its file is missing, differs from the catalog, or its signature is refused. */
export class ModelRefusedError extends Error {
  constructor(
    message: string,
    /** What the log line says, beside the model id (never content). */
    readonly log: { reason: string; [field: string]: unknown },
  ) {
    super(message);
  }
}

/**
 * What is checked before any engine opens a model's files, and what the worker then tells about the weights in
 * every answer: the first file's SHA-256 and, when the catalog asks for a signature, the signer that verified it.
 * Every engine loads through this, so provenance never depends on which engine serves the model.
 */
export class ModelVerification {
  constructor(private readonly digests: FileDigestCache) {}

  /**
   * Checks before load: the file exists; with a catalog sha256 or a signature, the file is hashed and must match
   * (so the provenance is known now); every part of a split GGUF matches its catalog sha256. Returns the
   * provenance when it is already known, else undefined (`digestOf` hashes the file while the engine loads).
   */
  async beforeLoad(spec: ModelSpec): Promise<ModelProvenance | undefined> {
    try {
      await access(spec.path);
    } catch {
      throw new ModelRefusedError(`model file ${spec.path} does not exist or cannot be read`, {
        reason: 'model file missing',
        file: spec.path,
      });
    }
    let provenance: ModelProvenance | undefined;
    if (spec.sha256 || spec.signature) {
      const actual = await this.digests.sha256(spec.path);
      if (spec.sha256 && actual !== spec.sha256) {
        throw new ModelRefusedError(
          `sha256 mismatch for ${spec.path}: catalog expects ${spec.sha256}, file has ${actual}`,
          { reason: 'model checksum mismatch; not loading', expected: spec.sha256, actual },
        );
      }
      provenance = { sha256: actual, signer: '' };
      if (spec.signature) {
        try {
          const verified = await checkModelSignature({ ...spec, signature: spec.signature }, actual);
          provenance.signer = verified.signer;
        } catch (error) {
          if (!(error instanceof ModelSignatureError)) throw error;
          throw new ModelRefusedError(`model signature refused for ${spec.path}: ${error.message}`, {
            reason: 'model signature refused; not loading',
            detail: error.message,
          });
        }
      }
    }
    // Every part of a split GGUF is checked, not only the first one that the catalog names.
    for (const part of spec.parts) {
      const actual = await this.digests.sha256(part.path).catch(() => undefined);
      if (actual !== part.sha256) {
        throw new ModelRefusedError(
          actual === undefined
            ? `model part ${part.path} does not exist or cannot be read`
            : `sha256 mismatch for ${part.path}: catalog expects ${part.sha256}, file has ${actual}`,
          { reason: 'model part missing or changed; not loading', file: part.path },
        );
      }
    }
    return provenance;
  }

  /**
   * The provenance of a model the catalog pins neither by sha256 nor by signature: its file hashed (cached by
   * path, size, mtime and inode, so a restart does not re-hash), unsigned.
   */
  async digestOf(spec: ModelSpec): Promise<ModelProvenance> {
    try {
      return { sha256: await this.digests.sha256(spec.path), signer: '' };
    } catch (error) {
      throw new ModelRefusedError(`cannot hash model file ${spec.path}: ${(error as Error).message}`, {
        reason: 'cannot hash model file; not serving it',
        file: spec.path,
      });
    }
  }
}
