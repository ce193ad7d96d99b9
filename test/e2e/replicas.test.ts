// Scaling worker pools from the admin API, end to end: the real auth-audit (PGlite) checks the role and
// keeps the audit records, the real worker serves the model and reports its load; the Kubernetes API is a
// FAKE (apps/gateway/test/fake-kubernetes-api.ts, an in-process HTTP server: no cluster can run here) whose
// EndpointSlice points the gateway at the real worker and which records every scale patch.
import { FakeKubernetesApi, fakeSlice } from '../../apps/gateway/test/fake-kubernetes-api.js';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MODEL, Platform, ROOT, type Json, describeWithModels } from './platform.js';

const run = promisify(execFile);
const CLI = join(ROOT, 'apps', 'cli', 'bin', 'airlock.mjs');

const DEPLOYMENT = 'airlock-worker-stories260k';
/** A pool scaled to zero: its Service exists (a placeholder slice), no pod does. */
const IDLE_MODEL = 'gpt-oss-20b';
const IDLE_DEPLOYMENT = 'airlock-worker-gpt-oss-20b';

/** One entry of GET /admin/v1/models. */
interface ModelEntry {
  id: string;
  workers: string[];
  load: Record<string, number>;
  replicas: Record<string, unknown> | null;
}

const entry = (json: Json, id: string): ModelEntry | undefined =>
  (json.data as ModelEntry[]).find((m) => m.id === id);

