import { createHash } from 'node:crypto';
import type { Llama } from 'node-llama-cpp';

/**
 * OpenAI's `system_fingerprint` for one model build: "fp_" + 10 hex digits of a hash over the model file's
 * SHA-256 and the engine (llama.cpp release, build kind, GPU backend). Two answers with the same
 * fingerprint came from the same weights on the same engine, which auditors can check against the catalog.
 */
export function systemFingerprint(modelSha256: string, llama: Llama): string {
  const release = llama.llamaCppRelease;
  return engineFingerprint(
    modelSha256,
    `${release.repo}@${release.release}/${llama.buildType}/${llama.gpu || 'cpu'}`,
  );
}

/** The same over any engine description (llama-server: its build and backend). */
export function engineFingerprint(modelSha256: string, engine: string): string {
  return `fp_${createHash('sha256').update(`${modelSha256}\n${engine}`).digest('hex').slice(0, 10)}`;
}
