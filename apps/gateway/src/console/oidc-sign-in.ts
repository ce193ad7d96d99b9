import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '@airlock/telemetry';
import { ApiError } from '../errors/api-error.js';
import type { ConsoleOidcConfig } from './console-config.js';
import { cookies, setCookie, type ConsoleSessions } from './console-session.js';
import { seal, unseal } from './session-seal.js';

/**
 * The login in flight: sealed in its own short-lived cookie, so that nothing is kept per login here. Lax, not
 * Strict: the IdP's redirect back is a navigation from another site, which must still carry it.
 */
const LOGIN_COOKIE = '__Host-airlock-oidc';
const LOGIN_SECONDS = 600;

interface LoginState {
  state: string;
  nonce: string;
  verifier: string;
  expiresAt: number;
}

interface ProviderMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

const random = () => randomBytes(32).toString('base64url');
const sameText = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Authorization code + PKCE (S256) against the organisation's IdP, with the gateway as the client: the code
 * is exchanged here and the token goes only into the sealed session cookie, never to the page. The ID
 * token's signature, issuer, audience and nonce are checked here; auth-audit checks the token it is given
 * again on every call.
 */
export class OidcSignIn {
  private metadata?: Promise<{ provider: ProviderMetadata; keys: JWTVerifyGetKey }>;

  constructor(
    private readonly config: ConsoleOidcConfig,
    private readonly key: Buffer,
    private readonly sessions: ConsoleSessions,
    private readonly logger: Logger,
  ) {}

  /** The IdP's authorization URL for a new login; its state, nonce and verifier go into the login cookie. */
  async start(reply: FastifyReply): Promise<string> {
    const { provider } = await this.provider();
    const login: LoginState = {
      state: random(),
      nonce: random(),
      verifier: random(),
      expiresAt: Math.floor(Date.now() / 1000) + LOGIN_SECONDS,
    };
    setCookie(reply, LOGIN_COOKIE, seal(this.key, 'oidc-login', login), LOGIN_SECONDS, 'Lax');
    const url = new URL(provider.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.config.clientId,
      redirect_uri: this.config.redirectUrl,
      scope: this.config.scopes,
      state: login.state,
      nonce: login.nonce,
      code_challenge: createHash('sha256').update(login.verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    return url.toString();
  }

  /** The IdP sent the browser back: check state, exchange the code, check the ID token, open the session. */
  async finish(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const query = request.query as Record<string, string | undefined>;
    const sealed = cookies(request).get(LOGIN_COOKIE);
    setCookie(reply, LOGIN_COOKIE, '', 0, 'Lax');
    const login = sealed ? unseal<LoginState>(this.key, 'oidc-login', sealed) : undefined;
    if (query.error) {
      // Only the error code's own alphabet (RFC 6749): the IdP's text is not ours to show.
      const code = /^[a-z_]{1,64}$/.test(query.error) ? query.error : 'error';
      throw ApiError.unauthenticated(`The identity provider refused the sign-in (${code}).`);
    }
    if (!login || !query.state || !sameText(query.state, login.state) || !query.code)
      throw ApiError.unauthenticated('This sign-in was not started here or took too long; start again.');
    const { provider, keys } = await this.provider();
    const tokens = await this.exchange(provider, query.code, login.verifier);
    const { payload } = await jwtVerify(tokens.id_token, keys, {
      issuer: provider.issuer,
      audience: this.config.clientId,
    }).catch(() => {
      throw ApiError.unauthenticated('The identity provider returned an ID token that does not verify.');
    });
    if (typeof payload.nonce !== 'string' || !sameText(payload.nonce, login.nonce))
      throw ApiError.unauthenticated('The ID token is not for this sign-in (nonce).');
    const credential = this.config.token === 'id_token' ? tokens.id_token : tokens.access_token;
    if (!credential) throw ApiError.unauthenticated('The identity provider returned no access token.');
    const expires = decodeJwt(credential).exp;
    await this.sessions.signIn(
      request,
      reply,
      credential,
      'oidc',
      typeof expires === 'number' ? expires : undefined,
    );
  }

  private async exchange(
    provider: ProviderMetadata,
    code: string,
    verifier: string,
  ): Promise<{ id_token: string; access_token?: string }> {
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: this.config.redirectUrl,
      client_id: this.config.clientId,
      code_verifier: verifier,
      ...(this.config.clientSecret ? { client_secret: this.config.clientSecret } : {}),
    });
    const response = await fetch(provider.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form,
      signal: AbortSignal.timeout(10_000),
    }).catch(() => {
      throw ApiError.unavailable('The identity provider cannot be reached.', 'idp_unavailable');
    });
    const body = (await response.json().catch(() => ({}))) as { id_token?: unknown; access_token?: unknown };
    if (!response.ok || typeof body.id_token !== 'string') {
      this.logger.warn({ status: response.status }, 'console OIDC code exchange refused');
      throw ApiError.unauthenticated('The identity provider refused the code exchange.');
    }
    return {
      id_token: body.id_token,
      access_token: typeof body.access_token === 'string' ? body.access_token : undefined,
    };
  }

  /** Discovery once (retried after a failure): the endpoints and the key set the ID token is checked with. */
  private provider(): Promise<{ provider: ProviderMetadata; keys: JWTVerifyGetKey }> {
    this.metadata ??= (async () => {
      const url = `${this.config.issuer}/.well-known/openid-configuration`;
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`discovery answered ${response.status}`);
      const provider = (await response.json()) as ProviderMetadata;
      if (provider.issuer?.replace(/\/$/, '') !== this.config.issuer)
        throw new Error('discovery names another issuer');
      return { provider, keys: createRemoteJWKSet(new URL(provider.jwks_uri)) };
    })().catch((error: unknown) => {
      this.metadata = undefined;
      this.logger.warn({ err: (error as Error).message }, 'console OIDC discovery failed');
      throw ApiError.unavailable('The identity provider cannot be reached.', 'idp_unavailable');
    });
    return this.metadata;
  }
}
