import { loadAuthAuditSettings } from './auth-audit-settings.js';

describe('auth-audit settings', () => {
  it('has the agreed defaults', () => {
    expect(loadAuthAuditSettings({ AIRLOCK_INTERNAL_PLAINTEXT: 'true' })).toMatchObject({
      dataDir: './data',
      grpcHost: '127.0.0.1',
      grpcPort: 50051,
      opsPort: 9401,
      databaseUrl: undefined,
      checkpointEveryRecords: 1000,
      checkpointIntervalSeconds: 60,
      retentionDays: 0,
      oidc: undefined,
      transport: { kind: 'plaintext' },
    });
  });

  it('needs mTLS files unless plaintext is asked for by name', () => {
    expect(() => loadAuthAuditSettings({})).toThrow(/AIRLOCK_TLS_CA_FILE.*AIRLOCK_INTERNAL_PLAINTEXT=true/);
    expect(
      loadAuthAuditSettings({
        AIRLOCK_TLS_CA_FILE: '/tls/ca.crt',
        AIRLOCK_TLS_CERT_FILE: '/tls/tls.crt',
        AIRLOCK_TLS_KEY_FILE: '/tls/tls.key',
      }).transport,
    ).toEqual({
      kind: 'mtls',
      caFile: '/tls/ca.crt',
      certFile: '/tls/tls.crt',
      keyFile: '/tls/tls.key',
      refreshMs: 60_000,
    });
  });

  it('names the variable of a bad value', () => {
    expect(() => loadAuthAuditSettings({ AIRLOCK_GRPC_PORT: 'http' })).toThrow(/AIRLOCK_GRPC_PORT/);
    expect(() => loadAuthAuditSettings({ AIRLOCK_DATABASE_URL: 'mysql://x' })).toThrow(
      /AIRLOCK_DATABASE_URL/,
    );
    expect(() => loadAuthAuditSettings({ AIRLOCK_OIDC_ROLE_MAP: 'x=superuser' })).toThrow(
      /AIRLOCK_OIDC_ROLE_MAP/,
    );
    expect(() => loadAuthAuditSettings({ AIRLOCK_OIDC_ALGORITHMS: 'HS256' })).toThrow(
      /AIRLOCK_OIDC_ALGORITHMS/,
    );
    expect(() => loadAuthAuditSettings({ AIRLOCK_ADMIN_KEY: 'changeme' })).toThrow(/AIRLOCK_ADMIN_KEY/);
  });

  it('refuses a JWKS URL that is not https', () => {
    expect(() =>
      loadAuthAuditSettings({
        AIRLOCK_INTERNAL_PLAINTEXT: 'true',
        AIRLOCK_OIDC_ISSUER: 'https://idp',
        AIRLOCK_OIDC_AUDIENCE: 'airlock',
        AIRLOCK_OIDC_JWKS_URL: 'http://keycloak.idp.svc/certs',
      }),
    ).toThrow(/AIRLOCK_OIDC_JWKS_URL/);
  });

  it('refuses a half-configured OIDC setup, naming what is missing', () => {
    expect(() =>
      loadAuthAuditSettings({ AIRLOCK_INTERNAL_PLAINTEXT: 'true', AIRLOCK_OIDC_ISSUER: 'https://idp' }),
    ).toThrow(/AIRLOCK_OIDC_AUDIENCE.*AIRLOCK_OIDC_JWKS_FILE/);
  });

  it('reads a complete OIDC setup, with the bind address from AIRLOCK_HOST', () => {
    const settings = loadAuthAuditSettings({
      AIRLOCK_INTERNAL_PLAINTEXT: 'true',
      AIRLOCK_HOST: '0.0.0.0',
      AIRLOCK_OIDC_ISSUER: 'https://idp/realms/a',
      AIRLOCK_OIDC_AUDIENCE: 'airlock',
      AIRLOCK_OIDC_JWKS_URL: 'https://keycloak.idp.svc/realms/a/protocol/openid-connect/certs',
      AIRLOCK_OIDC_ROLE_MAP: 'doctors=user, it-admins=admin',
    });
    expect(settings.grpcHost).toBe('0.0.0.0');
    expect(settings.oidc).toMatchObject({
      audience: 'airlock',
      roleMap: { doctors: 'user', 'it-admins': 'admin' },
    });
  });
});
