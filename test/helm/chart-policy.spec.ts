// Assertions on the rendered objects of every values file: the chart's security and scheduling promises.
import { parse } from 'yaml';
import { ofKind, renderChart, valuesFiles, type KubeObject } from './helm-harness.js';

interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  env?: { name: string; value?: string; valueFrom?: Record<string, unknown> }[];
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  startupProbe?: { periodSeconds: number; failureThreshold: number };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  securityContext?: Record<string, unknown> & { seccompProfile?: { type: string } };
  containers: Container[];
  initContainers?: Container[];
  volumes?: Record<string, unknown>[];
  tolerations?: { key?: string; effect?: string }[];
  automountServiceAccountToken?: boolean;
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}
type Workload = KubeObject & { spec: { template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface NetworkPolicy extends KubeObject {
  spec: {
    podSelector: { matchLabels?: Record<string, string> };
    policyTypes: string[];
    ingress?: { from?: Record<string, unknown>[] }[];
    egress?: { to?: ({ ipBlock?: { cidr: string } } & Record<string, unknown>)[]; ports?: { port: number | string }[] }[];
  };
}

const workloadKinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob'];
// A CronJob's pod template sits one level deeper; seen here as its Job would be, so every check covers it too.
const workloads = (objects: KubeObject[]) =>
  objects
    .filter((o) => workloadKinds.includes(o.kind))
    .map((o) => (o.kind === 'CronJob' ? { ...o, spec: (o.spec as { jobTemplate: { spec: unknown } }).jobTemplate.spec } : o)) as Workload[];
const containers = (w: Workload) => [...w.spec.template.spec.containers, ...(w.spec.template.spec.initContainers ?? [])];
const component = (o: KubeObject) => o.metadata.labels?.['app.kubernetes.io/component'];
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);
// Volume types Pod Security "restricted" allows.
const restrictedVolumeTypes = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

const rendered = new Map<string, KubeObject[]>();
const render = (file: string) => {
  if (!rendered.has(file)) rendered.set(file, renderChart({ valuesFile: file }));
  return rendered.get(file)!;
};
const valuesOf = (file: string) => (file.startsWith('ci/default') ? {} : file);

describe.each(valuesFiles())('rendered with %s', (file) => {
  const objects = () => render(file);
  const registry = file === 'ci/full-values.yaml' ? 'harbor.hospital.internal:5443/ai/' : 'registry.local/';

  it('denies all ingress and egress by default, for every pod of the release', () => {
    const policies = ofKind<NetworkPolicy>(objects(), 'NetworkPolicy');
    const defaultDeny = policies.find((p) => p.metadata.name.endsWith('-default-deny'))!;
    expect(defaultDeny.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    expect(defaultDeny.spec.ingress ?? []).toEqual([]);
    expect(defaultDeny.spec.egress ?? []).toEqual([]);
    for (const workload of workloads(objects())) {
      expect(matches(defaultDeny.spec.podSelector.matchLabels!, workload.spec.template.metadata.labels)).toBe(true);
    }
  });

  it('allows egress only to named peers: never to any address, never without a destination', () => {
    for (const policy of ofKind<NetworkPolicy>(objects(), 'NetworkPolicy')) {
      for (const rule of policy.spec.egress ?? []) {
        expect(rule.to?.length).toBeGreaterThan(0);
        expect(rule.ports?.length).toBeGreaterThan(0);
        for (const peer of rule.to!) expect(['0.0.0.0/0', '::/0']).not.toContain(peer.ipBlock?.cidr);
      }
    }
    const workerPolicy = ofKind<NetworkPolicy>(objects(), 'NetworkPolicy').find((p) => component(p) === 'worker')!;
    expect(workerPolicy.spec.policyTypes).toContain('Egress');
    // DNS, and auth-audit's gRPC port for the worker's usage reports: nothing else.
    expect(workerPolicy.spec.egress!.map((rule) => rule.ports!.map((p) => p.port))).toEqual([[53, 53], [50051]]);
    expect(workerPolicy.spec.egress![1].to).toEqual([
      { podSelector: { matchLabels: expect.objectContaining({ 'app.kubernetes.io/component': 'auth-audit' }) } },
    ]);
  });

  it('runs every pod under Pod Security "restricted"', () => {
    for (const workload of workloads(objects())) {
      const pod = workload.spec.template.spec;
      const where = `${workload.kind}/${workload.metadata.name}`;
      expect({ where, nonRoot: pod.securityContext?.runAsNonRoot, seccomp: pod.securityContext?.seccompProfile?.type }).toEqual({
        where,
        nonRoot: true,
        seccomp: 'RuntimeDefault',
      });
      expect([pod.hostNetwork, pod.hostPID, pod.hostIPC].some(Boolean)).toBe(false);
      for (const container of containers(workload)) {
        const sc = container.securityContext!;
        expect({ where, container: container.name, sc: { ...sc, runAsUser: undefined, runAsGroup: undefined } }).toEqual({
          where,
          container: container.name,
          sc: {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
            runAsUser: undefined,
            runAsGroup: undefined,
          },
        });
        expect(sc.runAsUser).toBeGreaterThan(0);
      }
      for (const volume of pod.volumes ?? []) {
        const type = Object.keys(volume).find((key) => key !== 'name')!;
        // hostPath (a scenario that says it needs a privileged namespace) and image volumes are the only exceptions.
        if (type === 'hostPath') expect(file).toBe('ci/hostpath-values.yaml');
        else if (type !== 'image') expect(restrictedVolumeTypes).toContain(type);
      }
    }
  });

  it('mounts a service-account token only into the gateway', () => {
    for (const workload of workloads(objects())) {
      expect(workload.spec.template.spec.automountServiceAccountToken).toBe(component(workload) === 'gateway');
    }
    for (const account of ofKind<KubeObject & { automountServiceAccountToken: boolean }>(objects(), 'ServiceAccount')) {
      expect(account.automountServiceAccountToken).toBe(false);
    }
  });

  it('pulls every image from the configured registry, pinned, IfNotPresent, never latest', () => {
    const images: string[] = [];
    for (const workload of workloads(objects())) {
      for (const container of containers(workload)) {
        images.push(container.image);
        expect(container.imagePullPolicy).toBe('IfNotPresent');
      }
      for (const volume of workload.spec.template.spec.volumes ?? []) {
        const image = volume.image as { reference: string } | undefined;
        if (image) images.push(image.reference);
      }
    }
    expect(images.length).toBeGreaterThanOrEqual(3);
    for (const image of images) {
      expect(image.startsWith(registry)).toBe(true);
      expect(image).toMatch(/^[^@]+:[A-Za-z0-9_][A-Za-z0-9_.-]*(@sha256:[a-f0-9]{64})?$/);
      expect(image).not.toMatch(/:latest(@|$)/);
    }
  });

  it('gives the gateway exactly its RBAC: EndpointSlices get/list/watch and worker deployments/scale get/patch, namespaced', () => {
    expect(ofKind(objects(), 'ClusterRole')).toEqual([]);
    expect(ofKind(objects(), 'ClusterRoleBinding')).toEqual([]);
    const [role] = ofKind<KubeObject & { rules: Rule[] }>(objects(), 'Role');
    const workerDeployments = workloads(objects())
      .filter((w) => component(w) === 'worker')
      .map((w) => w.metadata.name)
      .sort();
    expect(ofKind(objects(), 'Role')).toHaveLength(1);
    expect(role.metadata.namespace).toBe('airlock');
    const sortedNames = (rule: Rule) => ({ ...rule, ...(rule.resourceNames && { resourceNames: [...rule.resourceNames].sort() }) });
    expect(role.rules.map(sortedNames)).toEqual([
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['apps'], resources: ['deployments/scale'], resourceNames: workerDeployments, verbs: ['get', 'patch'] },
    ]);
    const [binding] = ofKind<KubeObject & { subjects: { kind: string; name: string }[]; roleRef: { name: string } }>(
      objects(),
      'RoleBinding',
    );
    const gateway = workloads(objects()).find((w) => component(w) === 'gateway')!;
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: gateway.spec.template.spec.serviceAccountName, namespace: 'airlock' },
    ]);
  });

  it('uses policy/v1 PodDisruptionBudgets that select the pods they protect', () => {
    for (const pdb of ofKind<KubeObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(
      objects(),
      'PodDisruptionBudget',
    )) {
      expect(pdb.apiVersion).toBe('policy/v1');
      const protectedPods = workloads(objects()).filter((w) =>
        matches(pdb.spec.selector.matchLabels, w.spec.template.metadata.labels),
      );
      expect(protectedPods.map((w) => w.metadata.name)).toEqual([pdb.metadata.name]);
    }
  });

  it('wires the services together with the agreed settings, secrets only from Secrets', () => {
    const byComponent = (name: string) => workloads(objects()).filter((w) => component(w) === name);
    const gateway = envOf(byComponent('gateway')[0].spec.template.spec.containers[0]);
    expect(gateway).toMatchObject({
      AIRLOCK_HOST: '0.0.0.0',
      AIRLOCK_PORT: '8080',
      AIRLOCK_OPS_PORT: '9400',
      AIRLOCK_DISCOVERY: 'kubernetes',
      AIRLOCK_WORKER_SELECTOR: 'app.kubernetes.io/component=worker,app.kubernetes.io/instance=airlock',
    });
    const authAuditService = ofKind(objects(), 'Service').find((s) => component(s) === 'auth-audit')!;
    expect(gateway.AIRLOCK_AUTH_AUDIT_ADDRESS).toBe(`${authAuditService.metadata.name}:50051`);

    const authAudit = envOf(byComponent('auth-audit')[0].spec.template.spec.containers[0]);
    expect(authAudit).toMatchObject({ AIRLOCK_GRPC_HOST: '0.0.0.0', AIRLOCK_GRPC_PORT: '50051', AIRLOCK_OPS_PORT: '9401' });
    const fromSecret = { secretKeyRef: expect.objectContaining({ name: expect.any(String) }) };
    // With a CloudNativePG Cluster the URL names the role and no password; PGPASSWORD comes from the role's Secret.
    const cnpg = objects().find((o) => o.kind === 'Cluster');
    expect(authAudit.AIRLOCK_DATABASE_URL).toEqual(cnpg ? expect.stringMatching(/^postgres:\/\/[a-z_]+@/) : fromSecret);
    if (cnpg) expect(authAudit.PGPASSWORD).toEqual(fromSecret);
    expect(authAudit.AIRLOCK_ADMIN_KEY).toEqual(fromSecret);
    for (const workload of workloads(objects())) {
      for (const container of containers(workload)) {
        for (const variable of container.env ?? []) {
          if (/(_KEY|PASSWORD|SECRET|_TOKEN)$/.test(variable.name)) expect(variable.value).toBeUndefined();
          // A URL in plain text may name a user, never a password.
          if (/DATABASE_URL$/.test(variable.name) && variable.value !== undefined)
            expect(variable.value).toMatch(/^postgres:\/\/[^:@/]+@[^@]+$/);
        }
      }
    }
    // Only evaluation settings make the chart write Secrets: the PostgreSQL one, and with tls.mode generate the CA
    // and one certificate per service.
    // The CloudNativePG roles' passwords (basic-auth, kept) are a production exception.
    const type = (s: KubeObject) => (s as unknown as { type: string }).type;
    const roleSecrets = ofKind(objects(), 'Secret').filter((s) => type(s) === 'kubernetes.io/basic-auth');
    expect(roleSecrets).toHaveLength(cnpg ? 2 : 0);
    // So is the console's session-sealing key: random, kept across upgrades, and losing it only signs people out.
    const consoleKeys = ofKind(objects(), 'Secret').filter((s) => s.metadata.name.endsWith('-console-session'));
    expect(consoleKeys).toHaveLength(1);
    const secrets = ofKind(objects(), 'Secret').filter(
      (s) => type(s) !== 'kubernetes.io/basic-auth' && !consoleKeys.includes(s),
    );
    const evaluation = objects().some((o) => o.kind === 'StatefulSet' && component(o) === 'postgresql');
    const generatedTls = secrets.filter((s) => type(s) === 'kubernetes.io/tls').length;
    expect([0, 4]).toContain(generatedTls);
    expect(secrets).toHaveLength((evaluation ? 1 : 0) + generatedTls);
    expect(secrets.map((s) => s.metadata.labels?.['airlock.dev/evaluation-only'])).toEqual(secrets.map(() => 'true'));
  });

  it('gives each model a worker pool the gateway discovers, with its catalog entry and probes that wait for the load', () => {
    const services = ofKind<KubeObject & { spec: { selector: Record<string, string>; clusterIP?: string } }>(objects(), 'Service');
    const [catalog] = ofKind<KubeObject & { data: Record<string, string> }>(objects(), 'ConfigMap').filter(
      (c) => c.metadata.name.endsWith('-model-catalog'),
    );
    const gatewayEnv = envOf(workloads(objects()).find((w) => component(w) === 'gateway')!.spec.template.spec.containers[0]);
    const selector = Object.fromEntries(
      (gatewayEnv.AIRLOCK_WORKER_SELECTOR as string)
        .split(',')
        .map((pair) => pair.split('=')),
    ) as Record<string, string>;
    const pools = workloads(objects()).filter((w) => component(w) === 'worker');
    expect(pools.length).toBeGreaterThan(0);
    for (const pool of pools) {
      const model = pool.metadata.labels!['airlock.dev/model'];
      const service = services.find((s) => s.metadata.name === pool.metadata.name)!;
      expect(service.metadata.labels).toMatchObject({ 'airlock.dev/model': model, 'app.kubernetes.io/component': 'worker' });
      expect(matches(selector, service.metadata.labels)).toBe(true);
      expect(matches(service.spec.selector, pool.spec.template.metadata.labels)).toBe(true);

      const container = pool.spec.template.spec.containers[0];
      const env = envOf(container);
      expect(env).toMatchObject({ AIRLOCK_GRPC_HOST: '0.0.0.0', AIRLOCK_GRPC_PORT: '50061', AIRLOCK_OPS_PORT: '9402' });
      const catalogMount = container.volumeMounts!.find((m) => m.name === 'catalog')!;
      expect(env.AIRLOCK_MODELS_FILE).toBe(`${catalogMount.mountPath}/models.yaml`);

      const entry = parse(catalog.data[`${model}.yaml`]) as { models: Record<string, unknown>[] };
      expect(entry.models).toHaveLength(1);
      expect(entry.models[0].id).toBe(model);
      expect(String(entry.models[0].path)).toMatch(/^\/models\/[^.]/);
      const allowed = ['id', 'path', 'sha256', 'parts', 'signature', 'contextSize', 'parallel', 'queueSize', 'gpuLayers', 'gpu', 'threads', 'embeddings', 'chatTemplate'];
      for (const key of Object.keys(entry.models[0])) expect(allowed).toContain(key);

      // The startup probe covers the whole model-load budget; the grace period covers preStop plus the drain.
      const startup = container.startupProbe!;
      expect(startup.periodSeconds * startup.failureThreshold).toBeGreaterThanOrEqual(600);
      const preStopMs = Number(/(\d+)\)$/.exec(container.lifecycle!.preStop!.exec!.command[2])![1]);
      expect(pool.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(
        preStopMs / 1000 + Number(env.AIRLOCK_DRAIN_TIMEOUT_SECONDS),
      );
    }
  });

  it('requests GPUs and tolerates GPU taints exactly on the pools that ask for them', () => {
    for (const pool of workloads(objects()).filter((w) => component(w) === 'worker')) {
      const container = pool.spec.template.spec.containers[0];
      const gpus = container.resources?.limits?.['nvidia.com/gpu'];
      const tolerates = (pool.spec.template.spec.tolerations ?? []).some((t) => t.key === 'nvidia.com/gpu');
      const catalog = ofKind<KubeObject & { data: Record<string, string> }>(objects(), 'ConfigMap').find((c) =>
        c.metadata.name.endsWith('-model-catalog'),
      )!;
      const entry = (parse(catalog.data[`${pool.metadata.labels!['airlock.dev/model']}.yaml`]) as { models: { gpu: string }[] })
        .models[0];
      if (gpus === undefined) {
        expect(tolerates).toBe(false);
        expect(container.image).toMatch(/\/airlock\/worker:/);
        expect(container.resources?.requests?.['nvidia.com/gpu']).toBeUndefined();
      } else {
        expect(gpus).toBeGreaterThan(0);
        expect(container.resources!.requests!['nvidia.com/gpu']).toBe(gpus);
        expect(tolerates).toBe(true);
        expect(container.image).toMatch(/\/airlock\/worker-cuda:/);
        expect(entry.gpu).not.toBe('cpu');
      }
    }
  });

  it('ships monitoring and autoscaling objects only when switched on', () => {
    const kinds = new Set(objects().map((o) => o.kind));
    const full = valuesOf(file) === 'ci/full-values.yaml';
    expect(kinds.has('ServiceMonitor')).toBe(full);
    expect(kinds.has('PrometheusRule')).toBe(full);
    expect(kinds.has('ScaledObject')).toBe(full);
  });
});

