// What a hospital's platform team plugs in: their CA bundle, their own volumes and variables, a PostgreSQL client
// certificate, a way in (Ingress or Gateway API HTTPRoute) that keeps streams flowing, and the proxies whose
// X-Forwarded-For the audit may believe. Rendered from ci/full-values.yaml with the real Helm binary.
import { parse } from 'yaml';
import { ofKind, renderChart, type KubeObject } from './helm-harness.js';

interface Container {
  env?: { name: string; value?: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
type Pod = { spec: { containers: Container[]; volumes?: ({ name: string } & Record<string, unknown>)[] } };
type Workload = KubeObject & { spec: { template: Pod } };

const objects = renderChart({ valuesFile: 'ci/full-values.yaml' });
const component = (o: KubeObject) => o.metadata.labels?.['app.kubernetes.io/component'];
const workloads = ofKind<Workload>(objects, 'Deployment');
const only = (name: string) => workloads.filter((w) => component(w) === name);
const env = (w: Workload) => Object.fromEntries((w.spec.template.spec.containers[0].env ?? []).map((e) => [e.name, e.value]));
const mount = (w: Workload, name: string) => w.spec.template.spec.containers[0].volumeMounts?.find((m) => m.name === name);
const volume = (w: Workload, name: string) => w.spec.template.spec.volumes?.find((v) => v.name === name);

describe('site integration', () => {
  it("trusts the organisation's CA bundle in every Airlock pod (PostgreSQL TLS, JWKS, sinks)", () => {
    const airlockPods = workloads.filter((w) => ['gateway', 'auth-audit', 'worker'].includes(component(w)!));
    expect(airlockPods.length).toBe(2 + 3);
    for (const workload of airlockPods) {
      expect(env(workload).NODE_EXTRA_CA_CERTS).toBe('/etc/airlock/ca/ca.crt');
      expect(mount(workload, 'ca-bundle')).toEqual({ name: 'ca-bundle', mountPath: '/etc/airlock/ca', readOnly: true });
      expect(volume(workload, 'ca-bundle')).toEqual({
        name: 'ca-bundle',
        configMap: { name: 'hospital-ca', items: [{ key: 'ca-bundle.pem', path: 'ca.crt' }] },
      });
    }
  });

  it('mounts the PostgreSQL client certificate into auth-audit only', () => {
    const [authAudit] = only('auth-audit');
    expect(mount(authAudit, 'postgres-client')).toMatchObject({ mountPath: '/etc/airlock/postgres-client', readOnly: true });
    expect(volume(authAudit, 'postgres-client')).toMatchObject({ secret: { secretName: 'airlock-postgres-client' } });
    for (const other of workloads.filter((w) => component(w) !== 'auth-audit')) expect(volume(other, 'postgres-client')).toBeUndefined();
  });

  it('adds the operator’s own variables, volumes and mounts where asked', () => {
    const [gateway] = only('gateway');
    const [authAudit] = only('auth-audit');
    expect(env(gateway).TZ).toBe('Europe/Zurich');
    expect(mount(authAudit, 'siem-client')).toMatchObject({ mountPath: '/etc/airlock/siem', readOnly: true });
    expect(volume(authAudit, 'siem-client')).toMatchObject({ secret: { secretName: 'siem-client-tls' } });
  });

  it("records the real client behind the ingress: the controller's CIDR is a trusted proxy", () => {
    expect(env(only('gateway')[0]).AIRLOCK_TRUSTED_PROXIES).toBe('10.42.0.0/16');
  });

  it('an Ingress with the TLS certificate and streaming-friendly ingress-nginx settings', () => {
    const [ingress] = ofKind<
      KubeObject & { spec: { ingressClassName: string; tls: { hosts: string[]; secretName: string }[]; rules: { host: string }[] } }
    >(objects, 'Ingress');
    expect(ingress.spec.ingressClassName).toBe('nginx');
    expect(ingress.spec.tls).toEqual([{ hosts: ['airlock.clinic.hospital.internal'], secretName: 'airlock-api-tls' }]);
    const annotations = ingress.metadata.annotations!;
    expect(annotations['nginx.ingress.kubernetes.io/proxy-buffering']).toBe('off');
    // Longer than the gateway's own request timeout (600 s by default), so the gateway, not the proxy, ends a stream.
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).toBeGreaterThan(600);
  });

  it('a Gateway API HTTPRoute on the named listener, with timeouts that outlast a generation', () => {
    const [route] = ofKind<
      KubeObject & {
        spec: {
          parentRefs: Record<string, string>[];
          hostnames: string[];
          rules: { backendRefs: { name: string; port: number }[]; timeouts: { request: string } }[];
        };
      }
    >(objects, 'HTTPRoute');
    expect(route.spec.parentRefs).toEqual([{ name: 'internal', namespace: 'gateways', sectionName: 'https' }]);
    const [gatewayService] = ofKind(objects, 'Service').filter((s) => component(s) === 'gateway');
    expect(route.spec.rules[0].backendRefs).toEqual([{ name: gatewayService.metadata.name, port: 8080 }]);
    expect(Number(route.spec.rules[0].timeouts.request.replace(/s$/, ''))).toBeGreaterThan(600);
  });
});

describe('images and uninstall', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const gatewayImage = (set: string[]) =>
    ofKind<Workload & { spec: { template: { spec: { containers: { image: string }[] } } } }>(renderChart({ set }), 'Deployment').find(
      (w) => component(w) === 'gateway',
    )!.spec.template.spec.containers[0].image;

  it('pins a digest given either as sha256:… or as docker inspect prints it (repo@sha256:…)', () => {
    expect(gatewayImage([`gateway.image.digest=${digest}`])).toBe(`registry.local/airlock/gateway:0.1.0@${digest}`);
    expect(gatewayImage([`gateway.image.digest=registry.hospital.internal/ai/airlock/gateway@${digest}`])).toBe(
      `registry.local/airlock/gateway:0.1.0@${digest}`,
    );
  });

  it('keeps the evaluation database volume on helm uninstall unless told otherwise', () => {
    const policy = (set: string[]) =>
      ofKind<KubeObject & { spec: { persistentVolumeClaimRetentionPolicy: { whenDeleted: string } } }>(
        renderChart({ set: ['postgresql.enabled=true', ...set] }),
        'StatefulSet',
      )[0].spec.persistentVolumeClaimRetentionPolicy.whenDeleted;
    expect(policy([])).toBe('Retain');
    expect(policy(['postgresql.persistence.retainOnUninstall=false'])).toBe('Delete');
  });
});

