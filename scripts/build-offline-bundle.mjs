#!/usr/bin/env node
// Builds the offline bundle that an air-gapped cluster is installed from (docs/air-gapped-install.md):
//   chart/airlock-<version>.tgz       the packaged Helm chart (helm package)
//   chart/presets/*.yaml              the hardware presets
//   k8s/                              the static manifests and kustomization, for installs without Helm
//   images.txt                        every image the chart can deploy, as <repository>:<tag> under your registry
//   sbom/<service>.cdx.json           a CycloneDX SBOM of each service's runtime dependencies (cyclonedx-npm)
//   model-catalog.template.yaml       the models: values to fill in with your GGUF files and their sha256
//   images/ (with --images DIR)       the OCI archives `npm run images` built (*.oci.tar), their CycloneDX SBOMs
//                                     (*.cdx.json: Debian + npm packages in each image), images.json and DIGESTS
//   docs/air-gapped-install.md        the install guide
//   SHA256SUMS                        checksums of every file above (verify with: sha256sum -c SHA256SUMS)
//   SHA256SUMS.sig (with --signing-key) Ed25519 signature of SHA256SUMS, checked with the public key you hold:
//                                     openssl pkeyutl -verify -pubin -inkey KEY.pub -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
// Runs offline: helm comes from node_modules (scripts/install-helm.mjs), the SBOMs from the installed tree.
// Usage: node scripts/build-offline-bundle.mjs [--out <dir>] [--images <dir>] [--signing-key <ed25519 private key PEM>]
//   --out     default: dist/airlock-offline-<version>
//   --images  the output of `npm run images` (usually dist/images) to carry in the bundle
import { execFileSync } from 'node:child_process';
import { createHash, createPrivateKey, sign as cryptoSign } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { installHelmTools } from './install-helm.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const chartDir = join(root, 'helm', 'airlock');
const chart = parseYaml(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8'));

function parseArgs(argv) {
  const outIndex = argv.indexOf('--out');
  const imagesIndex = argv.indexOf('--images');
  const keyIndex = argv.indexOf('--signing-key');
  return {
    signingKey: keyIndex >= 0 ? resolve(argv[keyIndex + 1]) : undefined,
    out: resolve(outIndex >= 0 ? argv[outIndex + 1] : join(root, 'dist', `airlock-offline-${chart.version}`)),
    images: imagesIndex >= 0 ? resolve(argv[imagesIndex + 1]) : undefined,
  };
}

/** Every image reference in the rendered chart, for the values given. */
function renderedImages(helm, valuesFiles) {
  const args = ['template', 'airlock', chartDir, '--kube-version', '1.33.0'];
  for (const file of valuesFiles) args.push('--values', join(chartDir, file));
  const manifests = execFileSync(helm, args, {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: '/dev/null' },
  });
  const images = new Set();
  const visit = (node) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'image' && typeof value === 'string') images.add(value);
        else visit(value);
      }
    }
  };
  for (const document of parseAllDocuments(manifests)) visit(document.toJS());
  return images;
}

/** images.txt: each image as the chart pulls it, minus the default registry prefix (you mirror under your own). */
function imagesList(helm) {
  const defaultRegistry = parseYaml(readFileSync(join(chartDir, 'values.yaml'), 'utf8')).image.registry;
  // Defaults (CUDA worker) plus the CPU evaluation preset (CPU worker, evaluation PostgreSQL): every image there is.
  const images = new Set([
    ...renderedImages(helm, []),
    ...renderedImages(helm, ['presets/cpu-evaluation.yaml']),
  ]);
  const upstream = { 'library/postgres': 'docker.io/library/postgres' };
  const lines = [...images].sort().map((image) => {
    const path = image.slice(defaultRegistry.length + 1);
    const repository = path.split(':')[0];
    const source = upstream[repository]
      ? `${upstream[repository]}:${path.split(':')[1]}`
      : `built from this repository`;
    return `${path}\t# ${source}`;
  });
  return (
    '# Images to mirror into your registry (image.registry), one per line: <repository>:<tag>\t# where it comes from.\n' +
    '# The Airlock images are built from apps/*/Dockerfile (worker-cuda: apps/worker/Dockerfile.cuda).\n' +
    lines.join('\n') +
    '\n'
  );
}

