// postgresql.cloudNativePG: production PostgreSQL on the hospital's CloudNativePG operator instead of the evaluation
// StatefulSet (issue 15). Real Helm, no cluster and no operator: the rendered Cluster is validated offline against a
// subset schema written from the CloudNativePG 1.25 API reference (test/helm/schemas; not the upstream CRD, which no
// npm package carries), and the wiring to auth-audit's least-privilege roles (docs/audit-log.md) is checked on the
// rendered objects. What needs a real cluster (the operator accepting it, failover, TLS handshakes) is not proven here.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ofKind, parseManifests, renderChart, repoRoot, runHelm, templateArgs, type KubeObject } from './helm-harness.js';
import { validateObject } from './kube-validation.js';

interface Env {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  name: string;
  args?: string[];
  env: Env[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
}
type Workload = KubeObject & { spec: { template: { spec: PodSpec } } };
type CronJob = KubeObject & { spec: { jobTemplate: { spec: { template: { spec: PodSpec } } } } };
type Secret = KubeObject & { type: string; data: Record<string, string> };
interface Role {
  name: string;
  ensure: string;
  login: boolean;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
  replication: boolean;
  bypassrls: boolean;
  passwordSecret: { name: string };
}
type Cluster = KubeObject & {
  spec: {
    instances: number;
    imageName?: string;
    enableSuperuserAccess: boolean;
    postgresql: { synchronous: { method: string; number: number; dataDurability: string } };
    bootstrap: { initdb: { database: string; owner: string } };
    storage: { size: string; storageClass?: string };
    affinity: { enablePodAntiAffinity: boolean; podAntiAffinityType: string };
    managed: { roles: Role[] };
  };
};
type NetworkPolicy = KubeObject & {
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    egress: { ports: { port: number }[]; to?: { podSelector?: { matchLabels: Record<string, string> } }[] }[];
  };
};

const valuesFile = 'ci/cloudnativepg-values.yaml';
const objects = renderChart({ valuesFile });
const cluster = ofKind<Cluster>(objects, 'Cluster')[0];
const component = <T extends KubeObject>(kind: string, name: string) =>
  ofKind<T>(objects, kind).find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === name)!;
const env = (container: Container) =>
  Object.fromEntries(container.env.map((e) => [e.name, e.value ?? `${e.valueFrom?.secretKeyRef?.name}/${e.valueFrom?.secretKeyRef?.key}`]));
const url = (role: string) =>
  `postgres://${role}@airlock-postgresql-rw.airlock.svc:5432/airlock?sslmode=verify-full&sslrootcert=/etc/airlock/postgres-ca/ca.crt`;

