import { createHmac } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { DEFAULT_OIDC_ALGORITHMS, type OidcSettings } from '../src/config/auth-audit-settings.js';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

// OIDC bearer tokens from the organisation's identity provider, verified against a JWKS file. The identity
// provider is this test: it holds an RS256 key pair and signs tokens the way Keycloak would.
const ISSUER = 'https://idp.hospital.internal/realms/airlock';
const AUDIENCE = 'airlock';

describe.each(DRIVERS)('OIDC bearer tokens on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  let signingKey: CryptoKey;
  let otherKey: CryptoKey;

  const now = () => Math.floor(Date.now() / 1000);
  const claims = (overrides: JWTPayload = {}): JWTPayload => ({
    sub: 'u-1234',
    preferred_username: 'dr.house',
    realm_access: { roles: ['offline_access', 'airlock-user'] },
    tenant: 'cardiology',
    ...overrides,
  });
  const sign = (
    payload: JWTPayload,
    options: { key?: CryptoKey; kid?: string; exp?: number; nbf?: number; iat?: number } = {},
  ) =>
    new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'idp-1' })
      .setIssuer((payload.iss as string) ?? ISSUER)
      .setAudience((payload.aud as string) ?? AUDIENCE)
      .setIssuedAt(options.iat ?? now())
      .setNotBefore(options.nbf ?? now() - 5)
      .setExpirationTime(options.exp ?? now() + 300)
      .sign(options.key ?? signingKey);
  const authorize = (token: string) =>
    running.client.authorize({
      credential: `Bearer ${token}`,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'stories260K',
      requestId: requestId('oidc'),
    });
  const expectDenied = async (token: string, reason: string, message?: RegExp) => {
    const answer = await authorize(token);
    expect(answer).toMatchObject({ allowed: false, denialReason: reason });
    if (message) expect(answer.message).toMatch(message);
  };

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    const pair = await generateKeyPair('RS256', { extractable: true });
    signingKey = pair.privateKey;
    otherKey = (await generateKeyPair('RS256')).privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
    const jwksFile = join(database.dataDir, 'jwks.json');
    await writeFile(jwksFile, JSON.stringify({ keys: [jwk] }));
    const oidc: OidcSettings = {
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksFile,
      roleClaim: 'realm_access.roles',
      tenantClaim: 'tenant',
      clockSkewSeconds: 30,
      maxTokenLifetimeSeconds: 3600,
      algorithms: DEFAULT_OIDC_ALGORITHMS,
      roleMap: {
        'airlock-admin': 'admin',
        'airlock-auditor': 'auditor',
        'airlock-global-auditor': 'global-auditor',
        'airlock-user': 'user',
      },
    };
    running = await startTestApp(database, { oidc });
    await running.client.upsertTenant({ credential: running.adminKey, tenant: { id: 'cardiology' } });
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('accepts a valid token, mapping its claims to principal, role and tenant', async () => {
    const answer = await authorize(await sign(claims()));
    expect(answer).toMatchObject({
      allowed: true,
      principal: {
        id: 'oidc:u-1234',
        kind: 'PRINCIPAL_KIND_OIDC_TOKEN',
        name: 'dr.house',
        tenant: 'cardiology',
        role: 'ROLE_USER',
        global: false,
      },
    });
  });

  it('tolerates clock skew within the configured seconds', async () => {
    expect((await authorize(await sign(claims(), { exp: now() - 10 }))).allowed).toBe(true);
    expect((await authorize(await sign(claims(), { nbf: now() + 10 }))).allowed).toBe(true);
  });

  it('rejects alg: none', async () => {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ ...claims(), iss: ISSUER, aud: AUDIENCE, exp: now() + 300 })}.`;
    await expectDenied(unsigned, 'DENIAL_REASON_TOKEN_INVALID');
  });

  it('rejects an HMAC token where RSA is expected, even one keyed with the public key', async () => {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const jwk = JSON.stringify(await exportJWK(signingKey));
    const body = `${encode({ alg: 'HS256', typ: 'JWT', kid: 'idp-1' })}.${encode({ ...claims(), iss: ISSUER, aud: AUDIENCE, exp: now() + 300 })}`;
    const token = `${body}.${createHmac('sha256', jwk).update(body).digest('base64url')}`;
    await expectDenied(token, 'DENIAL_REASON_TOKEN_INVALID', /algorithm not allowed/);
  });

  it('rejects an expired token', async () => {
    await expectDenied(await sign(claims(), { exp: now() - 120 }), 'DENIAL_REASON_TOKEN_EXPIRED');
  });

  it('rejects a token that is not yet valid', async () => {
    await expectDenied(
      await sign(claims(), { nbf: now() + 600 }),
      'DENIAL_REASON_TOKEN_INVALID',
      /not yet valid/,
    );
  });

  it('rejects a token issued in the future, one living for 100 years, and control characters in claims', async () => {
    await expectDenied(
      await sign(claims(), { iat: now() + 3600, nbf: now() - 5 }),
      'DENIAL_REASON_TOKEN_INVALID',
      /iat/,
    );
    await expectDenied(
      await sign(claims(), { exp: now() + 100 * 365 * 86_400 }),
      'DENIAL_REASON_TOKEN_INVALID',
      /lifetime/,
    );
    await expectDenied(
      await sign(claims(), { iat: now() - 60, exp: now() + 3 * 3600 }),
      'DENIAL_REASON_TOKEN_INVALID',
      /lifetime/,
    );
    for (const bad of [
      { sub: 'u-1\u0000x' },
      { preferred_username: 'dr\nhouse' },
      { tenant: 'cardiology\u001b[2J' },
    ]) {
      await expectDenied(await sign(claims(bad)), 'DENIAL_REASON_TOKEN_INVALID', /control characters/);
    }
    // Within the rules: accepted.
    expect((await authorize(await sign(claims(), { iat: now() + 10, exp: now() + 3000 }))).allowed).toBe(
      true,
    );
  });

  it('rejects the wrong issuer and the wrong audience', async () => {
    await expectDenied(
      await sign(claims({ iss: 'https://evil.example/realms/x' })),
      'DENIAL_REASON_TOKEN_INVALID',
      /"iss"/,
    );
    await expectDenied(await sign(claims({ aud: 'some-other-app' })), 'DENIAL_REASON_TOKEN_INVALID', /"aud"/);
  });

  it('rejects a token signed by another key, and one naming an unknown key id', async () => {
    await expectDenied(await sign(claims(), { key: otherKey }), 'DENIAL_REASON_TOKEN_INVALID', /signature/);
    await expectDenied(
      await sign(claims(), { kid: 'rotated-away' }),
      'DENIAL_REASON_TOKEN_INVALID',
      /unknown key/,
    );
  });

  it('refuses a token of an unknown tenant, and one without any Airlock role', async () => {
    await expectDenied(await sign(claims({ tenant: 'oncology' })), 'DENIAL_REASON_UNKNOWN_TENANT');
    await expectDenied(
      await sign(claims({ realm_access: { roles: ['offline_access'] } })),
      'DENIAL_REASON_ROLE_FORBIDDEN',
    );
    await expectDenied(await sign(claims({ tenant: undefined })), 'DENIAL_REASON_TOKEN_INVALID', /"tenant"/);
  });

  it('lets a global auditor token read every tenant but not run inference', async () => {
    const token = await sign(
      claims({ sub: 'aud-1', tenant: undefined, realm_access: { roles: ['airlock-global-auditor'] } }),
    );
    expect(await authorize(token)).toMatchObject({
      allowed: false,
      denialReason: 'DENIAL_REASON_ROLE_FORBIDDEN',
    });
    const page = await running.client.queryAuditRecords({
      credential: token,
      filter: { tenant: 'cardiology' },
      pageSize: 1000,
    });
    expect(page.records.some((record) => record.principalId === 'oidc:u-1234')).toBe(true);
  });

  it('records token principals in the audit log and never the token', async () => {
    const token = await sign(claims());
    await authorize(token);
    const page = await running.client.queryAuditRecords({
      credential: running.adminKey,
      filter: { principalId: 'oidc:u-1234' },
      pageSize: 1000,
    });
    expect(page.records.length).toBeGreaterThan(0);
    expect(JSON.stringify(page) + running.logLines.join('\n')).not.toContain(token.split('.')[2]);
  });
});
