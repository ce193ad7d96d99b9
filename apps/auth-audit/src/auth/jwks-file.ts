import { readFileSync, statSync } from 'node:fs';
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

/**
 * The identity provider's keys from a JWKS file (a ConfigMap in the chart), re-read when the file changes, so a
 * key rotation at the provider needs no restart. The file is looked at most every `checkEveryMs`, and at once
 * (at most once a second) when a token names a key id the current set lacks: a newly added key works on its first
 * token. A file that does not parse keeps the keys already loaded: a half-written file never locks everyone out.
 */
export function reloadingJwksFile(
  path: string,
  checkEveryMs = 10_000,
  now: () => number = Date.now,
): JWTVerifyGetKey {
  const read = () => {
    const jwks = JSON.parse(readFileSync(path, 'utf8')) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys)) throw new Error('AIRLOCK_OIDC_JWKS_FILE: not a JWKS (no "keys" array)');
    return createLocalJWKSet(jwks);
  };
  const fingerprint = () => {
    const stat = statSync(path);
    return `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
  };
  let keys = read();
  let seen = fingerprint();
  let checkedAt = now();

  const refresh = (minimumAgeMs: number) => {
    if (now() - checkedAt < minimumAgeMs) return;
    checkedAt = now();
    try {
      const current = fingerprint();
      if (current === seen) return;
      keys = read();
      seen = current;
    } catch {
      // Missing or unparsable for a moment (an update in progress): keep the loaded keys, look again later.
    }
  };

  return async (header, token) => {
    refresh(checkEveryMs);
    try {
      return await keys(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      refresh(1_000);
      return keys(header, token);
    }
  };
}