describeWithModels('PUT /admin/v1/models/{id}/replicas (Kubernetes discovery, fake API server)', () => {
  const api = new FakeKubernetesApi('airlock');
  let server = '';
  const platform = new Platform({
    database: 'pglite',
    gateway: (p) => {
      const [ip, port] = p.workerAddress.split(':');
      api.objects.set(
        `${DEPLOYMENT}-abc12`,
        fakeSlice(`${DEPLOYMENT}-abc12`, {
          model: MODEL,
          service: DEPLOYMENT,
          port: Number(port),
          endpoints: [{ ip }],
        }),
      );
      api.objects.set(
        `${IDLE_DEPLOYMENT}-def34`,
        fakeSlice(`${IDLE_DEPLOYMENT}-def34`, { model: IDLE_MODEL, service: IDLE_DEPLOYMENT }),
      );
      return {
        discovery: {
          kind: 'kubernetes',
          namespace: 'airlock',
          selector: 'app.kubernetes.io/component=worker',
          kubeconfig: { server },
        },
      };
    },
  });
  let userKey = '';

  beforeAll(async () => {
    api.deployments.set(DEPLOYMENT, { replicas: 1, current: 1 });
    api.deployments.set(IDLE_DEPLOYMENT, { replicas: 0, current: 0 });
    server = await api.start();
    await platform.start();
    userKey = await platform.createKey({ role: 'user' });
  }, 180_000);
  afterAll(async () => {
    await platform.close();
    await api.close();
  }, 60_000);
  beforeEach(() => {
    api.patches.length = 0;
  });

  let sequence = 0;
  async function putReplicas(
    model: string,
    body: unknown,
    key = platform.adminKey,
  ): Promise<{ status: number; json: Json; requestId: string }> {
    const requestId = `e2e-scale-${++sequence}-${Date.now()}`;
    const response = await fetch(`${platform.url}/admin/v1/models/${encodeURIComponent(model)}/replicas`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${key}`,
        'x-request-id': requestId,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    // The gateway issues its own id (the client's is kept as client_request_id): records go by that one.
    expect(response.headers.get('x-request-id')).not.toBe(requestId);
    return {
      status: response.status,
      json: await response.json(),
      requestId: response.headers.get('x-request-id')!,
    };
  }

  it('lists desired and ready replicas next to the live load, pools at zero included', async () => {
    const { status, json } = await platform.admin('GET', '/models');
    expect(status).toBe(200);
    const served = entry(json, MODEL)!;
    expect(served.replicas).toEqual({
      model: MODEL,
      namespace: 'airlock',
      deployment: DEPLOYMENT,
      desired: 1,
      current: 1,
      ready: 1,
    });
    // The live load comes from the real worker's status (stories260K runs with 4 parallel sequences).
    expect(served.load).toMatchObject({ workers_alive: 1, slots_total: 4 });
    expect(served.workers).toEqual([platform.workerAddress]);
    const idle = entry(json, IDLE_MODEL);
    expect(idle).toMatchObject({
      workers: [],
      load: { workers_alive: 0, slots_total: 0 },
      replicas: { deployment: IDLE_DEPLOYMENT, desired: 0, ready: 0 },
    });
  });

  it('scales the Deployment through its scale subresource and records the action in the audit log', async () => {
    const { status, json, requestId } = await putReplicas(MODEL, { replicas: 3 });
    expect(status).toBe(200);
    expect(json).toEqual({
      object: 'model.replicas',
      model: MODEL,
      namespace: 'airlock',
      deployment: DEPLOYMENT,
      desired: 3,
      current: 1,
      ready: 1,
      previous: 1,
    });
    expect(api.patches).toEqual([
      {
        deployment: DEPLOYMENT,
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 3 } },
      },
    ]);
    const listed = await platform.admin('GET', '/models');
    expect(entry(listed.json, MODEL)?.replicas?.desired).toBe(3);

    // The request record (Authorize, before the change) and the admin action with its outcome.
    const records = await platform.auditRecords(requestId, 2);
    expect(records.map((r) => String(r.kind)).sort()).toEqual(['admin_action', 'request']);
    const action = records.find((r) => r.kind === 'admin_action');
    expect(action).toMatchObject({
      action: 'models.scale',
      target: MODEL,
      outcome: 'succeeded',
      status_code: 200,
      role: 'admin',
    });
    expect(JSON.parse(String(action.details_json))).toEqual({
      namespace: 'airlock',
      deployment: DEPLOYMENT,
      from: 1,
      to: 3,
    });
    expect(records.find((r) => r.kind === 'request')).toMatchObject({
      action: 'models.manage',
      outcome: 'allowed',
    });
  });

  it('scales from the CLI (`airlock models scale`), which exits non-zero with the API message on refusal', async () => {
    const airlock = (args: string[], key = platform.adminKey) =>
      run(process.execPath, [CLI, '--url', platform.url, '--key', key, ...args]);
    const table = (await airlock(['models', 'scale', MODEL, '2'])).stdout;
    expect(table).toMatch(new RegExp(`${MODEL}\\s+${DEPLOYMENT}\\s+\\d+\\s+2`));
    expect(api.patches.at(-1)).toMatchObject({ deployment: DEPLOYMENT, body: { spec: { replicas: 2 } } });
    await expect(airlock(['models', 'scale', MODEL, 'two'])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('whole number'),
    });
    await expect(airlock(['models', 'scale', MODEL, '1'], userKey)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining('403'),
    });
  });

  it('scales a pool up from zero', async () => {
    const { status, json } = await putReplicas(IDLE_MODEL, { replicas: 1 });
    expect(status).toBe(200);
    expect(json).toMatchObject({ deployment: IDLE_DEPLOYMENT, previous: 0, desired: 1 });
    expect(api.deployments.get(IDLE_DEPLOYMENT)?.replicas).toBe(1);
  });

  it('refuses a non-admin key with 403, changes nothing, and audits the refusal', async () => {
    const { status, json, requestId } = await putReplicas(MODEL, { replicas: 0 }, userKey);
    expect(status).toBe(403);
    expect(json.error).toMatchObject({ type: 'permission_error' });
    expect(api.patches).toEqual([]);
    const [denied] = await platform.auditRecords(requestId, 1);
    expect(denied).toMatchObject({ kind: 'request', outcome: 'denied', status_code: 403 });
    const anonymous = await putReplicas(MODEL, { replicas: 0 }, '');
    expect(anonymous.status).toBe(401);
  });

  it('answers 404 for an unknown model and records the failed action', async () => {
    const { status, json, requestId } = await putReplicas('no-such-model', { replicas: 1 });
    expect(status).toBe(404);
    expect(json.error).toMatchObject({ type: 'not_found_error', code: 'model_not_found' });
    expect(api.patches).toEqual([]);
    const action = (await platform.auditRecords(requestId, 2)).find((r) => r.kind === 'admin_action');
    expect(action).toMatchObject({
      action: 'models.scale',
      target: 'no-such-model',
      outcome: 'failed',
      status_code: 404,
      error_class: 'model_not_found',
    });
  });

  it.each([
    [{ replicas: -1 }, 'replicas'],
    [{ replicas: 1.5 }, 'replicas'],
    [{ replicas: '2' }, 'replicas'],
    [{ replicas: 65 }, 'replicas'], // above AIRLOCK_MAX_REPLICAS (64 by default)
    [{}, 'replicas'],
    [undefined, 'replicas'],
    [{ replicas: 2, force: true }, 'force'],
  ])('answers 400 naming the field for the body %j', async (body, param) => {
    const { status, json } = await putReplicas(MODEL, body);
    expect(status).toBe(400);
    expect(json.error).toMatchObject({ type: 'invalid_request_error', param });
    expect(api.patches).toEqual([]);
  });

  it('leaves an audit chain that verifies', async () => {
    const { json } = await platform.admin('POST', '/audit/verify', {});
    expect(json.ok).toBe(true);
  });
});
