// The cpu-evaluation preset's generated Secrets really work: auth-audit boots with the rendered admin key and
// the rendered mTLS certificates (Helm's genCA/genSignedCert), serves a client holding the rendered gateway
// certificate and refuses one holding the worker's. Real Helm binary, real auth-audit on PGlite; no cluster.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { SERVICE_IDENTITY, internalChannelCredentials, type InternalTransport } from '@airlock/contracts';
import { createLogger } from '@airlock/telemetry';
import { loadAuthAuditSettings } from '../../apps/auth-audit/src/config/auth-audit-settings.js';
import { startAuthAuditApp, type AuthAuditApp } from '../../apps/auth-audit/src/auth-audit-app.js';
import { createAuditClient, grpcCode } from '../../apps/auth-audit/test/support/audit-client.js';
import { ofKind, renderChart } from './helm-harness.js';

interface Secret {
  metadata: { name: string };
  data: Record<string, string>;
}

describe('the cpu-evaluation preset boots', () => {
  const dir = mkdtempSync(join(tmpdir(), 'airlock-preset-'));
  let app: AuthAuditApp | undefined;
  const secrets = new Map<string, Record<string, string>>();
  const files = (component: string) => {
    const data = secrets.get(`airlock-${component}-tls`)!;
    const paths: Record<string, string> = {};
    for (const key of ['ca.crt', 'tls.crt', 'tls.key']) {
      paths[key] = join(dir, `${component}-${key}`);
      writeFileSync(paths[key], Buffer.from(data[key]!, 'base64'), { mode: 0o600 });
    }
    return paths;
  };
  const transport = (component: string): InternalTransport => {
    const paths = files(component);
    return { kind: 'mtls', caFile: paths['ca.crt']!, certFile: paths['tls.crt']!, keyFile: paths['tls.key']!, refreshMs: 60_000 };
  };

  beforeAll(() => {
    for (const secret of ofKind<Secret>(renderChart({ valuesFile: 'presets/cpu-evaluation.yaml' }), 'Secret')) {
      secrets.set(secret.metadata.name, secret.data);
    }
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts auth-audit with the rendered admin key and certificates, and serves only the gateway', async () => {
    const adminKey = Buffer.from(secrets.get('airlock-auth-audit')!['admin-key']!, 'base64').toString('utf8');
    const server = files('auth-audit');
    // The settings parser is the one the process uses: a key in the wrong format stops it here.
    const settings = loadAuthAuditSettings({
      AIRLOCK_DATA_DIR: join(dir, 'data'),
      AIRLOCK_GRPC_PORT: '0',
      AIRLOCK_OPS_PORT: '0',
      AIRLOCK_ADMIN_KEY: adminKey,
      AIRLOCK_TLS_CA_FILE: server['ca.crt'],
      AIRLOCK_TLS_CERT_FILE: server['tls.crt'],
      AIRLOCK_TLS_KEY_FILE: server['tls.key'],
    });
    const silent = new Writable({ write: (_chunk, _encoding, done) => done() });
    app = await startAuthAuditApp(settings, { logger: createLogger({ service: 'auth-audit', destination: silent }) });

    const asGateway = createAuditClient(
      app.grpcAddress,
      internalChannelCredentials(transport('gateway'), SERVICE_IDENTITY.authAudit),
    );
    const tenants = await asGateway.listTenants({ credential: adminKey });
    expect(tenants.tenants.map((tenant) => tenant.id)).toContain('default');
    asGateway.close();

    const asWorker = createAuditClient(
      app.grpcAddress,
      internalChannelCredentials(transport('worker'), SERVICE_IDENTITY.authAudit),
    );
    expect(await grpcCode(asWorker.listTenants({ credential: adminKey }))).toBe(status.PERMISSION_DENIED);
    asWorker.close();

    const plaintext = createAuditClient(app.grpcAddress);
    expect(await grpcCode(plaintext.listTenants({ credential: adminKey }))).toBe(status.UNAVAILABLE);
    plaintext.close();
  });
});

describe('chart TLS modes', () => {
  const deployments = (set: string[] = []) =>
    ofKind<{ metadata: { name: string }; spec: { template: { spec: { containers: { env: { name: string }[] }[] } } } }>(
      renderChart({ set }),
      'Deployment',
    ).filter((deployment) => !deployment.metadata.name.endsWith('postgresql'));
  const envNames = (set?: string[]) =>
    deployments(set).map((deployment) => deployment.spec.template.spec.containers[0]!.env.map((entry) => entry.name));

  it('mounts a TLS Secret into every service by default, and plaintext only when asked for', () => {
    for (const names of envNames()) {
      expect(names).toEqual(expect.arrayContaining(['AIRLOCK_TLS_CA_FILE', 'AIRLOCK_TLS_CERT_FILE', 'AIRLOCK_TLS_KEY_FILE']));
      expect(names).not.toContain('AIRLOCK_INTERNAL_PLAINTEXT');
    }
    for (const names of envNames(['tls.mode=plaintext'])) {
      expect(names).toContain('AIRLOCK_INTERNAL_PLAINTEXT');
      expect(names).not.toContain('AIRLOCK_TLS_CA_FILE');
    }
  });

  it('renders one cert-manager Certificate per service with its URI SAN', () => {
    const certificates = ofKind<{ spec: { uris: string[]; secretName: string; usages: string[] } }>(
      renderChart({ set: ['tls.mode=certManager', 'tls.certManager.issuerRef.name=internal-ca'] }),
      'Certificate',
    );
    expect(certificates.map((certificate) => certificate.spec.uris).sort()).toEqual([
      ['spiffe://airlock/auth-audit'],
      ['spiffe://airlock/gateway'],
      ['spiffe://airlock/worker'],
    ]);
    for (const certificate of certificates) expect(certificate.spec.usages).toEqual(expect.arrayContaining(['server auth', 'client auth']));
  });
});
