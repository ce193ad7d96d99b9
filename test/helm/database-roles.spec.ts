// The chart's side of least privilege in PostgreSQL (docs/audit-log.md, "Database roles"): the owner's URL reaches
// only the migration hook Job, the retention role's URL only the retention CronJob, and auth-audit itself runs with
// the runtime role's URL and never migrates. Real Helm; no cluster.
import { ofKind, renderChart, runHelm, templateArgs, type KubeObject } from './helm-harness.js';

interface Env {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Pod {
  metadata: { labels: Record<string, string> };
  spec: { containers: { args?: string[]; env: Env[] }[]; automountServiceAccountToken?: boolean; restartPolicy?: string };
}
type Job = KubeObject & { spec: { template: Pod } };
type CronJob = KubeObject & { spec: { schedule: string; concurrencyPolicy: string; jobTemplate: { spec: { template: Pod } } } };
type NetworkPolicy = KubeObject & {
  spec: { podSelector: { matchLabels: Record<string, string> }; ingress: unknown[]; egress: { ports: { port: number }[] }[] };
};

const objects = renderChart({ valuesFile: 'ci/least-privilege-values.yaml' });
const env = (pod: Pod) => Object.fromEntries(pod.spec.containers[0].env.map((e) => [e.name, e.value ?? e.valueFrom?.secretKeyRef?.key]));
const byComponent = <T extends KubeObject>(kind: string, component: string) =>
  ofKind<T>(objects, kind).find((o) => o.metadata.labels?.['app.kubernetes.io/component'] === component)!;

describe('database roles', () => {
  it('migrates as the owner in a hook Job that runs before install and before every upgrade', () => {
    const job = byComponent<Job>('Job', 'auth-audit-migrate');
    expect(job.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'pre-install,pre-upgrade' });
    const pod = job.spec.template;
    expect(pod.spec.containers[0].args).toEqual(['migrate']);
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(env(pod)).toMatchObject({
      AIRLOCK_DATABASE_URL: 'database-migrate-url',
      AIRLOCK_DATABASE_RUNTIME_ROLE: 'airlock_runtime',
      AIRLOCK_DATABASE_RETENTION_ROLE: 'airlock_retention',
      AIRLOCK_AUDIT_RETENTION_DAYS: '2555',
    });
  });

  it('runs auth-audit with the runtime URL only: no owner URL, so it can neither migrate nor alter the log', () => {
    const deployment = byComponent<Job>('Deployment', 'auth-audit');
    const settings = env(deployment.spec.template);
    expect(settings.AIRLOCK_DATABASE_URL).toBe('database-url');
    expect(settings.AIRLOCK_DATABASE_MIGRATE_URL).toBeUndefined();
    expect(settings.AIRLOCK_AUDIT_RETENTION_DAYS).toBe('2555');
    expect(settings.AIRLOCK_AUDIT_PREVIOUS_SIGNING_KEYS_FILE).toBe('/etc/airlock/secrets/audit-previous-signing-keys.pem');
    const everyUrlKey = objects
      .filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind))
      .flatMap((o) => (o as Job).spec.template.spec.containers.flatMap((c) => c.env ?? []))
      .map((e) => e.valueFrom?.secretKeyRef?.key);
    expect(everyUrlKey).not.toContain('database-migrate-url');
    expect(everyUrlKey).not.toContain('database-retention-url');
  });

  it('prunes as the retention role on a schedule, one pass at a time', () => {
    const cron = byComponent<CronJob>('CronJob', 'auth-audit-prune');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const pod = cron.spec.jobTemplate.spec.template;
    expect(pod.spec.containers[0].args).toEqual(['prune']);
    expect(env(pod)).toMatchObject({ AIRLOCK_DATABASE_URL: 'database-retention-url', AIRLOCK_AUDIT_RETENTION_DAYS: '2555' });
  });

  it('lets the jobs reach nothing but DNS and the database, and nothing reach them', () => {
    for (const component of ['auth-audit-migrate', 'auth-audit-prune']) {
      const policy = byComponent<NetworkPolicy>('NetworkPolicy', component);
      expect(policy.spec.podSelector.matchLabels['app.kubernetes.io/component']).toBe(component);
      expect(policy.spec.ingress).toEqual([]);
      expect(policy.spec.egress.map((rule) => rule.ports.map((p) => p.port))).toEqual([[53, 53], [5432]]);
    }
    // The hook runs before the release's other objects exist, so its policy must be a hook as well.
    expect(byComponent<NetworkPolicy>('NetworkPolicy', 'auth-audit-migrate').metadata.annotations?.['helm.sh/hook']).toBe(
      'pre-install,pre-upgrade',
    );
  });

  it.each<[string, string[], RegExp]>([
    ['a migration Job without the runtime role', ['authAudit.database.migrationJob.enabled=true'], /set authAudit\.database\.runtimeRole/],
    [
      'a migration Job with the evaluation PostgreSQL (its Secret does not exist before install)',
      ['authAudit.database.migrationJob.enabled=true', 'authAudit.database.runtimeRole=r', 'postgresql.enabled=true'],
      /do not exist yet when a pre-install hook runs/,
    ],
    ['retention without a role', ['authAudit.database.retentionJob.enabled=true'], /set authAudit\.database\.retentionRole and retentionDays > 0/],
    ['the owner URL in plain env', ['authAudit.env.AIRLOCK_DATABASE_MIGRATE_URL=postgres://owner@db/airlock'], /authAudit\.env: Must not validate the schema/],
  ])('refuses %s', (_case, set, message) => {
    const result = runHelm(templateArgs({ set }));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });
});
