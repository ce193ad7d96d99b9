import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { Server, status, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { createWorkerClient } from './worker-client.js';
import { ensureLocalPki, type ServiceTlsFiles } from './internal-pki.js';
import {
  SERVICE_IDENTITY,
  internalChannelCredentials,
  internalServerCredentials,
  internalTransportFromEnv,
  type InternalTransport,
  type ServiceIdentity,
} from './internal-tls.js';
import { loadSync } from '@grpc/proto-loader';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { PROTO_LOADER_OPTIONS, WORKER_PROTO_FILE } from './proto.js';

// A real grpc-js server with the worker contract's GetStatus, behind the same credentials the services use.
const definition = loadPackageDefinition(loadSync(WORKER_PROTO_FILE, PROTO_LOADER_OPTIONS)) as unknown as {
  airlock: { worker: { v1: { WorkerService: { service: ServiceDefinition } } } };
};

function transportOf(files: ServiceTlsFiles, refreshMs = 100): InternalTransport {
  const parsed = internalTransportFromEnv({ ...files, AIRLOCK_TLS_REFRESH_SECONDS: '1' });
  if (!parsed.ok) throw new Error(parsed.problem);
  return { ...parsed.transport, refreshMs } as InternalTransport;
}

describe('internal mTLS', () => {
  let dir: string;
  let pki: Awaited<ReturnType<typeof ensureLocalPki>>;
  let server: Server;
  let address: string;
  let handled = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'airlock-pki-'));
    pki = await ensureLocalPki(join(dir, 'tls'));
    server = new Server();
    server.addService(definition.airlock.worker.v1.WorkerService.service, {
      getStatus: (_call: ServerUnaryCall<unknown, unknown>, reply: sendUnaryData<unknown>) => {
        handled += 1;
        reply(null, { workerId: 'w', models: [] });
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        '127.0.0.1:0',
        internalServerCredentials(transportOf(pki.worker), [
          { methodPrefix: '/airlock.worker.v1.WorkerService/', callers: [SERVICE_IDENTITY.gateway] },
        ]),
        (error, bound) => (error ? reject(error) : resolve(bound)),
      ),
    );
    address = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  function getStatus(
    files: ServiceTlsFiles | 'plaintext',
    expectedServer: ServiceIdentity = SERVICE_IDENTITY.worker,
  ): Promise<ServiceError | undefined> {
    const transport: InternalTransport = files === 'plaintext' ? { kind: 'plaintext' } : transportOf(files);
    const client = createWorkerClient(address, {}, internalChannelCredentials(transport, expectedServer));
    return new Promise((resolve) => {
      (client.getStatus as (r: object, o: object, cb: (e: ServiceError | null) => void) => void)(
        {},
        { deadline: Date.now() + 10_000 },
        (error) => {
          client.close();
          resolve(error ?? undefined);
        },
      );
    });
  }

  it('serves the gateway and refuses other identities before the handler runs', async () => {
    expect(await getStatus(pki.gateway)).toBeUndefined();
    const before = handled;
    const refused = await getStatus(pki['auth-audit']);
    expect(refused?.code).toBe(status.PERMISSION_DENIED);
    expect(handled).toBe(before);
  });

  it('refuses a plaintext client and a client without a certificate', async () => {
    const plaintext = await getStatus('plaintext');
    expect(plaintext?.code).toBe(status.UNAVAILABLE);
    // A TLS client that trusts the CA but shows no certificate: the handshake is refused.
    const alert = await new Promise<string>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: Number(address.split(':')[1]),
        ca: readFileSync(pki.gateway.AIRLOCK_TLS_CA_FILE),
        ALPNProtocols: ['h2'],
        checkServerIdentity: () => undefined,
      });
      socket.on('error', (error: Error) => resolve(error.message));
      socket.on('secureConnect', () => socket.write('PRI * HTTP/2.0\r\n\r\n'));
      socket.on('close', () => resolve('closed'));
    });
    expect(alert).toMatch(/certificate|closed|alert/i);
  });

  it('a client refuses a server whose certificate names another service', async () => {
    const error = await getStatus(pki.gateway, SERVICE_IDENTITY.authAudit);
    expect(error?.code).toBe(status.UNAVAILABLE);
  });

  it('a certificate from another CA is refused', async () => {
    const other = await ensureLocalPki(join(dir, 'other-ca'), ['gateway']);
    const error = await getStatus(other.gateway);
    expect(error?.code).toBe(status.UNAVAILABLE);
  });

  it('writes the CA and the leaves 0600 in a 0700 directory, with the URI SAN per service', () => {
    expect(statSync(join(dir, 'tls')).mode & 0o777).toBe(0o700);
    for (const files of Object.values<ServiceTlsFiles>(pki)) {
      for (const file of Object.values(files) as string[]) expect(statSync(file).mode & 0o777).toBe(0o600);
    }
    const leaf = new X509Certificate(readFileSync(pki.gateway.AIRLOCK_TLS_CERT_FILE));
    expect(leaf.subjectAltName).toBe('URI:spiffe://airlock/gateway');
    expect(leaf.checkIssued(new X509Certificate(readFileSync(pki.gateway.AIRLOCK_TLS_CA_FILE)))).toBe(true);
  });

  it('serves a rotated certificate without a restart', async () => {
    // A handshake that lands between the key and the certificate being replaced may fail: poll on.
    const served = () =>
      new Promise<string>((resolve) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port: Number(address.split(':')[1]),
          ca: readFileSync(pki.gateway.AIRLOCK_TLS_CA_FILE),
          cert: readFileSync(pki.gateway.AIRLOCK_TLS_CERT_FILE),
          key: readFileSync(pki.gateway.AIRLOCK_TLS_KEY_FILE),
          ALPNProtocols: ['h2'],
          checkServerIdentity: () => undefined,
        });
        socket.on('secureConnect', () => {
          resolve(socket.getPeerCertificate().serialNumber);
          socket.destroy();
        });
        socket.on('error', () => resolve(''));
      });
    const before = await served();
    expect(before).not.toBe('');
    await ensureLocalPki(join(dir, 'tls'), ['worker']); // same CA, new worker leaf
    const rotated = new X509Certificate(readFileSync(pki.worker.AIRLOCK_TLS_CERT_FILE)).serialNumber;
    expect(rotated).not.toBe(before);
    // The watcher re-reads every 100 ms; poll a bounded number of handshakes (counted, not timed).
    let seen = before;
    for (let attempt = 0; attempt < 100 && seen.toUpperCase() !== rotated.toUpperCase(); attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = await served();
    }
    expect(seen.toUpperCase()).toBe(rotated.toUpperCase());
    expect(await getStatus(pki.gateway)).toBeUndefined();
  });

  it('needs the three files or an explicit plaintext setting', () => {
    expect(internalTransportFromEnv({})).toMatchObject({ ok: false });
    expect(internalTransportFromEnv({ AIRLOCK_TLS_CA_FILE: '/x' })).toMatchObject({ ok: false });
    expect(internalTransportFromEnv({ AIRLOCK_INTERNAL_PLAINTEXT: 'true' })).toEqual({
      ok: true,
      transport: { kind: 'plaintext' },
    });
    expect(
      internalTransportFromEnv({ AIRLOCK_INTERNAL_PLAINTEXT: 'true', AIRLOCK_TLS_CA_FILE: '/x' }),
    ).toMatchObject({ ok: false });
  });
});