/** One CycloneDX SBOM per service: its runtime (non-dev) dependencies, read from the installed node_modules. */
function writeSboms(out) {
  const cli = join(root, 'node_modules', '@cyclonedx', 'cyclonedx-npm', 'bin', 'cyclonedx-npm-cli.js');
  const services = readdirSync(join(root, 'apps')).filter((name) =>
    existsSync(join(root, 'apps', name, 'package.json')),
  );
  mkdirSync(join(out, 'sbom'), { recursive: true });
  for (const service of services.sort()) {
    execFileSync(
      process.execPath,
      [
        cli,
        '--omit',
        'dev',
        // npm ls reports peer-range mismatches (e.g. kysely-pglite's kysely range) as errors; the SBOM still lists
        // exactly what is installed, which is what the images ship.
        '--ignore-npm-errors',
        '--workspace',
        `apps/${service}`,
        '--include-workspace-root',
        '--output-reproducible',
        '--output-format',
        'JSON',
        '--output-file',
        join(out, 'sbom', `${service}.cdx.json`),
      ],
      { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
    );
  }
  return services;
}

const catalogTemplate = `# Model catalog template: copy into your values file (or pass with -f) after filling in each entry.
# For every GGUF file you copied onto the model volume, record its SHA-256 on a trusted machine:
#   sha256sum gpt-oss-20b-mxfp4.gguf
# and paste the 64 hex digits into sha256: the worker hashes the file before loading it and refuses a mismatch.
# One worker pool (Deployment + Service) is created per entry, keyed by the "model" clients send; entries merge
# with a preset's entry of the same id. Keys: see helm/airlock/values.yaml (models).
models:
  gpt-oss-20b:                       # the "model" clients send
    file: gpt-oss-20b-mxfp4.gguf     # path inside the model volume
    sha256: "<64 hex digits from sha256sum>"
    # signature:                     # optional: load only if signed by this key (air-gapped-install.md, "Signed models")
    #   publicKey: {configMap: model-signers, key: hospital.pub}   # bundle: default <file>.sig in the model volume
    contextSize: 32768               # tokens per sequence
    parallel: 4                      # sequences generated at once
    queueSize: 64                    # requests that may wait for a free sequence
    gpuLayers: max                   # auto | max | <number>
    gpu: cuda                        # auto | cuda | vulkan | cpu
    embeddings: false
    gpus: 1                          # GPUs per worker pod (0: CPU only)
    modelVolume:
      persistentVolumeClaim:
        claimName: airlock-models    # the PVC holding the GGUF files
`;

/** The image archives, their SBOMs, digests and summary from `npm run images`, into images/. */
function readImagesSummary(imagesDir) {
  const summaryFile = join(imagesDir, 'images.json');
  if (!existsSync(summaryFile)) throw new Error(`${summaryFile} is missing: run npm run images first`);
  return JSON.parse(readFileSync(summaryFile, 'utf8'));
}

function copyImages(imagesDir, summary, out) {
  mkdirSync(join(out, 'images'));
  for (const file of ['images.json', 'DIGESTS', ...summary.images.flatMap((i) => [i.archive, i.sbom])])
    cpSync(join(imagesDir, file), join(out, 'images', file));
  return summary.images.map((i) => i.image);
}

function sha256sums(out) {
  const files = [];
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path !== join(out, 'SHA256SUMS') && path !== join(out, 'SHA256SUMS.sig')) files.push(path);
    }
  };
  walk(out);
  return files
    .map((file) => `${createHash('sha256').update(readFileSync(file)).digest('hex')}  ${relative(out, file)}`)
    .join('\n')
    .concat('\n');
}

export function buildOfflineBundle({ out, images, signingKey }) {
  const imagesSummary = images ? readImagesSummary(images) : undefined;
  // Read (and checked to be Ed25519) before anything is built: a wrong key fails fast.
  const key = signingKey ? createPrivateKey(readFileSync(signingKey)) : undefined;
  if (key && key.asymmetricKeyType !== 'ed25519')
    throw new Error(`--signing-key: ${signingKey} is not an Ed25519 private key`);
  const { helm } = installHelmTools();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'chart'), { recursive: true });

  execFileSync(helm, ['package', chartDir, '--destination', join(out, 'chart')], { stdio: 'ignore' });
  cpSync(join(chartDir, 'presets'), join(out, 'chart', 'presets'), { recursive: true });
  mkdirSync(join(out, 'k8s'));
  for (const file of ['airlock.yaml', 'kustomization.yaml'])
    cpSync(join(root, 'k8s', file), join(out, 'k8s', file));
  const guide = join(root, 'docs', 'air-gapped-install.md');
  if (existsSync(guide)) cpSync(guide, join(out, 'docs', 'air-gapped-install.md'));

  writeFileSync(join(out, 'images.txt'), imagesList(helm));
  writeFileSync(join(out, 'model-catalog.template.yaml'), catalogTemplate);
  const services = writeSboms(out);
  const builtImages = images ? copyImages(images, imagesSummary, out) : [];
  const sums = sha256sums(out);
  writeFileSync(join(out, 'SHA256SUMS'), sums);
  // A signature over the checksum list vouches for every file in it; its public key travels separately.
  if (key) writeFileSync(join(out, 'SHA256SUMS.sig'), cryptoSign(null, Buffer.from(sums), key));
  return { out, services, builtImages, signed: key !== undefined };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { out, services, builtImages, signed } = buildOfflineBundle(parseArgs(process.argv.slice(2)));
    console.log(`offline bundle: ${out}`);
    console.log(
      `  chart ${chart.name}-${chart.version}.tgz, images.txt, SBOMs for ${services.join(', ')}, SHA256SUMS`,
    );
    if (builtImages.length > 0) console.log(`  images/: OCI archives and SBOMs of ${builtImages.join(', ')}`);
    if (signed)
      console.log(
        `  signed: openssl pkeyutl -verify -pubin -inkey <public key> -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig`,
      );
    console.log(`  verify after copying: (cd ${out} && sha256sum -c SHA256SUMS)`);
  } catch (error) {
    console.error(`build-offline-bundle: ${error.stderr?.toString().trim() || error.message}`);
    process.exit(1);
  }
}
