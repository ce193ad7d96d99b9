// Kubernetes discovery against a FAKE API server: an in-process node:http server that speaks list and
// watch for EndpointSlices (no real cluster can run here). It checks that the informer follows adds,
// readiness changes and deletes, re-lists after 410 Gone, and resumes from a bookmark's resourceVersion.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { KubernetesDiscovery } from '../src/workers/kubernetes-discovery.js';
import { WorkerPool } from '../src/workers/worker-pool.js';

const PATH = '/apis/discovery.k8s.io/v1/namespaces/airlock/endpointslices';

function slice(name: string, ip: string, ready = true, model = 'llama') {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'airlock', resourceVersion: '0', labels: { 'airlock.dev/model': model } },
    addressType: 'IPv4',
    ports: [{ name: 'grpc', port: 50061, protocol: 'TCP' }],
    endpoints: [{ addresses: [ip], conditions: { ready } }],
  };
}

class FakeApiServer {
  readonly server = createServer((req, res) => this.handle(req, res));
  objects = new Map<string, ReturnType<typeof slice>>();
  resourceVersion = 1;
  lists = 0;
  watches: { res: ServerResponse; query: URLSearchParams }[] = [];

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const w of this.watches) w.res.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Changes an object and tells the open watches. */
  emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: ReturnType<typeof slice>): void {
    object.metadata.resourceVersion = String(++this.resourceVersion);
    if (type === 'DELETED') this.objects.delete(object.metadata.name);
    else this.objects.set(object.metadata.name, object);
    this.send({ type, object });
  }

  send(event: unknown): void {
    for (const w of this.watches) w.res.write(`${JSON.stringify(event)}\n`);
  }

  /** Ends the open watches with 410 Gone, as an API server does when a resourceVersion is too old. */
  expire(): void {
    this.send({
      type: 'ERROR',
      object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired' },
    });
    for (const w of this.watches.splice(0)) w.res.end();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname !== PATH) {
      res.writeHead(404).end();
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders(); // without this the informer's start() never resolves (see STACK.md)
      this.watches.push({ res, query: url.searchParams });
      req.on('close', () => (this.watches = this.watches.filter((w) => w.res !== res)));
      return;
    }
    this.lists++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSliceList',
        metadata: { resourceVersion: String(this.resourceVersion) },
        items: [...this.objects.values()],
      }),
    );
  }
}

async function until(check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (!check()) throw new Error('condition not reached');
}

describe('KubernetesDiscovery (fake API server)', () => {
  const api = new FakeApiServer();
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
