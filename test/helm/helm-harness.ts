// Runs the real Helm v3 binary (unzipped from a devDependency by scripts/install-helm.mjs) on helm/airlock and
// parses what it renders. Nothing here talks to a cluster: `helm template` and `helm lint` work offline.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const chartDir = join(repoRoot, 'helm', 'airlock');

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

interface HelmTools {
  helm: string;
  kubectl: string;
}

let tools: HelmTools | undefined;

/** Installs (idempotently, offline) and locates helm and kubectl. */
export function helmTools(): HelmTools {
  tools ??= JSON.parse(
    execFileSync(process.execPath, [join(repoRoot, 'scripts', 'install-helm.mjs'), '--json'], { encoding: 'utf8' }),
  ) as HelmTools;
  return tools;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function runHelm(args: string[]): HelmResult {
  const result = spawnSync(helmTools().helm, args, {
    encoding: 'utf8',
    // No kubeconfig: helm must never reach for a cluster in these tests.
    env: { ...process.env, KUBECONFIG: '/dev/null', HELM_CACHE_HOME: join(repoRoot, 'node_modules', '.cache', 'helm') },
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The values files CI renders: every scenario under ci/ and every preset. */
export function valuesFiles(): string[] {
  const listYaml = (dir: string) =>
    readdirSync(join(chartDir, dir))
      .filter((file) => file.endsWith('.yaml'))
      .sort()
      .map((file) => join(dir, file));
  return [...listYaml('ci'), ...listYaml('presets')];
}

export interface RenderOptions {
  valuesFile?: string;
  set?: string[];
  release?: string;
  namespace?: string;
}

export function templateArgs({ valuesFile, set = [], release = 'airlock', namespace = 'airlock' }: RenderOptions) {
  const args = ['template', release, chartDir, '--namespace', namespace, '--kube-version', '1.33.0'];
  if (valuesFile) args.push('--values', join(chartDir, valuesFile));
  for (const value of set) args.push('--set', value);
  return args;
}

/** `helm template`, parsed into objects; throws with Helm's message when rendering fails. */
export function renderChart(options: RenderOptions = {}): KubeObject[] {
  const result = runHelm(templateArgs(options));
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return parseManifests(result.stdout);
}

export function parseManifests(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`invalid YAML from helm: ${document.errors[0].message}`);
      return document.toJS() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null);
}

export function ofKind<T = KubeObject>(objects: KubeObject[], kind: string): T[] {
  return objects.filter((object) => object.kind === kind) as T[];
}
