// Replica scaling against a FAKE Kubernetes API server (fake-kubernetes-api.ts: no real cluster can run
// here). Discovery's EndpointSlices name each model's Deployment; the scaler reads and merge-patches its
// scale subresource. The admin endpoint on top of this is tested end to end in test/e2e/replicas.test.ts.
import { pino } from 'pino';
import { gatewayConfig } from '../src/config.js';
import { ApiError } from '../src/errors/api-error.js';
import { createDiscovery, type Discovery } from '../src/workers/discovery.js';
import { WorkerPool } from '../src/workers/worker-pool.js';
import { FakeKubernetesApi, fakeSlice } from './fake-kubernetes-api.js';

const logger = pino({ level: 'silent' });

describe('Kubernetes replica scaling (fake API server)', () => {
  const api = new FakeKubernetesApi('airlock');
  let pool: WorkerPool;
  let discovery: Discovery;

  beforeAll(async () => {
    const server = await api.start();
    // llama: two pods, one of them not ready yet. qwen: scaled to zero, so only the controller's
    // placeholder slice (no endpoints, no ports) shows that its Service exists.
    api.objects.set(
      'airlock-worker-llama-x1',
      fakeSlice('airlock-worker-llama-x1', {
        model: 'llama',
        service: 'airlock-worker-llama',
        port: 1,
        endpoints: [{ ip: '127.0.0.1' }, { ip: '127.0.0.2', ready: false }],
      }),
    );
    api.objects.set(
      'airlock-worker-qwen-x2',
      fakeSlice('airlock-worker-qwen-x2', { model: 'qwen', service: 'airlock-worker-qwen' }),
    );
    api.deployments.set('airlock-worker-llama', { replicas: 2, current: 2 });
    api.deployments.set('airlock-worker-qwen', { replicas: 0, current: 0 });
    pool = new WorkerPool({ statusIntervalMs: 60_000, queueCapacity: 1, queueTimeoutMs: 100, logger });
    discovery = await createDiscovery(
      gatewayConfig({
        discovery: {
          kind: 'kubernetes',
          namespace: 'airlock',
          selector: 'app.kubernetes.io/component=worker',
          kubeconfig: { server },
        },
      }),
      pool,
      logger,
    );
    await discovery.start();
  });

  afterAll(async () => {
    await discovery.stop();
    pool.close();
    await api.close();
  });

  beforeEach(() => {
    api.patches.length = 0;
  });

  it('maps each model to its Deployment with the ready pods, pools at zero included', () => {
    expect(discovery.scaler.enabled).toBe(true);
    expect(Object.fromEntries(discovery.scaler.deployments())).toEqual({
      llama: { model: 'llama', deployment: 'airlock-worker-llama', readyReplicas: 1 },
      qwen: { model: 'qwen', deployment: 'airlock-worker-qwen', readyReplicas: 0 },
    });
    // The placeholder slice has no address: the pool gets the llama pod only.
    expect(pool.list().map((w) => w.address)).toEqual(['127.0.0.1:1']);
  });

  it('reads desired and current replicas from the scale subresource', async () => {
    await expect(discovery.scaler.read('llama')).resolves.toEqual({
      model: 'llama',
      namespace: 'airlock',
      deployment: 'airlock-worker-llama',
      desired: 2,
      current: 2,
      ready: 1,
    });
    await expect(discovery.scaler.read('qwen')).resolves.toMatchObject({ desired: 0, current: 0 });
  });

  it('scales up from zero with a merge patch of spec.replicas', async () => {
    const result = await discovery.scaler.scale('qwen', 3);
    expect(result.previous).toBe(0);
    expect(result.replicas).toMatchObject({ deployment: 'airlock-worker-qwen', desired: 3 });
    expect(api.patches).toEqual([
      {
        deployment: 'airlock-worker-qwen',
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 3 } },
      },
    ]);
    expect(api.deployments.get('airlock-worker-qwen')?.replicas).toBe(3);
  });

  it('answers 404 for a model with no worker Deployment, without calling the API', async () => {
    const error = await discovery.scaler.scale('mistral', 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found' });
    expect(api.patches).toEqual([]);
  });

  it('maps API refusals: a missing Deployment, a forbidden service account, a failing server', async () => {
    api.deployments.delete('airlock-worker-llama');
    await expect(discovery.scaler.scale('llama', 1)).rejects.toMatchObject({
      status: 404,
      code: 'deployment_not_found',
    });
    api.deployments.set('airlock-worker-llama', { replicas: 2, current: 2 });
    api.failNextScale = 403;
    await expect(discovery.scaler.scale('llama', 1)).rejects.toMatchObject({
      status: 502,
      code: 'kubernetes_forbidden',
    });
    api.failNextScale = 500;
    await expect(discovery.scaler.read('llama')).rejects.toMatchObject({
      status: 503,
      code: 'kubernetes_unavailable',
    });
    expect(api.patches).toEqual([]);
  });

  it('has nothing to scale with static discovery: a 501 that says why', async () => {
    const staticDiscovery = await createDiscovery(
      gatewayConfig({ discovery: { kind: 'static', workers: [] } }),
      pool,
      logger,
    );
    expect(staticDiscovery.scaler.enabled).toBe(false);
    await expect(staticDiscovery.scaler.scale('llama', 1)).rejects.toMatchObject({
      status: 501,
      code: 'scaling_unsupported',
      message: expect.stringContaining('AIRLOCK_DISCOVERY=kubernetes'),
    });
  });
});
