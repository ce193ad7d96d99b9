import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ModelSignatureError, verifyModelSignature, type VerifiedModelSignature } from '@airlock/contracts';
import type { ModelSpec } from './model-catalog.js';

/**
 * The catalog asks for a signature: the model's one GGUF file (by name and its actual sha256) must be exactly what
 * the bundle signs, signed by the operator's trusted key. Throws ModelSignatureError saying why not.
 */
export async function checkModelSignature(
  spec: ModelSpec & { signature: NonNullable<ModelSpec['signature']> },
  actualSha256: string,
): Promise<VerifiedModelSignature> {
  const read = async (what: string, path: string) => {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      throw new ModelSignatureError(
        `cannot read the ${what} ${path}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  };
  const bundle = await read('signature bundle', spec.signature.bundle);
  const publicKey = await read('trusted public key', spec.signature.publicKey);
  try {
    return verifyModelSignature(bundle, publicKey, [{ name: basename(spec.path), sha256: actualSha256 }]);
  } catch (error) {
    if (error instanceof ModelSignatureError) throw error;
    // A malformed key or payload: still a refusal, not a crash.
    throw new ModelSignatureError(`invalid signature material: ${(error as Error).message}`);
  }
}
