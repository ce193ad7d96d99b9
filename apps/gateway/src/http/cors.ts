import type { FastifyInstance } from 'fastify';

/** Headers a browser client may read: the request id, rate limits and Retry-After (the SDKs use them). */
const EXPOSED =
  'x-request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens';
const METHODS = 'GET, POST, DELETE, OPTIONS';
const MAX_AGE_SECONDS = '600';
/** Header names only (the SDKs add their own x-stainless-* set): anything else in the preflight is dropped. */
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;

/**
 * CORS for browser apps on an allowlist of exact origins (AIRLOCK_CORS_ORIGINS), off when the list is
 * empty. An allowed origin gets its own origin back (never `*`) and `Vary: Origin`; a preflight from any
 * other origin is a 403 without CORS headers, so the browser blocks the call.
 */
export function installCors(fastify: FastifyInstance, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  fastify.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    const preflight = request.method === 'OPTIONS' && request.headers['access-control-request-method'];
    if (!origin) return done();
    if (!allowed.has(origin)) {
      if (preflight) {
        void reply.code(403).header('vary', 'Origin').send();
        return;
      }
      void reply.header('vary', 'Origin');
      return done();
    }
    void reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
    if (!preflight) {
      void reply.header('access-control-expose-headers', EXPOSED);
      return done();
    }
    const asked = String(request.headers['access-control-request-headers'] ?? '')
      .split(',')
      .map((name) => name.trim())
      .filter((name) => HEADER_NAME.test(name));
    void reply
      .code(204)
      .header('access-control-allow-methods', METHODS)
      .header(
        'access-control-allow-headers',
        asked.length > 0 ? asked.join(', ') : 'authorization, content-type',
      )
      .header('access-control-max-age', MAX_AGE_SECONDS)
      .send();
  });
}
