import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@airlock/telemetry';
import { FileDigestCache } from './file-digest.js';

describe('FileDigestCache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-digest-'));
  const logger = createLogger({ service: 'test', level: 'silent' });

  it('hashes once, caches by size/mtime/inode, and re-hashes a changed file', async () => {
    const file = join(dir, 'model.gguf');
    writeFileSync(file, 'first');
    const cache = new FileDigestCache(dir, logger);
    const sha = (text: string) => createHash('sha256').update(text).digest('hex');
    expect(await cache.sha256(file)).toBe(sha('first'));

    const stored = JSON.parse(readFileSync(join(dir, 'model-digests.json'), 'utf8')) as Record<
      string,
      { sha256: string }
    >;
    expect(stored[file].sha256).toBe(sha('first'));

    // A restart reads the cache: prove it by planting a marker digest the file does not have.
    stored[file].sha256 = 'cached-marker';
    writeFileSync(join(dir, 'model-digests.json'), JSON.stringify(stored));
    expect(await new FileDigestCache(dir, logger).sha256(file)).toBe('cached-marker');

    writeFileSync(file, 'second, longer');
    expect(await new FileDigestCache(dir, logger).sha256(file)).toBe(sha('second, longer'));
  });
});
