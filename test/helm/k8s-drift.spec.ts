// k8s/ holds the chart rendered with default values for kustomize/GitOps users; it must never drift from the chart.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { helmTools, parseManifests, renderChart, repoRoot } from './helm-harness.js';

const k8sDir = join(repoRoot, 'k8s');
const identity = (object: { kind: string; metadata: { name: string } }) => `${object.kind}/${object.metadata.name}`;

// k8s/render.mjs names the console's session-key Secret instead of letting the chart generate a key into a committed file.
const renderStatic = () => renderChart({ set: ['gateway.console.sessionKeySecret.name=airlock-console-session'] });

describe('k8s/ static manifests', () => {
  it('are exactly what the chart renders with its defaults (run "node k8s/render.mjs" after changing the chart)', () => {
    const result = spawnSync(process.execPath, [join(k8sDir, 'render.mjs'), '--stdout'], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    expect(readFileSync(join(k8sDir, 'airlock.yaml'), 'utf8')).toBe(result.stdout);
  });

  it('hold the same objects as a fresh helm template of the defaults', () => {
    const committed = parseManifests(readFileSync(join(k8sDir, 'airlock.yaml'), 'utf8'));
    expect(committed.map(identity).sort()).toEqual(renderStatic().map(identity).sort());
  });

  it('build with kustomize (kubectl kustomize, offline) into the same objects, in namespace airlock', () => {
    const result = spawnSync(helmTools().kubectl, ['kustomize', k8sDir], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    const built = parseManifests(result.stdout);
    expect(built.map(identity).sort()).toEqual(renderStatic().map(identity).sort());
    expect(built.every((object) => object.metadata.namespace === 'airlock')).toBe(true);
  });

  it('the drift check fails, naming the fix, when the manifests differ from the chart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'airlock-k8s-'));
    const drifted = join(dir, 'airlock.yaml');
    writeFileSync(drifted, readFileSync(join(k8sDir, 'airlock.yaml'), 'utf8').replace('replicas: 2', 'replicas: 3'));
    const check = (file: string) =>
      spawnSync(process.execPath, [join(k8sDir, 'render.mjs'), '--check', '--file', file], { encoding: 'utf8' });
    try {
      const result = check(drifted);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('run "node k8s/render.mjs"');
      expect(check(join(k8sDir, 'airlock.yaml')).status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
