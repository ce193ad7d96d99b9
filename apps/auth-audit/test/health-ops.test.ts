import { credentials, loadPackageDefinition, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { DRIVERS, createTestDatabase, type TestDatabase } from './support/test-database.js';
import { requestId, startTestApp, type RunningTestApp } from './support/test-app.js';

type HealthClient = Client & {
  Check(
    request: { service: string },
    callback: (error: ServiceError | null, response: { status: string }) => void,
  ): void;
};

function checkHealth(address: string, service: string): Promise<string> {
  const health = loadPackageDefinition(loadSync(healthProtoPath, { enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: unknown) => HealthClient } } };
  };
  const client = new health.grpc.health.v1.Health(address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Check({ service }, (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    }),
  );
}

describe.each(DRIVERS)('health and ops port on %s', (driver) => {
  let database: TestDatabase;
  let running: RunningTestApp;
  const ops = (path: string) => fetch(`http://127.0.0.1:${running.app.opsPort}${path}`);

  beforeAll(async () => {
    database = await createTestDatabase(driver);
    running = await startTestApp(database);
  });

  afterAll(async () => {
    await running?.stop();
    await database?.drop();
  });

  it('answers grpc.health.v1 for the server and for the audit service', async () => {
    expect(await checkHealth(running.app.grpcAddress, '')).toBe('SERVING');
    expect(await checkHealth(running.app.grpcAddress, 'airlock.audit.v1.AuditService')).toBe('SERVING');
  });

  it('serves /healthz, /readyz and /metrics with the audit and auth metrics', async () => {
    expect((await ops('/healthz')).status).toBe(200);
    expect((await ops('/readyz')).status).toBe(200);
    await running.client.authorize({
      credential: `alk_nobody_${'Q'.repeat(43)}`,
      action: 'ACTION_CHAT_COMPLETIONS',
      model: 'm',
      requestId: requestId(),
    });
    await running.client.verifyAuditChain({ credential: running.adminKey });
    const metrics = await (await ops('/metrics')).text();
    for (const expected of [
      /airlock_audit_append_seconds_bucket/,
      /airlock_audit_batch_size_bucket/,
      /airlock_audit_verify_total\{result="ok"} 1/,
      /airlock_auth_failures_total\{reason="unknown_key"} 1/,
      /airlock_authorize_decisions_total\{outcome="denied"} 1/,
      /airlock_audit_records_total\{kind="request"} 1/,
    ]) {
      expect(metrics).toMatch(expected);
    }
  });
});
