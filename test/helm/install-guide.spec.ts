// The install guide's own commands, as a platform engineer would run them: step 6's my-values.yaml (taken from
// docs/air-gapped-install.md, placeholders filled in) on top of each preset, rendered with the real Helm binary in the
// order the guide's `helm install` line gives. The preset's sizing, probes and drain window must survive the merge.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { chartDir, ofKind, parseManifests, repoRoot, runHelm, type KubeObject } from './helm-harness.js';

const guide = readFileSync(join(repoRoot, 'docs', 'air-gapped-install.md'), 'utf8');
const DIGEST = 'ab'.repeat(32);

/** Step 6's heredoc, with the guide's placeholders replaced by what an operator would type. */
function myValuesFromGuide(): string {
  const heredoc = /cat > my-values\.yaml <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(guide);
  if (!heredoc) throw new Error('docs/air-gapped-install.md lost its my-values.yaml heredoc');
  return heredoc[1]
    .replace('<digest from step 4>', DIGEST)
    .replace('<postgres address>', '10.20.0.5')
    .replace('<API server address>', '10.0.0.1');
}

/** The guide's `helm install` line: which -f files, in which order. */
function installValueFiles(): string[] {
  const line = /helm install airlock \S+ -n airlock \\\n\s+(.*)\n/.exec(guide);
  if (!line) throw new Error('docs/air-gapped-install.md lost its helm install command');
  return [...line[1].matchAll(/-f (\S+)/g)].map((match) => match[1]);
}

interface Pool {
  id: string;
  resources: Record<string, Record<string, string | number>>;
  startupTimeoutSeconds?: number;
  drainTimeoutSeconds?: number;
  file: string;
  contextSize: number;
}

function presetModel(preset: string): Pool {
  const values = parse(readFileSync(join(chartDir, 'presets', preset), 'utf8')) as { models: Record<string, Omit<Pool, 'id'> | null> };
  const [id, entry] = Object.entries(values.models).find(([, model]) => model !== null)!;
  return { id, ...entry! };
}

type Deployment = KubeObject & {
  spec: {
    strategy: { rollingUpdate: { maxSurge: number; maxUnavailable: number } };
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        terminationGracePeriodSeconds: number;
        containers: {
          image: string;
          resources: Pool['resources'];
          env: { name: string; value?: string }[];
          startupProbe: { periodSeconds: number; failureThreshold: number };
        }[];
      };
    };
  };
};

describe.each(['gpt-oss-20b-24gb.yaml', 'gpt-oss-120b-80gb.yaml', 'cpu-evaluation.yaml'])(
  "the guide's my-values.yaml on top of presets/%s",
  (preset) => {
    const model = presetModel(preset);
    let objects: KubeObject[];

    beforeAll(() => {
      const dir = mkdtempSync(join(tmpdir(), 'airlock-guide-'));
      // The guide's file names the 20b preset's model; for another preset the operator names that preset's model.
      writeFileSync(join(dir, 'my-values.yaml'), myValuesFromGuide().replace('gpt-oss-20b:', `${model.id}:`));
      const files = installValueFiles();
      expect(files).toEqual(['airlock-offline/chart/presets/gpt-oss-20b-24gb.yaml', 'my-values.yaml']);
      const args = ['template', 'airlock', chartDir, '--namespace', 'airlock', '--kube-version', '1.33.0'];
      args.push('-f', join(chartDir, 'presets', preset), '-f', join(dir, 'my-values.yaml'));
      const result = runHelm(args);
      if (result.status !== 0) throw new Error(result.stderr);
      objects = parseManifests(result.stdout);
    });

    const pools = () =>
      ofKind<Deployment>(objects, 'Deployment').filter((d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'worker');

    it("serves exactly the preset's model, with the operator's digest and registry", () => {
      expect(pools().map((p) => p.metadata.labels!['airlock.dev/model'])).toEqual([model.id]);
      const catalog = ofKind<KubeObject & { data: Record<string, string> }>(objects, 'ConfigMap').find((c) =>
        c.metadata.name.endsWith('-model-catalog'),
      )!;
      const entry = (parse(catalog.data[`${model.id}.yaml`]) as { models: Record<string, unknown>[] }).models[0];
      expect(entry).toMatchObject({ id: model.id, sha256: DIGEST, path: `/models/${model.file}`, contextSize: model.contextSize });
      expect(pools()[0].spec.template.spec.containers[0].image).toMatch(/^registry\.hospital\.internal\/ai\/airlock\//);
    });

    it("keeps the preset's CPU, memory and GPU sizing", () => {
      const resources = pools()[0].spec.template.spec.containers[0].resources;
      expect(resources.requests).toMatchObject(model.resources.requests);
      expect(resources.limits).toMatchObject(model.resources.limits);
    });

    it("keeps the preset's model-load budget and drain window", () => {
      const pod = pools()[0].spec.template.spec;
      const container = pod.containers[0];
      const startup = model.startupTimeoutSeconds ?? 1800;
      expect(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold).toBeGreaterThanOrEqual(startup);
      expect(container.startupProbe.periodSeconds * (container.startupProbe.failureThreshold - 1)).toBeLessThan(startup);
      const drain = container.env.find((e) => e.name === 'AIRLOCK_DRAIN_TIMEOUT_SECONDS')!.value;
      expect(Number(drain)).toBe(model.drainTimeoutSeconds ?? 600);
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(drain));
    });
  },
);

describe('upgrades', () => {
  const render = (set: string[]) => {
    const args = ['template', 'airlock', chartDir, '--namespace', 'airlock', '--kube-version', '1.33.0'];
    for (const value of set) args.push('--set', value);
    const result = runHelm(args);
    if (result.status !== 0) throw new Error(result.stderr);
    return ofKind<Deployment>(parseManifests(result.stdout), 'Deployment').concat(
      ofKind<Deployment>(parseManifests(result.stdout), 'StatefulSet'),
    );
  };

  it('a chart version bump changes no pod template, so no pod restarts', () => {
    // Same values, two chart versions: Helm's --version cannot rewrite a local chart, so compare a chart copy.
    const dir = mkdtempSync(join(tmpdir(), 'airlock-chart-'));
    runHelm(['package', chartDir, '--destination', dir, '--version', '9.9.9']);
    const before = render(['postgresql.enabled=true']);
    const packaged = join(dir, 'airlock-9.9.9.tgz');
    const result = runHelm(['template', 'airlock', packaged, '--namespace', 'airlock', '--kube-version', '1.33.0', '--set', 'postgresql.enabled=true']);
    expect(result.status).toBe(0);
    const after = ofKind<Deployment>(parseManifests(result.stdout), 'Deployment').concat(
      ofKind<Deployment>(parseManifests(result.stdout), 'StatefulSet'),
    );
    expect(after.map((o) => o.metadata.name)).toEqual(before.map((o) => o.metadata.name));
    expect(after[0].metadata.labels!['helm.sh/chart']).toBe('airlock-9.9.9');
    for (const [index, workload] of before.entries()) {
      expect(after[index].spec.template).toEqual(workload.spec.template);
      expect(workload.spec.template.metadata.labels['helm.sh/chart']).toBeUndefined();
    }
  });

  it('worker pools keep serving capacity during a rollout by default, and can replace in place where no GPU is spare', () => {
    const byDefault = render([]).find((d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'worker')!;
    expect(byDefault.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    const inPlace = render(['models.gpt-oss-20b.updateStrategy.maxSurge=0', 'models.gpt-oss-20b.updateStrategy.maxUnavailable=1']).find(
      (d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'worker',
    )!;
    expect(inPlace.spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
  });
});
