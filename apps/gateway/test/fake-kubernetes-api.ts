// A FAKE Kubernetes API server: an in-process node:http server (no real cluster can run here) that speaks
// just what the gateway uses, in one namespace: list and watch of EndpointSlices (with 410 Gone and
// bookmarks driven by the test) and GET / PATCH of the `scale` subresource of Deployments. Shared by the
// discovery and scaling specs and by the end-to-end replicas test.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeEndpoint {
  ip: string;
  ready?: boolean;
}

export interface FakeSlice {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion: string; labels: Record<string, string> };
  addressType: string;
  ports: { name: string; port: number; protocol: string }[];
  endpoints: { addresses: string[]; conditions: { ready: boolean } }[];
}

/**
 * An EndpointSlice of a worker Service as the EndpointSlice controller writes it: the Service's labels
 * mirrored (the model), `kubernetes.io/service-name`, one endpoint per pod. A slice with no endpoints and
 * no ports is the controller's placeholder for a Service with no pods (a pool scaled to zero).
 */
export function fakeSlice(
  name: string,
  options: {
    namespace?: string;
    model?: string;
    service?: string;
    port?: number;
    endpoints?: FakeEndpoint[];
  } = {},
): FakeSlice {
  const endpoints = options.endpoints ?? [];
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name,
      namespace: options.namespace ?? 'airlock',
      resourceVersion: '0',
      labels: {
        'app.kubernetes.io/component': 'worker',
        'kubernetes.io/service-name': options.service ?? name,
        ...(options.model ? { 'airlock.dev/model': options.model } : {}),
      },
    },
    addressType: 'IPv4',
    ports: endpoints.length > 0 ? [{ name: 'grpc', port: options.port ?? 50061, protocol: 'TCP' }] : [],
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], conditions: { ready: e.ready ?? true } })),
  };
}

/** One PATCH the fake received on a scale subresource. */
export interface ScalePatch {
  deployment: string;
  contentType: string;
  body: unknown;
}

export class FakeKubernetesApi {
  private readonly server = createServer((req, res) => void this.handle(req, res));
  readonly objects = new Map<string, FakeSlice>();
  /** Worker Deployments by name: desired (spec) and current (status) replicas. */
  readonly deployments = new Map<string, { replicas: number; current: number }>();
  readonly patches: ScalePatch[] = [];
  /** Status code the next scale request (GET or PATCH) answers with, as a Status object. */
  failNextScale: number | null = null;
  resourceVersion = 1;
  lists = 0;
  watches: { res: ServerResponse; query: URLSearchParams }[] = [];

  constructor(readonly namespace = 'airlock') {}

  private get slicesPath(): string {
    return `/apis/discovery.k8s.io/v1/namespaces/${this.namespace}/endpointslices`;
  }

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
  emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: FakeSlice): void {
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

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (url.pathname === this.slicesPath) return this.endpointSlices(req, res, url);
    const scale = new RegExp(`^/apis/apps/v1/namespaces/${this.namespace}/deployments/([^/]+)/scale$`).exec(
      url.pathname,
    );
    if (scale) return this.scale(req, res, decodeURIComponent(scale[1]));
    status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
  }

  private endpointSlices(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders(); // without this the informer's start() never resolves (see STACK.md)
      this.watches.push({ res, query: url.searchParams });
      req.on('close', () => (this.watches = this.watches.filter((w) => w.res !== res)));
      return;
    }
    this.lists++;
    json(res, 200, {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSliceList',
      metadata: { resourceVersion: String(this.resourceVersion) },
      items: [...this.objects.values()],
    });
  }

  /** The autoscaling/v1 Scale of a Deployment, read or merge-patched (what `kubectl scale` sends). */
  private async scale(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const body = await readBody(req);
    if (this.failNextScale !== null) {
      const code = this.failNextScale;
      this.failNextScale = null;
      return status(res, code, code === 403 ? 'Forbidden' : 'InternalError', `refused by the fake (${code})`);
    }
    const deployment = this.deployments.get(name);
    if (!deployment) return status(res, 404, 'NotFound', `deployments.apps "${name}" not found`);
    if (req.method === 'PATCH') {
      const contentType = req.headers['content-type'] ?? '';
      const patch = JSON.parse(body.toString('utf8')) as { spec?: { replicas?: unknown } };
      this.patches.push({ deployment: name, contentType, body: patch });
      if (contentType !== 'application/merge-patch+json') {
        return status(res, 415, 'UnsupportedMediaType', `the fake expects a merge patch, got ${contentType}`);
      }
      const replicas = patch.spec?.replicas;
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        return status(res, 422, 'Invalid', 'spec.replicas must be a non-negative integer');
      }
      deployment.replicas = replicas;
    } else if (req.method !== 'GET') {
      return status(res, 405, 'MethodNotAllowed', `${req.method} is not allowed here`);
    }
    json(res, 200, {
      apiVersion: 'autoscaling/v1',
      kind: 'Scale',
      metadata: { name, namespace: this.namespace, resourceVersion: String(this.resourceVersion) },
      // replicas is omitempty in the real API: a Deployment at zero has no spec.replicas in its Scale.
      spec: deployment.replicas > 0 ? { replicas: deployment.replicas } : {},
      status: { replicas: deployment.current, selector: `airlock.dev/model=${name}` },
    });
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
}
