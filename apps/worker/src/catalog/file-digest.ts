import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@airlock/telemetry';

const PROGRESS_EVERY_BYTES = 1024 ** 3;

interface DigestCacheEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/**
 * SHA-256 of model files, with the result cached in the data directory keyed by path, size, mtime and inode,
 * so that a restart does not re-hash 60 GB. A changed file misses the cache and is hashed again.
 */
export class FileDigestCache {
  private readonly cacheFile: string;

  constructor(
    dataDir: string,
    private readonly logger: Logger,
  ) {
    this.cacheFile = join(dataDir, 'model-digests.json');
  }

  async sha256(path: string): Promise<string> {
    const info = await stat(path);
    const cache = await this.load();
    const hit = cache[path];
    if (hit && hit.size === info.size && hit.mtimeMs === info.mtimeMs && hit.ino === info.ino)
      return hit.sha256;

    const digest = await this.hash(path, info.size);
    cache[path] = { size: info.size, mtimeMs: info.mtimeMs, ino: info.ino, sha256: digest };
    await this.save(cache);
    return digest;
  }

  private async hash(path: string, size: number): Promise<string> {
    const hash = createHash('sha256');
    let done = 0;
    let nextReport = PROGRESS_EVERY_BYTES;
    const started = Date.now();
    for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
      hash.update(chunk as Buffer);
      done += (chunk as Buffer).length;
      if (done >= nextReport) {
        nextReport += PROGRESS_EVERY_BYTES;
        this.logger.info({ file: path, hashedBytes: done, totalBytes: size }, 'verifying model checksum');
      }
    }
    this.logger.info({ file: path, totalBytes: size, ms: Date.now() - started }, 'model checksum computed');
    return hash.digest('hex');
  }

  private async load(): Promise<Record<string, DigestCacheEntry>> {
    try {
      return JSON.parse(await readFile(this.cacheFile, 'utf8')) as Record<string, DigestCacheEntry>;
    } catch {
      return {};
    }
  }

  private async save(cache: Record<string, DigestCacheEntry>): Promise<void> {
    try {
      await mkdir(join(this.cacheFile, '..'), { recursive: true });
      const temporary = `${this.cacheFile}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(cache, null, 2));
      await rename(temporary, this.cacheFile);
    } catch (error) {
      // A read-only data dir only costs a re-hash at the next start.
      this.logger.warn({ err: (error as Error).message }, 'cannot write model digest cache');
    }
  }
}
