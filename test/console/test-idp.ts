// A small OpenID Connect provider for the console's sign-in tests, run by the test itself on loopback: the
// discovery document, a JWKS, an authorization endpoint with a sign-in page (one button per test user), and
// a token endpoint that checks the code, the client, the redirect URI and the PKCE verifier (S256) the way
// Keycloak does, then returns an RS256 ID token. Codes are single-use and expire after 60 s.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface IdpUser {
  sub: string;
  name: string;
  roles: string[];
  tenant?: string;
}

interface PendingCode {
  user: IdpUser;
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string;
  expiresAt: number;
}

const read = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });

const escape = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export class TestIdp {
  issuer = '';
  /** Token requests, and those refused (bad verifier, reused code, wrong client or redirect). */
  readonly tokenRequests: { ok: boolean; reason: string }[] = [];
  private server: Server | null = null;
  private key!: CryptoKey;
  private jwk!: JWK;
  private readonly codes = new Map<string, PendingCode>();
  private readonly requests = new Map<string, URLSearchParams>();

  constructor(
    readonly clientId: string,
    private readonly users: IdpUser[],
    /** Exactly the redirect URI registered for the client (set once the gateway's port is known). */
    public redirectUri = '',
  ) {}

  get jwks(): { keys: JWK[] } {
    return { keys: [this.jwk] };
  }

  async start(): Promise<string> {
    const pair = await generateKeyPair('RS256', { extractable: true });
    this.key = pair.privateKey;
    this.jwk = { ...(await exportJWK(pair.publicKey)), kid: 'test-idp-1', alg: 'RS256', use: 'sig' };
    this.server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        res.statusCode = 500;
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/realms/test`;
    return this.issuer;
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.issuer);
    const path = url.pathname.replace('/realms/test', '');
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (path === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: this.issuer,
        authorization_endpoint: `${this.issuer}/protocol/openid-connect/auth`,
        token_endpoint: `${this.issuer}/protocol/openid-connect/token`,
        jwks_uri: `${this.issuer}/protocol/openid-connect/certs`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (path === '/protocol/openid-connect/certs') return json(200, this.jwks);
    if (path === '/protocol/openid-connect/auth' && req.method === 'GET') {
      const q = url.searchParams;
      const bad =
        q.get('response_type') !== 'code'
          ? 'response_type'
          : q.get('client_id') !== this.clientId
            ? 'client_id'
            : q.get('redirect_uri') !== this.redirectUri
              ? 'redirect_uri'
              : q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')
                ? 'pkce'
                : !q.get('scope')?.split(' ').includes('openid')
                  ? 'scope'
                  : '';
      if (bad) return json(400, { error: 'invalid_request', error_description: bad });
      const id = randomBytes(12).toString('hex');
      this.requests.set(id, q);
      const buttons = this.users
        .map((u) => `<button name="user" value="${escape(u.sub)}">Sign in as ${escape(u.name)}</button>`)
        .join('\n');
      res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end(
          `<!doctype html><title>Test IdP</title><h1>Test identity provider</h1>` +
            `<form method="post" action="${this.issuer}/approve"><input type="hidden" name="request" value="${id}">${buttons}</form>`,
        );
      return;
    }
    if (path === '/approve' && req.method === 'POST') {
      const form = new URLSearchParams(await read(req));
      const q = this.requests.get(form.get('request') ?? '');
      const user = this.users.find((u) => u.sub === form.get('user'));
      if (!q || !user) return json(400, { error: 'invalid_request' });
      this.requests.delete(form.get('request')!);
      const code = randomBytes(24).toString('base64url');
      this.codes.set(code, {
        user,
        clientId: q.get('client_id')!,
        redirectUri: q.get('redirect_uri')!,
        challenge: q.get('code_challenge')!,
        nonce: q.get('nonce') ?? '',
        expiresAt: Date.now() + 60_000,
      });
      const back = new URL(q.get('redirect_uri')!);
      back.searchParams.set('code', code);
      if (q.get('state')) back.searchParams.set('state', q.get('state')!);
      res.writeHead(302, { location: back.toString() }).end();
      return;
    }
    if (path === '/protocol/openid-connect/token' && req.method === 'POST') {
      const form = new URLSearchParams(await read(req));
      const code = this.codes.get(form.get('code') ?? '');
      this.codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const reason = !code
        ? 'unknown or reused code'
        : code.expiresAt < Date.now()
          ? 'expired code'
          : form.get('grant_type') !== 'authorization_code'
            ? 'grant_type'
            : form.get('client_id') !== code.clientId
              ? 'client_id'
              : form.get('redirect_uri') !== code.redirectUri
                ? 'redirect_uri'
                : createHash('sha256').update(verifier).digest('base64url') !== code.challenge
                  ? 'PKCE verifier'
                  : '';
      this.tokenRequests.push({ ok: reason === '', reason });
      if (reason || !code) return json(400, { error: 'invalid_grant', error_description: reason });
      const now = Math.floor(Date.now() / 1000);
      const idToken = await new SignJWT({
        nonce: code.nonce,
        name: code.user.name,
        preferred_username: code.user.name,
        roles: code.user.roles,
        ...(code.user.tenant ? { tenant: code.user.tenant } : {}),
      })
        .setProtectedHeader({ alg: 'RS256', kid: 'test-idp-1' })
        .setIssuer(this.issuer)
        .setSubject(code.user.sub)
        .setAudience(code.clientId)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(this.key);
      return json(200, { access_token: idToken, id_token: idToken, token_type: 'Bearer', expires_in: 600 });
    }
    json(404, { error: 'not_found' });
  }
}