describe('registry credentials', () => {
  it('every pod the chart creates pulls with the pull Secrets, hook Jobs and CronJobs included', () => {
    const rendered = renderChart({ valuesFile: 'ci/least-privilege-values.yaml', set: ['image.pullSecrets[0]=harbor-pull'] });
    type PodSpec = { imagePullSecrets?: { name: string }[] };
    type Templated = { template?: { spec?: PodSpec }; jobTemplate?: { spec: { template: { spec: PodSpec } } } };
    const pods = rendered.flatMap((o) => {
      const spec = o.spec as Templated | undefined;
      const pod = o.kind === 'CronJob' ? spec?.jobTemplate?.spec.template.spec : spec?.template?.spec;
      return pod ? [pod] : [];
    });
    expect(pods.length).toBeGreaterThanOrEqual(5);
    for (const pod of pods) expect(pod.imagePullSecrets).toEqual([{ name: 'harbor-pull' }]);
  });
});

describe('split GGUF models', () => {
  it("puts every part's sha256 into the worker's catalog, so the worker checks all of them", () => {
    const digest = (c: string) => c.repeat(64);
    const objects = renderChart({
      valuesFile: 'presets/gpt-oss-120b-80gb.yaml',
      set: [
        `models.gpt-oss-120b.sha256=${digest('a')}`,
        'models.gpt-oss-120b.parts[0].file=gpt-oss-120b-mxfp4-00002-of-00003.gguf',
        `models.gpt-oss-120b.parts[0].sha256=${digest('b')}`,
        'models.gpt-oss-120b.parts[1].file=gpt-oss-120b-mxfp4-00003-of-00003.gguf',
        `models.gpt-oss-120b.parts[1].sha256=${digest('C')}`,
      ],
    });
    const catalog = ofKind<KubeObject & { data: Record<string, string> }>(objects, 'ConfigMap').find((c) =>
      c.metadata.name.endsWith('-model-catalog'),
    )!;
    const entry = (parse(catalog.data['gpt-oss-120b.yaml']) as { models: Record<string, unknown>[] }).models[0];
    expect(entry.sha256).toBe(digest('a'));
    expect(entry.parts).toEqual([
      { path: '/models/gpt-oss-120b-mxfp4-00002-of-00003.gguf', sha256: digest('b') },
      { path: '/models/gpt-oss-120b-mxfp4-00003-of-00003.gguf', sha256: digest('c') },
    ]);
  });
});
