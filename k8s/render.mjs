#!/usr/bin/env node
// Renders k8s/airlock.yaml from helm/airlock with the chart's default values (release "airlock", namespace
// "airlock"), for teams that deploy with kustomize or GitOps instead of Helm. CI fails when the file drifts
// from the chart (test/helm/k8s-drift.spec.ts).
//   node k8s/render.mjs           rewrite k8s/airlock.yaml
//   node k8s/render.mjs --check [--file F]   exit 1 when k8s/airlock.yaml (or F) differs from a fresh render
//   node k8s/render.mjs --stdout  print the fresh render
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'k8s', 'airlock.yaml');

const header = `# GENERATED from helm/airlock with default values by "node k8s/render.mjs": do not edit by hand.
# Release "airlock" in namespace "airlock". Before applying, create the namespace, the Secret "airlock-auth-audit"
# (docs/air-gapped-install.md), the Secret "airlock-console-session" (key session-key: 32 random bytes, base64 —
# a committed file must not carry a generated key), the PVC "airlock-models", and patch in your API server's addresses
# (kustomization.yaml shows how): without them the gateway's NetworkPolicy allows no traffic to the Kubernetes API.
`;

export function renderStaticManifests() {
  const { helm } = JSON.parse(
    execFileSync(process.execPath, [join(root, 'scripts', 'install-helm.mjs'), '--json'], { encoding: 'utf8' }),
  );
  const rendered = execFileSync(
    helm,
    [
      'template',
      'airlock',
      join(root, 'helm', 'airlock'),
      '--namespace',
      'airlock',
      '--kube-version',
      '1.33.0',
      // The chart would generate a random console session key; a static file names the Secret you create instead.
      '--set',
      'gateway.console.sessionKeySecret.name=airlock-console-session',
    ],
    { encoding: 'utf8', env: { ...process.env, KUBECONFIG: '/dev/null' } },
  );
  return header + rendered;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const fresh = renderStaticManifests();
  if (process.argv.includes('--stdout')) {
    process.stdout.write(fresh);
  } else if (process.argv.includes('--check')) {
    const fileFlag = process.argv.indexOf('--file');
    const checked = fileFlag > 0 ? resolve(process.argv[fileFlag + 1]) : target;
    if (readFileSync(checked, 'utf8') !== fresh) {
      console.error('k8s/airlock.yaml has drifted from helm/airlock: run "node k8s/render.mjs" and commit the result');
      process.exit(1);
    }
    console.log('k8s/airlock.yaml matches the chart');
  } else {
    writeFileSync(target, fresh);
    console.log(`wrote ${target}`);
  }
}