describe('presets', () => {
  const pool = (file: string) => workloads(render(file)).find((w) => component(w) === 'worker')!;
  const limits = (file: string) => pool(file).spec.template.spec.containers[0].resources!.limits!;

  it('gpt-oss-20b on one 24 GB GPU and gpt-oss-120b on one 80 GB GPU: one GPU each, CUDA image', () => {
    expect(limits('presets/gpt-oss-20b-24gb.yaml')['nvidia.com/gpu']).toBe(1);
    expect(limits('presets/gpt-oss-120b-80gb.yaml')['nvidia.com/gpu']).toBe(1);
    expect(pool('presets/gpt-oss-120b-80gb.yaml').metadata.labels!['airlock.dev/model']).toBe('gpt-oss-120b');
  });

  it('CPU-only evaluation: no GPU, the CPU image, and the clearly labelled evaluation PostgreSQL', () => {
    expect(limits('presets/cpu-evaluation.yaml')['nvidia.com/gpu']).toBeUndefined();
    const postgres = render('presets/cpu-evaluation.yaml').find((o) => o.kind === 'StatefulSet')!;
    expect(postgres.metadata.labels!['airlock.dev/evaluation-only']).toBe('true');
  });
});

describe('the full scenario', () => {
  const objects = () => render('ci/full-values.yaml');

  it('scales one pool with an HPA on the external queue metric and another with a KEDA Prometheus trigger', () => {
    const [hpa] = ofKind<KubeObject & { spec: { metrics: { type: string; external: { metric: { name: string; selector: unknown } } }[] } }>(
      objects(),
      'HorizontalPodAutoscaler',
    ).filter((h) => component(h) === 'worker');
    expect(hpa.spec.metrics[0]).toMatchObject({
      type: 'External',
      external: { metric: { name: 'airlock_worker_queued_requests', selector: { matchLabels: { model: 'gpt-oss-20b' } } } },
    });
    const [scaled] = ofKind<KubeObject & { spec: { triggers: { type: string; metadata: { query: string } }[] } }>(
      objects(),
      'ScaledObject',
    );
    expect(scaled.metadata.name).toMatch(/gpt-oss-120b$/);
    expect(scaled.spec.triggers[0].type).toBe('prometheus');
    expect(scaled.spec.triggers[0].metadata.query).toContain('airlock_worker_queued_requests{namespace="airlock", model="gpt-oss-120b"}');
    // An autoscaled pool leaves replicas to its autoscaler.
    const autoscaled = workloads(objects()).filter((w) => /gpt-oss-(20|120)b$/.test(w.metadata.name));
    for (const pool of autoscaled) expect((pool.spec as Record<string, unknown>).replicas).toBeUndefined();
  });

  it('alerts on audit append failures, worker down, queue saturation, a nearly full KV cache and dropped usage reports', () => {
    const [rule] = ofKind<KubeObject & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } }>(objects(), 'PrometheusRule');
    const alerts = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
    expect(new Set(alerts)).toEqual(
      new Set([
        'AirlockAuditAppendFailures',
        'AirlockWorkerDown',
        'AirlockUsageReportsDropped',
        'AirlockModelNotReady',
        'AirlockWorkerQueueSaturated',
        'AirlockWorkerKvCacheNearFull',
      ]),
    );
    const saturation = rule.spec.groups.flatMap((g) => g.rules).filter((r) => r.alert === 'AirlockWorkerQueueSaturated');
    expect(saturation).toHaveLength(3);
  });

  it('ships a Grafana dashboard the sidecar picks up, as valid JSON', () => {
    const dashboard = ofKind<KubeObject & { data: Record<string, string> }>(objects(), 'ConfigMap').find((c) =>
      c.metadata.name.endsWith('-dashboard'),
    )!;
    expect(dashboard.metadata.labels!.grafana_dashboard).toBe('1');
    const json = JSON.parse(dashboard.data['airlock-overview.json']) as { uid: string; panels: unknown[] };
    expect(json.uid).toBe('airlock-overview');
    expect(json.panels.length).toBeGreaterThan(4);
  });

  it('lets clients in only from the configured namespaces and CIDRs, and auth-audit out only to its database', () => {
    const policies = ofKind<NetworkPolicy>(objects(), 'NetworkPolicy');
    const gateway = policies.find((p) => component(p) === 'gateway')!;
    expect(gateway.spec.ingress![0].from).toEqual([
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'clinical-apps' } } },
      { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } },
      { ipBlock: { cidr: '10.20.0.0/16' } },
    ]);
    const apiRule = gateway.spec.egress!.find((r) => r.to!.some((peer) => peer.ipBlock?.cidr === '10.0.0.1/32'))!;
    expect(apiRule.ports!.map((p) => p.port)).toEqual([443, 6443]);
    const authAudit = policies.find((p) => component(p) === 'auth-audit')!;
    const cidrs = authAudit.spec.egress!.flatMap((r) => r.to!.map((peer) => peer.ipBlock?.cidr)).filter(Boolean);
    expect(cidrs).toEqual(['10.30.4.10/32', '10.30.9.0/24']);
  });
});
