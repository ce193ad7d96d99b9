import { loadAuthAuditSettings } from './auth-audit-settings.js';

describe('auth-audit settings', () => {
  it('has the agreed defaults', () => {
    expect(loadAuthAuditSettings({})).toMatchObject({
      dataDir: './data',
      grpcHost: '127.0.0.1',
      grpcPort: 50051,
      opsPort: 9401,
      databaseUrl: undefined,
      checkpointEveryRecords: 1000,
      checkpointIntervalSeconds: 60,
      retentionDays: 0,
      oidc: undefined,
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

  it('refuses a half-configured OIDC setup, naming what is missing', () => {
    expect(() => loadAuthAuditSettings({ AIRLOCK_OIDC_ISSUER: 'https://idp' })).toThrow(
      /AIRLOCK_OIDC_AUDIENCE.*AIRLOCK_OIDC_JWKS_FILE/,
    );
  });

  it('reads a complete OIDC setup, with the bind address from AIRLOCK_HOST', () => {
    const settings = loadAuthAuditSettings({
      AIRLOCK_HOST: '0.0.0.0',
      AIRLOCK_OIDC_ISSUER: 'https://idp/realms/a',
      AIRLOCK_OIDC_AUDIENCE: 'airlock',
      AIRLOCK_OIDC_JWKS_URL: 'http://keycloak.idp.svc/realms/a/protocol/openid-connect/certs',
      AIRLOCK_OIDC_ROLE_MAP: 'doctors=user, it-admins=admin',
    });
    expect(settings.grpcHost).toBe('0.0.0.0');
    expect(settings.oidc).toMatchObject({
      audience: 'airlock',
      roleMap: { doctors: 'user', 'it-admins': 'admin' },
    });
  });
});
