import { closeSync, openSync, readSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

/**
 * Where bench/llama-cpp-build.mjs leaves llama-server, built from the llama.cpp git bundle inside
 * node-llama-cpp's package: `${AIRLOCK_LLAMA_CPP_CACHE:-~/.cache/airlock/llama.cpp}/<commit>/src/build/bin/`.
 * The commit is read from the bundle's first lines (no git needed at run time).
 */
export function defaultLlamaServerBin(env: NodeJS.ProcessEnv = process.env): string {
  const cacheRoot = env.AIRLOCK_LLAMA_CPP_CACHE ?? join(homedir(), '.cache/airlock/llama.cpp');
  return join(cacheRoot, bundledLlamaCppCommit() ?? 'unknown-commit', 'src/build/bin/llama-server');
}

/** The first 12 digits of the llama.cpp commit node-llama-cpp bundles, or undefined when it is not there. */
export function bundledLlamaCppCommit(): string | undefined {
  let fd: number | undefined;
  try {
    const entry = createRequire(import.meta.url).resolve('node-llama-cpp');
    // dist/index.js → the package root.
    const bundle = join(dirname(dirname(entry)), 'llama', 'gitRelease.bundle');
    fd = openSync(bundle, 'r');
    const head = Buffer.alloc(200);
    readSync(fd, head, 0, head.length, 0);
    // "# v2 git bundle\n<40 hex> HEAD\n…"
    return /^# v\d git bundle\n([0-9a-f]{40}) /.exec(head.toString('latin1'))?.[1].slice(0, 12);
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
