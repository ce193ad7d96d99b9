// gateway.console: one session-sealing key for every gateway replica (generated once, or the operator's Secret) and
// the OIDC client settings, rendered by the real Helm binary into the gateway's environment.
import { consoleEnvSchema } from '../../apps/gateway/src/console/console-config.js';
import { ofKind, renderChart, runHelm, templateArgs, type KubeObject } from './helm-harness.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
type Deployment = KubeObject & { spec: { template: { spec: { containers: { env: EnvVar[] }[] } } } };
type Secret = KubeObject & { data: Record<string, string> };

function gatewayEnv(objects: KubeObject[]): Map<string, EnvVar> {
  const gateway = ofKind<Deployment>(objects, 'Deployment').find(
    (d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'gateway',
  )!;
  return new Map(gateway.spec.template.spec.containers[0].env.map((e) => [e.name, e]));
}

describe('gateway.console', () => {
  it('by default every replica reads one generated 32-byte key from a Secret the chart keeps', () => {
    const objects = renderChart();
    const env = gatewayEnv(objects);
    expect(env.get('AIRLOCK_CONSOLE_ENABLED')?.value).toBe('true');
    const ref = env.get('AIRLOCK_CONSOLE_SESSION_KEY')!.valueFrom!.secretKeyRef!;
    const secret = ofKind<Secret>(objects, 'Secret').find((s) => s.metadata.name === ref.name)!;
    expect(secret).toBeDefined();
    const value = Buffer.from(secret.data[ref.key], 'base64').toString('utf8');
    // The gateway's own settings schema accepts it (base64 of exactly 32 bytes).
    expect(consoleEnvSchema.parse({ AIRLOCK_CONSOLE_SESSION_KEY: value }).AIRLOCK_CONSOLE_SESSION_KEY).toBe(value);
    expect(Buffer.from(value, 'base64')).toHaveLength(32);
    expect(env.has('AIRLOCK_CONSOLE_OIDC_ISSUER')).toBe(false);
  });

  it("the operator's Secret replaces the generated one; OIDC settings and the client secret come through", () => {
    const objects = renderChart({
      set: [
        'gateway.console.sessionKeySecret.name=console-keys',
        'gateway.console.oidc.issuer=https://sso.hospital.example/realms/staff',
        'gateway.console.oidc.clientId=airlock-console',
        'gateway.console.oidc.redirectUrl=https://airlock.hospital.example/console/oidc/callback',
        'gateway.console.oidc.clientSecret.name=console-oidc',
      ],
    });
    const env = gatewayEnv(objects);
    expect(env.get('AIRLOCK_CONSOLE_SESSION_KEY')!.valueFrom!.secretKeyRef).toEqual({
      name: 'console-keys',
      key: 'session-key',
    });
    expect(ofKind<Secret>(objects, 'Secret').some((s) => s.metadata.name.endsWith('-console-session'))).toBe(false);
    expect(env.get('AIRLOCK_CONSOLE_OIDC_ISSUER')?.value).toBe('https://sso.hospital.example/realms/staff');
    expect(env.get('AIRLOCK_CONSOLE_OIDC_CLIENT_ID')?.value).toBe('airlock-console');
    expect(env.get('AIRLOCK_CONSOLE_OIDC_REDIRECT_URL')?.value).toBe(
      'https://airlock.hospital.example/console/oidc/callback',
    );
    expect(env.get('AIRLOCK_CONSOLE_OIDC_CLIENT_SECRET')!.valueFrom!.secretKeyRef).toEqual({
      name: 'console-oidc',
      key: 'client-secret',
    });
  });

  it('disabled: no key, no Secret; an issuer without a client id or an http issuer is refused', () => {
    const off = renderChart({ set: ['gateway.console.enabled=false'] });
    expect(gatewayEnv(off).get('AIRLOCK_CONSOLE_ENABLED')?.value).toBe('false');
    expect(gatewayEnv(off).has('AIRLOCK_CONSOLE_SESSION_KEY')).toBe(false);
    expect(ofKind<Secret>(off, 'Secret').some((s) => s.metadata.name.endsWith('-console-session'))).toBe(false);

    const noClient = runHelm(templateArgs({ set: ['gateway.console.oidc.issuer=https://sso.example'] }));
    expect(noClient.status).not.toBe(0);
    expect(noClient.stderr).toContain('gateway.console.oidc.clientId is required');
    const http = runHelm(templateArgs({ set: ['gateway.console.oidc.issuer=http://sso.example'] }));
    expect(http.status).not.toBe(0);
    expect(http.stderr).toContain('issuer');
  });
});
