import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthAuditClient } from '../auth/auth-audit.port.js';
import { ApiError } from '../errors/api-error.js';
import type { ConsoleConfig } from './console-config.js';
import { seal, unseal, type ConsoleSession } from './session-seal.js';

/** __Host-: Secure, Path=/ and no Domain, enforced by the browser; never readable from script. */
export const SESSION_COOKIE = '__Host-airlock-console';
export const CSRF_HEADER = 'x-airlock-csrf';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What the page may know about its session: never the credential. */
export interface SessionView {
  principal: string;
  name: string;
  tenant: string;
  role: string;
  global: boolean;
  kind: ConsoleSession['kind'];
  expires_at: string;
  csrf_token: string;
}

export function cookies(request: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0) out.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  return out;
}

export function setCookie(
  reply: FastifyReply,
  name: string,
  value: string,
  maxAgeSeconds: number,
  sameSite: 'Strict' | 'Lax' = 'Strict',
): void {
  const cookie = `${name}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; Secure; SameSite=${sameSite}`;
  const previous = reply.getHeader('set-cookie');
  const list = Array.isArray(previous) ? previous : previous ? [String(previous)] : [];
  void reply.header('set-cookie', [...list, cookie]);
}

/** Where a request came from, as the browser says it: refuses cross-site state changes outright. */
export function sameOrigin(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = request.headers.origin;
  return origin === undefined || origin === `${request.protocol}://${request.headers.host ?? ''}`;
}

/**
 * Console sessions: sign-in checks the credential through auth-audit (which records the sign-in), and the
 * sealed cookie stands in for the Authorization header on the admin API, with a CSRF token on every call
 * that changes something.
 */
export class ConsoleSessions {
  constructor(
    private readonly config: ConsoleConfig,
    private readonly auth: AuthAuditClient,
  ) {}

  /** Authenticates the credential (auth-audit commits a `console.sign_in` record) and seals the session. */
  async signIn(
    request: FastifyRequest,
    reply: FastifyReply,
    credential: string,
    kind: ConsoleSession['kind'],
    notAfter?: number,
  ): Promise<SessionView> {
    const authorization = await this.auth.authorize({
      credential,
      requestId: request.id,
      action: 'console.sign_in',
      model: '',
      clientAddress: request.ip,
      userAgent: request.headers['user-agent'] ?? '',
      // Never the body: it holds the key.
      requestBody: Buffer.alloc(0),
      clientRequestId: '',
      reserveTokens: 0,
    });
    void reply.headers(authorization.auditHeaders);
    const now = Math.floor(Date.now() / 1000);
    const session: ConsoleSession = {
      credential,
      csrf: randomBytes(24).toString('base64url'),
      principal: authorization.principal,
      name: authorization.principalName ?? '',
      tenant: authorization.tenant,
      role: authorization.role.replace(/^ROLE_/, '').toLowerCase(),
      global: authorization.global ?? false,
      kind,
      // An OIDC session ends with its token at the latest.
      expiresAt: Math.min(now + this.config.sessionSeconds, notAfter ?? Number.MAX_SAFE_INTEGER),
    };
    setCookie(
      reply,
      SESSION_COOKIE,
      seal(this.config.sessionKey, 'session', session),
      session.expiresAt - now,
    );
    return view(session);
  }

  signOut(reply: FastifyReply): void {
    setCookie(reply, SESSION_COOKIE, '', 0);
  }

  current(request: FastifyRequest): ConsoleSession | undefined {
    const sealed = cookies(request).get(SESSION_COOKIE);
    return sealed ? unseal<ConsoleSession>(this.config.sessionKey, 'session', sealed) : undefined;
  }

  view(request: FastifyRequest): SessionView | undefined {
    const session = this.current(request);
    return session && view(session);
  }

  /**
   * For an admin API call that carries no Authorization header: the session's credential becomes its
   * bearer, after the CSRF checks for anything but reads. Without a session nothing changes (a 401 follows).
   */
  admit(request: FastifyRequest): void {
    if (request.headers.authorization !== undefined) return;
    const session = this.current(request);
    if (!session) return;
    if (!SAFE_METHODS.has(request.method)) this.checkCsrf(request, session);
    request.headers.authorization = `Bearer ${session.credential}`;
  }

  checkCsrf(request: FastifyRequest, session: ConsoleSession): void {
    const given = Buffer.from(String(request.headers[CSRF_HEADER] ?? ''));
    const expected = Buffer.from(session.csrf);
    const tokenOk = given.length === expected.length && timingSafeEqual(given, expected);
    if (!tokenOk || !sameOrigin(request)) {
      throw new ApiError(
        403,
        'permission_error',
        'This console call is missing its CSRF token or came from another site.',
        'csrf_failed',
      );
    }
  }
}

function view(session: ConsoleSession): SessionView {
  return {
    principal: session.principal,
    name: session.name,
    tenant: session.tenant,
    role: session.role,
    global: session.global,
    kind: session.kind,
    expires_at: new Date(session.expiresAt * 1000).toISOString(),
    csrf_token: session.csrf,
  };
}