describe('CloudNativePG Cluster (postgresql.cloudNativePG)', () => {
  it('renders a Cluster that matches the CloudNativePG 1.25 API subset schema, unknown fields refused', async () => {
    expect(cluster.apiVersion).toBe('postgresql.cnpg.io/v1');
    expect(await validateObject(cluster)).toEqual([]);
    // The schema can fail: a misspelt field and a wrong enum are reported.
    const wrong = structuredClone(cluster);
    (wrong.spec.postgresql.synchronous as Record<string, unknown>).numbr = 1;
    wrong.spec.postgresql.synchronous.method = 'quorum';
    const problems = (await validateObject(wrong)).join('\n');
    expect(problems).toMatch(/\/spec\/postgresql\/synchronous must NOT have additional properties \(numbr\)/);
    expect(problems).toMatch(/\/spec\/postgresql\/synchronous\/method must be equal to one of the allowed values/);
  });

  it("has three instances on distinct nodes, a synchronous quorum replica that writes wait for, no superuser access, and is kept on uninstall", () => {
    expect(cluster.spec.instances).toBe(3);
    expect(cluster.spec.postgresql.synchronous).toEqual({ method: 'any', number: 1, dataDurability: 'required' });
    expect(cluster.spec.affinity).toMatchObject({ enablePodAntiAffinity: true, podAntiAffinityType: 'required' });
    expect(cluster.spec.enableSuperuserAccess).toBe(false);
    expect(cluster.spec.imageName).toBe('registry.hospital.example/cloudnative-pg/postgresql:17.6');
    expect(cluster.spec.storage).toEqual({ size: '50Gi', storageClass: 'ceph-rbd' });
    expect(cluster.spec.bootstrap.initdb).toEqual({ database: 'airlock', owner: 'airlock_owner' });
    // Its volumes are the audit log: kept on uninstall unless retainOnUninstall is false.
    expect(cluster.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    const notKept = renderChart({ valuesFile, set: ['postgresql.cloudNativePG.retainOnUninstall=false'] });
    expect(ofKind<Cluster>(notKept, 'Cluster')[0].metadata.annotations).toBeUndefined();
    // Instead of the evaluation StatefulSet and its generated Secret, not beside them.
    expect(ofKind(objects, 'StatefulSet').filter((o) => o.metadata.name.includes('postgresql'))).toEqual([]);
    expect(objects.filter((o) => o.metadata.labels?.['airlock.dev/evaluation-only'])).toEqual([]);
  });

  it('manages the runtime and retention roles with login and no privilege, passwords in kept basic-auth Secrets', () => {
    const roles = cluster.spec.managed.roles;
    expect(roles.map((r) => r.name)).toEqual(['airlock_runtime', 'airlock_retention']);
    for (const role of roles) {
      expect(role).toMatchObject({
        ensure: 'present',
        login: true,
        superuser: false,
        createdb: false,
        createrole: false,
        replication: false,
        bypassrls: false,
      });
      const secret = ofKind<Secret>(objects, 'Secret').find((s) => s.metadata.name === role.passwordSecret.name)!;
      expect(secret.type).toBe('kubernetes.io/basic-auth');
      expect(Buffer.from(secret.data.username, 'base64').toString()).toBe(role.name);
      expect(Buffer.from(secret.data.password, 'base64').toString()).toMatch(/^[A-Za-z0-9]{40}$/);
      expect(secret.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
      expect(secret.metadata.labels?.['cnpg.io/reload']).toBe('true');
    }
  });

  it('runs auth-audit as the runtime role and migrates as the owner in an init container, both verify-full against the cluster CA', () => {
    const pod = component<Workload>('Deployment', 'auth-audit').spec.template.spec;
    const [migrate] = pod.initContainers!;
    expect(migrate.args).toEqual(['migrate']);
    expect(env(migrate)).toMatchObject({
      AIRLOCK_DATABASE_URL: url('airlock_owner'),
      PGPASSWORD: 'airlock-postgresql-app/password',
      AIRLOCK_DATABASE_RUNTIME_ROLE: 'airlock_runtime',
      AIRLOCK_DATABASE_RETENTION_ROLE: 'airlock_retention',
      AIRLOCK_AUDIT_RETENTION_DAYS: '2555',
    });
    const service = pod.containers[0];
    expect(env(service)).toMatchObject({
      AIRLOCK_DATABASE_URL: url('airlock_runtime'),
      PGPASSWORD: 'airlock-postgresql-runtime/password',
    });
    // The owner's Secret reaches the init container only.
    expect(JSON.stringify(pod.containers)).not.toContain('airlock-postgresql-app');
    for (const container of [migrate, service])
      expect(container.volumeMounts).toContainEqual(expect.objectContaining({ name: 'postgres-ca', mountPath: '/etc/airlock/postgres-ca' }));
    // Only the certificate of <cluster>-ca, never the CA's key.
    expect(pod.volumes.find((v) => v.name === 'postgres-ca')!.secret).toMatchObject({
      secretName: 'airlock-postgresql-ca',
      items: [{ key: 'ca.crt', path: 'ca.crt' }],
    });
  });

  it('prunes as the retention role; no migration hook Job', () => {
    const pod = component<CronJob>('CronJob', 'auth-audit-prune').spec.jobTemplate.spec.template.spec;
    expect(env(pod.containers[0])).toMatchObject({
      AIRLOCK_DATABASE_URL: url('airlock_retention'),
      PGPASSWORD: 'airlock-postgresql-retention/password',
    });
    expect(ofKind(objects, 'Job')).toEqual([]);
  });

  it("lets auth-audit and its CronJob reach the Cluster's instances on 5432", () => {
    for (const name of ['auth-audit', 'auth-audit-prune']) {
      const policy = component<NetworkPolicy>('NetworkPolicy', name);
      const rule = policy.spec.egress.find((r) => r.to?.some((to) => to.podSelector?.matchLabels['cnpg.io/cluster']));
      expect(rule).toEqual({
        ports: [{ port: 5432, protocol: 'TCP' }],
        to: [{ podSelector: { matchLabels: { 'cnpg.io/cluster': 'airlock-postgresql' } } }],
      });
    }
  });

  it('uses the role Secrets the operator names instead of generating them', () => {
    const given = renderChart({
      valuesFile,
      set: ['postgresql.cloudNativePG.roleSecrets.runtime=vault-runtime', 'postgresql.cloudNativePG.roleSecrets.retention=vault-retention'],
    });
    const roles = ofKind<Cluster>(given, 'Cluster')[0].spec.managed.roles;
    expect(roles.map((r) => r.passwordSecret.name)).toEqual(['vault-runtime', 'vault-retention']);
    expect(ofKind(given, 'Secret').filter((s) => s.type === 'kubernetes.io/basic-auth')).toEqual([]);
  });

  it("renders the install guide's own values block (placeholders filled in) into a valid Cluster", async () => {
    const guide = readFileSync(join(repoRoot, 'docs', 'air-gapped-install.md'), 'utf8');
    const section = guide.slice(guide.indexOf('## PostgreSQL on CloudNativePG'));
    const block = /cat >> my-values\.yaml <<'VALUES'\n([\s\S]*?)\nVALUES\n/.exec(section)![1];
    const file = join(mkdtempSync(join(tmpdir(), 'airlock-cnpg-guide-')), 'my-values.yaml');
    writeFileSync(file, block.replace('<registry>', 'registry.hospital.example').replace('<your StorageClass>', 'ceph-rbd'));
    const result = runHelm([...templateArgs({}), '--values', file]);
    expect(result.stderr).toBe('');
    const rendered = ofKind<Cluster>(parseManifests(result.stdout), 'Cluster')[0];
    expect(await validateObject(rendered)).toEqual([]);
    expect(rendered.spec).toMatchObject({
      instances: 3,
      imageName: 'registry.hospital.example/cloudnative-pg/postgresql:17.6',
      postgresql: { synchronous: { method: 'any', number: 1, dataDurability: 'required' } },
      storage: { size: '50Gi', storageClass: 'ceph-rbd' },
    });
    expect(rendered.spec.managed.roles.map((r) => r.name)).toEqual(['airlock_runtime', 'airlock_retention']);
  });

  it.each<[string, string[], RegExp]>([
    ['both PostgreSQLs', ['postgresql.enabled=true'], /enabled\) or a CloudNativePG Cluster \(cloudNativePG\.enabled\), not both/],
    ['no runtime role', ['authAudit.database.runtimeRole='], /set authAudit\.database\.runtimeRole, the managed role/],
    ['the owner as runtime role', ['authAudit.database.runtimeRole=airlock_owner'], /must not be the owner/],
    ['a migration hook Job', ['authAudit.database.migrationJob.enabled=true'], /migrates in auth-audit's init container/],
    ['as many synchronous replicas as instances', ['postgresql.cloudNativePG.synchronous.number=3'], /number \(3\) must be below instances \(3\)/],
    ['an unknown synchronous method', ['postgresql.cloudNativePG.synchronous.method=quorum'], /method/],
  ])('refuses %s', (_name, set, message) => {
    const result = runHelm(templateArgs({ valuesFile, set }));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});
