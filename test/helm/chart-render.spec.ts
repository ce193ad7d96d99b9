// helm lint --strict and helm template for every values file (ci/ scenarios and presets), with every rendered object
// validated offline against the Kubernetes schemas, unknown fields included. Real Helm v3 binary; no cluster.
import { chartDir, renderChart, runHelm, templateArgs, valuesFiles, type KubeObject } from './helm-harness.js';
import { validateObject, validateObjects } from './kube-validation.js';
import { join } from 'node:path';

describe.each(valuesFiles())('values file %s', (valuesFile) => {
  it('passes helm lint --strict', () => {
    const result = runHelm(['lint', '--strict', chartDir, '--values', join(chartDir, valuesFile)]);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
    expect(result.status).toBe(0);
  });

  it('renders only objects that match the Kubernetes schemas, with no unknown fields', async () => {
    const objects = renderChart({ valuesFile });
    expect(objects.length).toBeGreaterThan(10);
    expect(await validateObjects(objects)).toEqual([]);
  });
});

describe('the offline validator', () => {
  const deployment = () => renderChart().find((object) => object.kind === 'Deployment')!;
  const container = (object: KubeObject) =>
    (object as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } }).spec.template.spec
      .containers[0];

  it('accepts a rendered Deployment as it is', async () => {
    expect(await validateObject(deployment())).toEqual([]);
  });

  it('reports a misspelt field that kubernetes-models alone lets through', async () => {
    const object = deployment();
    container(object).imagePullPolcy = 'IfNotPresent';
    const problems = await validateObject(object);
    expect(problems).toEqual([expect.stringMatching(/unknown field spec\.template\.spec\.containers\[0\]\.imagePullPolcy$/)]);
  });

  it('reports a wrong type', async () => {
    const object = deployment();
    (object.spec as Record<string, unknown>).replicas = 'two';
    expect((await validateObject(object)).join('\n')).toMatch(/replicas must be integer/);
  });
});

describe('values.schema.json and the chart checks refuse bad values with a clear message', () => {
  const refused = (set: string[], message: RegExp) => {
    const result = runHelm(templateArgs({ set }));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
  };

  it.each<[string, string[], RegExp]>([
    ['a misspelt key', ['gateway.replcas=3'], /gateway: Additional property replcas is not allowed/],
    ['a misspelt nested key', ['workers.autoscaling.hpa.enabeld=true'], /Additional property enabeld is not allowed/],
    ['a wrong type', ['gateway.replicas=two'], /gateway\.replicas: Invalid type\. Expected: integer/],
    ['the tag latest', ['workers.image.tag=latest'], /workers\.image\.tag: Must not validate the schema/],
    ['pull policy Always', ['image.pullPolicy=Always'], /image\.pullPolicy must be one of the following/],
    ['a secret in plain env', ['authAudit.env.AIRLOCK_ADMIN_KEY=hunter2'], /authAudit\.env: Must not validate the schema/],
    ['a malformed sha256', ['models.m.file=m.gguf', 'models.m.sha256=abc'], /models\.m\.sha256: Does not match pattern/],
    ['a model id that is not a label value', ['models.my!model.file=m.gguf'], /models: Property name of "my!model" does not match/],
    ['a model file outside the volume', ['models.m.file=../etc/passwd'], /models\.m\.file: Must not validate the schema/],
    ['a misspelt model key', ['models.m.file=m.gguf', 'models.m.contextSise=4096'], /Additional property contextSise is not allowed/],
    ['a bad digest', ['gateway.image.digest=sha256:xyz'], /gateway\.image\.digest: Does not match pattern/],
  ])('%s', (_case, set, message) => refused(set, message));

  it('two model volumes for one pool', () =>
    refused(
      ['workers.modelVolume.hostPath.path=/srv/models'],
      /modelVolume: set exactly one of persistentVolumeClaim, hostPath or image/,
    ));

  it('two ids that give the same object name', () =>
    refused(
      ['models.Qwen\\.7b.file=a.gguf', 'models.qwen-7b.file=b.gguf'],
      /give the same object name "airlock-worker-qwen-7b"/,
    ));

  it('a drain window shorter than the request timeout, which would cut answers at every rollout', () => {
    refused(['workers.drainTimeoutSeconds=100'], /models\.gpt-oss-20b\.drainTimeoutSeconds \(100\) must be at least the gateway's request timeout \(600 s\)/);
    refused(['gateway.env.AIRLOCK_REQUEST_TIMEOUT_SECONDS=1200'], /must cover preStopSleepSeconds \+ the request timeout \(1210 s\)/);
    refused(['gateway.terminationGracePeriodSeconds=100'], /gateway\.terminationGracePeriodSeconds \(100\) must cover/);
  });

  it('a rollout that can never progress', () =>
    refused(['workers.updateStrategy.maxSurge=0'], /updateStrategy: maxSurge and maxUnavailable cannot both be 0/));

  it('HPA and KEDA on the same pool', () =>
    refused(['workers.autoscaling.hpa.enabled=true', 'workers.autoscaling.keda.enabled=true'], /enable hpa or keda, not both/));
});
