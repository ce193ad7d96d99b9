// The offline bundle command, run for real (helm package, cyclonedx-npm over the installed tree), into a temp dir.
import { spawnSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseManifests, renderChart, repoRoot, runHelm, type KubeObject } from './helm-harness.js';

interface CycloneDx {
  bomFormat: string;
  specVersion: string;
  components: { name: string; group?: string; version: string; purl?: string }[];
}

describe('scripts/build-offline-bundle.mjs', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'airlock-bundle-')), 'bundle');
  // The release manager's offline signing key; the public half is what the hospital receives out of band.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyFile = join(out, '..', 'release-signing-key.pem');
  const publicKeyFile = join(out, '..', 'release-signing-key.pub.pem');
  let run: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    run = spawnSync(
      process.execPath,
      [join(repoRoot, 'scripts', 'build-offline-bundle.mjs'), '--out', out, '--signing-key', keyFile],
      { encoding: 'utf8', cwd: repoRoot },
    );
  }, 120_000);
  afterAll(() => rmSync(join(out, '..'), { recursive: true, force: true }));

  it('succeeds and says where the bundle is', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`offline bundle: ${out}`);
  });

  it('checksums every file in the bundle, in sha256sum -c format', () => {
    const lines = readFileSync(join(out, 'SHA256SUMS'), 'utf8').trim().split('\n');
    const listed = new Map(lines.map((line) => [line.slice(66), line.slice(0, 64)]));
    for (const [file, digest] of listed) {
      expect(createHash('sha256').update(readFileSync(join(out, file))).digest('hex')).toBe(digest);
    }
    const files = readdirSync(out, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name !== 'SHA256SUMS' && entry.name !== 'SHA256SUMS.sig')
      .map((entry) => relative(out, join(entry.parentPath, entry.name)));
    expect([...listed.keys()].sort()).toEqual(files.sort());
    expect(listed.has('chart/airlock-0.1.0.tgz')).toBe(true);
    expect(listed.has('model-catalog.template.yaml')).toBe(true);
  });

  it("signs the checksum list with the release key: the guide's openssl command accepts it, a changed list fails", () => {
    const sums = readFileSync(join(out, 'SHA256SUMS'));
    const signature = readFileSync(join(out, 'SHA256SUMS.sig'));
    const trusted = createPublicKey(readFileSync(publicKeyFile));
    expect(verify(null, sums, trusted, signature)).toBe(true);
    expect(verify(null, Buffer.concat([sums, Buffer.from('0'.repeat(64) + '  extra\n')]), trusted, signature)).toBe(false);
    const openssl = spawnSync('openssl', ['version'], { encoding: 'utf8' });
    if (openssl.status !== 0) {
      process.stderr.write('offline-bundle: openssl not installed; its verify command is not run\n');
      return;
    }
    const check = (file: string) =>
      spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', publicKeyFile, '-rawin', '-in', file, '-sigfile', join(out, 'SHA256SUMS.sig')], {
        encoding: 'utf8',
      });
    expect(check(join(out, 'SHA256SUMS')).stdout).toContain('Signature Verified Successfully');
    const forged = join(out, '..', 'SHA256SUMS.forged');
    writeFileSync(forged, Buffer.concat([sums, Buffer.from('x')]));
    expect(check(forged).status).not.toBe(0);
  });

  it('packages a chart that lints and renders like the source chart', () => {
    const packaged = join(out, 'chart', 'airlock-0.1.0.tgz');
    expect(runHelm(['lint', '--strict', packaged]).status).toBe(0);
    const fromPackage = runHelm(['template', 'airlock', packaged, '--namespace', 'airlock', '--kube-version', '1.33.0']);
    const names = (objects: KubeObject[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(fromPackage.status).toBe(0);
    expect(names(parseManifests(fromPackage.stdout))).toEqual(names(renderChart()));
  });

  it('lists every image the chart can deploy, without the registry, so that they can be mirrored', () => {
    const listed = readFileSync(join(out, 'images.txt'), 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.split('\t')[0]);
    const rendered = [...renderChart(), ...renderChart({ valuesFile: 'presets/cpu-evaluation.yaml' })]
      .flatMap((o) => JSON.stringify(o).match(/"image":"[^"]+"/g) ?? [])
      .map((match) => match.slice('"image":"registry.local/'.length, -1));
    expect(new Set(listed)).toEqual(new Set(rendered));
    expect(listed).toEqual(
      expect.arrayContaining(['airlock/gateway:0.1.0', 'airlock/auth-audit:0.1.0', 'airlock/worker:0.1.0', 'airlock/worker-cuda:0.1.0']),
    );
  });

  it('writes a CycloneDX SBOM per service with its runtime dependencies and no dev tooling', () => {
    const services = readdirSync(join(repoRoot, 'apps')).filter((name) => existsSync(join(repoRoot, 'apps', name, 'package.json')));
    expect(services).toEqual(expect.arrayContaining(['gateway', 'worker']));
    for (const service of services) {
      const sbom = JSON.parse(readFileSync(join(out, 'sbom', `${service}.cdx.json`), 'utf8')) as CycloneDx;
      expect(sbom.bomFormat).toBe('CycloneDX');
      const names = new Set(sbom.components.map((c) => (c.group ? `${c.group}/${c.name}` : c.name)));
      expect(names.has('@grpc/grpc-js')).toBe(true);
      expect(names.has('jest')).toBe(false);
      expect(names.has('@aws-cdk/lambda-layer-kubectl-v33')).toBe(false);
      expect(sbom.components.every((c) => c.version && c.purl?.startsWith('pkg:npm/'))).toBe(true);
    }
  });
});

// --images: the bundle carries what `npm run images` wrote. The archives here are stand-ins (a few bytes each): the
// real ones are built and run by test/containers; this checks what the switch copies and checksums.
describe('scripts/build-offline-bundle.mjs --images', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'airlock-bundle-images-'));
  const imagesDir = join(scratch, 'images');
  const out = join(scratch, 'bundle');
  const summary = {
    images: ['gateway', 'postgresql'].map((id) => ({
      image: `airlock/${id}:0.1.0`,
      digest: `sha256:${createHash('sha256').update(id).digest('hex')}`,
      archive: `${id}.oci.tar`,
      sbom: `${id}.cdx.json`,
    })),
  };
  let run: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    mkdirSync(imagesDir);
    writeFileSync(join(imagesDir, 'images.json'), JSON.stringify(summary));
    writeFileSync(join(imagesDir, 'DIGESTS'), summary.images.map((i) => `${i.digest}  ${i.image}`).join('\n'));
    for (const image of summary.images) {
      writeFileSync(join(imagesDir, image.archive), `archive of ${image.image}`);
      writeFileSync(join(imagesDir, image.sbom), '{"bomFormat":"CycloneDX"}');
    }
    writeFileSync(join(imagesDir, 'unrelated.txt'), 'not listed in images.json');
    run = spawnSync(
      process.execPath,
      [join(repoRoot, 'scripts', 'build-offline-bundle.mjs'), '--out', out, '--images', imagesDir],
      { encoding: 'utf8', cwd: repoRoot },
    );
  }, 120_000);
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('copies the archives, SBOMs, digests and summary that images.json lists, and checksums them', () => {
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('images/: OCI archives and SBOMs of airlock/gateway:0.1.0, airlock/postgresql:0.1.0');
    expect(readdirSync(join(out, 'images')).sort()).toEqual([
      'DIGESTS',
      'gateway.cdx.json',
      'gateway.oci.tar',
      'images.json',
      'postgresql.cdx.json',
      'postgresql.oci.tar',
    ]);
    const sums = readFileSync(join(out, 'SHA256SUMS'), 'utf8');
    const archive = readFileSync(join(out, 'images', 'gateway.oci.tar'));
    expect(sums).toContain(`${createHash('sha256').update(archive).digest('hex')}  images/gateway.oci.tar`);
  });

  it('refuses an images folder without images.json', () => {
    const failed = spawnSync(
      process.execPath,
      [join(repoRoot, 'scripts', 'build-offline-bundle.mjs'), '--out', join(scratch, 'b2'), '--images', scratch],
      { encoding: 'utf8', cwd: repoRoot },
    );
    expect(failed.status).toBe(1);
    expect(failed.stderr).toMatch(/images\.json is missing: run npm run images first/);
  });
});
