import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '@airlock/telemetry';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/error.filter.js';
import { CONSOLE_HEADERS, ConsoleAssets } from './console-assets.js';
import type { ConsoleConfig } from './console-config.js';
import { ConsoleSessions, sameOrigin } from './console-session.js';
import { OidcSignIn } from './oidc-sign-in.js';

export interface ConsoleParts {
  config: ConsoleConfig;
  auth: AuthAuditClient;
  logger: Logger;
}

type Route = (request: FastifyRequest, reply: FastifyReply) => unknown;
type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** Every console response carries the security headers; failures leave as the API's error shape. */
function handle(run: Route): Handler {
  return async (request, reply) => {
    void reply.headers(CONSOLE_HEADERS).header('cache-control', 'no-store');
    try {
      return await run(request, reply);
    } catch (error) {
      const apiError = toApiError(error);
      return reply.status(apiError.status).headers(apiError.headers).send(apiError.toBody());
    }
  };
}

/**
 * The web console: the built app under /console/, its session endpoints, and the hook that lets a session
 * cookie stand in for the bearer on /admin/v1 (the same API the CLI uses; auth-audit checks every call).
 */
export function installConsole(fastify: FastifyInstance, parts: ConsoleParts): void {
  const { config, logger } = parts;
  if (!config.enabled) return;
  const assets = new ConsoleAssets(config.assetsDir);
  if (!assets.built)
    logger.warn({ dir: assets.dir }, 'console assets missing (npm run build): /console answers 503');
  const sessions = new ConsoleSessions(config, parts.auth);
  const oidc = config.oidc ? new OidcSignIn(config.oidc, config.sessionKey, sessions, logger) : null;

  fastify.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/admin/v1/')) return;
    try {
      sessions.admit(request);
    } catch (error) {
      const apiError = toApiError(error);
      return reply.status(apiError.status).send(apiError.toBody());
    }
  });

  fastify.get('/console', (_request, reply) => reply.redirect('/console/', 308));

  fastify.get(
    '/console/api/session',
    handle((request) => {
      const view = sessions.view(request);
      return view ? { signed_in: true, ...view } : { signed_in: false, oidc: oidc !== null };
    }),
  );

  fastify.post(
    '/console/api/session',
    handle(async (request, reply) => {
      if (!sameOrigin(request)) throw ApiError.forbidden('Sign in from the console itself.');
      const key = (request.body as { api_key?: unknown } | undefined)?.api_key;
      if (typeof key !== 'string' || key.length === 0 || key.length > 4096)
        throw ApiError.badRequest("Give the API key as 'api_key'.", 'api_key');
      return { signed_in: true, ...(await sessions.signIn(request, reply, key.trim(), 'api_key')) };
    }),
  );

  fastify.delete(
    '/console/api/session',
    handle((request, reply) => {
      const session = sessions.current(request);
      if (session) sessions.checkCsrf(request, session);
      sessions.signOut(reply);
      return reply.status(204).send();
    }),
  );

  fastify.get(
    '/console/oidc/login',
    handle(async (request, reply) => {
      if (!oidc) throw ApiError.notFound('OIDC sign-in is not configured.');
      return reply.redirect(await oidc.start(reply), 303);
    }),
  );

  fastify.get(
    '/console/oidc/callback',
    handle(async (request, reply) => {
      if (!oidc) throw ApiError.notFound('OIDC sign-in is not configured.');
      try {
        await oidc.finish(request, reply);
      } catch (error) {
        // Back to the sign-in page, which shows why (our own messages only; the page escapes them anyway).
        const message = toApiError(error).message;
        return reply.redirect(`/console/?sign_in_error=${encodeURIComponent(message)}`, 303);
      }
      return reply.redirect('/console/', 303);
    }),
  );

  fastify.get(
    '/console/*',
    handle((request, reply) => {
      if (!assets.built)
        throw ApiError.unavailable('The console was not built (npm run build).', 'console_not_built');
      const path = (request.params as { '*': string })['*'].split('?')[0];
      const asset = assets.get(path) ?? (/\.[a-z0-9]+$/i.test(path) ? undefined : assets.get(''));
      if (!asset) throw ApiError.notFound('No such console file.');
      if (asset.immutable) void reply.header('cache-control', 'public, max-age=31536000, immutable');
      void reply.header('etag', asset.etag).type(asset.type);
      if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
      return reply.send(asset.body);
    }),
  );
}
