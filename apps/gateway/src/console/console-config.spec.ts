import { ConfigError } from '../config.js';
import { loadConsoleConfig } from './console-config.js';

describe('console settings', () => {
  it('defaults to enabled, 8-hour sessions, a random key and no OIDC', () => {
    const config = loadConsoleConfig({});
    expect(config).toMatchObject({ enabled: true, sessionSeconds: 8 * 3600, oidc: null });
    expect(config.sessionKey).toHaveLength(32);
  });

  it('reads a complete OIDC setup and refuses half of one or a plain-http IdP off loopback', () => {
    const oidc = {
      AIRLOCK_CONSOLE_OIDC_ISSUER: 'https://idp.example/realms/a/',
      AIRLOCK_CONSOLE_OIDC_CLIENT_ID: 'airlock-console',
      AIRLOCK_CONSOLE_OIDC_REDIRECT_URL: 'https://airlock.example/console/oidc/callback',
    };
    expect(loadConsoleConfig(oidc).oidc).toMatchObject({
      issuer: 'https://idp.example/realms/a',
      clientId: 'airlock-console',
      token: 'id_token',
      scopes: 'openid profile email',
    });
    expect(() => loadConsoleConfig({ ...oidc, AIRLOCK_CONSOLE_OIDC_REDIRECT_URL: '' })).toThrow(
      /AIRLOCK_CONSOLE_OIDC_REDIRECT_URL/,
    );
    expect(() => loadConsoleConfig({ ...oidc, AIRLOCK_CONSOLE_OIDC_ISSUER: 'http://idp.example' })).toThrow(
      ConfigError,
    );
    expect(
      loadConsoleConfig({ ...oidc, AIRLOCK_CONSOLE_OIDC_ISSUER: 'http://127.0.0.1:8081' }).oidc?.issuer,
    ).toBe('http://127.0.0.1:8081');
    expect(() => loadConsoleConfig({ AIRLOCK_CONSOLE_SESSION_KEY: 'c2hvcnQ=' })).toThrow(
      /AIRLOCK_CONSOLE_SESSION_KEY/,
    );
  });
});
