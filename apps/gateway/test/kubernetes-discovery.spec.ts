// Kubernetes discovery against a FAKE API server: an in-process node:http server that speaks list and
// watch for EndpointSlices (no real cluster can run here). It checks that the informer follows adds,
// readiness changes and deletes, re-lists after 410 Gone, and resumes from a bookmark's resourceVersion.
import { pino } from 'pino';
import { KubernetesDiscovery } from '../src/workers/kubernetes-discovery.js';
import { WorkerPool } from '../src/workers/worker-pool.js';
import { FakeKubernetesApi, fakeSlice } from './fake-kubernetes-api.js';

function slice(name: string, ip: string, ready = true, model = 'llama') {
  return fakeSlice(name, { model, endpoints: [{ ip, ready }] });
}

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (!check()) throw new Error('condition not reached');
}

describe('KubernetesDiscovery (fake API server)', () => {
  const api = new FakeKubernetesApi('airlock');
  const logger = pino({ level: 'silent' });
  let pool: WorkerPool;
  let discovery: KubernetesDiscovery;
  const addresses = () =>
    pool
      .list()
      .map((w) => `${w.address}=${w.endpoint.model ?? ''}`)
      .sort();

  beforeAll(async () => {
    const server = await api.start();
    api.objects.set('w1', slice('w1', '10.0.0.1'));
    pool = new WorkerPool({ statusIntervalMs: 60_000, queueCapacity: 1, queueTimeoutMs: 100, logger });
    discovery = new KubernetesDiscovery(
      {
        kind: 'kubernetes',
        namespace: 'airlock',
        selector: 'app.kubernetes.io/component=worker',
        kubeconfig: { server },
      },
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

  it('lists the ready endpoints with the model from the label', () => {
    expect(addresses()).toEqual(['10.0.0.1:50061=llama']);
    expect(api.watches[0].query.get('labelSelector')).toBe('app.kubernetes.io/component=worker');
  });

  it('follows adds, readiness changes and deletes from the watch', async () => {
    await until(() => api.watches.length === 1);
    api.emit('ADDED', slice('w2', '10.0.0.2', true, 'qwen'));
    await until(() => addresses().length === 2);
    expect(addresses()).toEqual(['10.0.0.1:50061=llama', '10.0.0.2:50061=qwen']);
    api.emit('MODIFIED', slice('w2', '10.0.0.2', false, 'qwen'));
    await until(() => addresses().length === 1);
    api.emit('DELETED', slice('w1', '10.0.0.1'));
    await until(() => addresses().length === 0);
  });

  it('re-lists after 410 Gone and catches up with what changed meanwhile', async () => {
    await until(() => api.watches.length === 1);
    const listsBefore = api.lists;
    api.objects.set('w3', slice('w3', '10.0.0.3'));
    api.resourceVersion++;
    api.expire();
    await until(() => api.lists > listsBefore && addresses().length === 1);
    expect(addresses()).toEqual(['10.0.0.3:50061=llama']);
  });

  it('resumes the watch from the resourceVersion of a bookmark', async () => {
    await until(() => api.watches.length === 1);
    api.send({
      type: 'BOOKMARK',
      object: {
        kind: 'EndpointSlice',
        apiVersion: 'discovery.k8s.io/v1',
        metadata: { resourceVersion: '777' },
      },
    });
    await new Promise((r) => setTimeout(r, 100));
    const listsBefore = api.lists;
    for (const w of api.watches.splice(0)) w.res.end(); // a watch that simply ends (not 410): no re-list
    await until(() => api.watches.length === 1);
    expect(api.watches[0].query.get('resourceVersion')).toBe('777');
    expect(api.lists).toBe(listsBefore);
  });
});
