// The platform running from its real images: the OCI archives `npm run images` wrote are loaded into podman, and
// the manifests the chart renders for the CPU evaluation preset are played by `podman kube play`: gateway,
// auth-audit, the CPU worker and PostgreSQL (the Debian-built image) as the chart's own container specs (image,
// env, volume mounts, securityContext: read-only root, non-root uid/gid, all capabilities dropped, no privilege
// escalation; probes), side by side in ONE pod with no network but the pod's own loopback, with the chart's
// ConfigMaps (test/containers/chart-kube.ts). Then the end-to-end smoke runs in a fifth container in the same pod:
// models, chat, streamed chat, embeddings through the official openai client, and `airlock audit verify`
// (test/netns/smoke-client.mjs).
// What Kubernetes would provide and a pod cannot is substituted, and only that (chart-kube.ts lists each, and the
// test prints them): Service names resolve to the pod's 127.0.0.1 (an /etc/hosts mounted into each container), the
// gateway finds the worker statically instead of through EndpointSlices (no API server here), the chart's
// postgres:17.6 is replaced by airlock/postgresql:15-bookworm, and two podman 4.3 defects around Secrets are
// worked around.
// Images: dist/images (or AIRLOCK_IMAGES_DIR) from an earlier `npm run images` (.ci/run builds them once per run).
// Skips, saying why, where podman cannot run containers (no podman, not root) or the images were not built.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseManifests, repoRoot, runHelm } from '../helm/helm-harness.js';
import { TEST_MODELS_DIR } from '../support/test-models.js';
import { kubePlayPod, type KubePlayPod } from './chart-kube.js';

const run = promisify(execFile);
const IMAGES_DIR = process.env.AIRLOCK_IMAGES_DIR ?? join(repoRoot, 'dist', 'images');

function podmanUnavailable(): string | null {
  if (process.getuid?.() !== 0)
    return `needs root (uid ${process.getuid?.()}): images are built and run rootful`;
  const probe = spawnSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], { encoding: 'utf8' });
  if (probe.error) return `no podman (${probe.error.message}); .ci/run installs it`;
  if (probe.status !== 0) return `podman info failed: ${probe.stderr.trim()}`;
  for (const tool of ['buildah', 'skopeo', 'debootstrap']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `no ${tool}; .ci/run installs it`;
  }
  if (!TEST_MODELS_DIR) return 'no stories260K test models (AIRLOCK_TEST_MODELS_DIR)';
  // Built once per CI run by .ci/run (minutes on two cores), never implicitly by a test run.
  if (!existsSync(join(IMAGES_DIR, 'images.json')))
    return `no images in ${IMAGES_DIR} (run \`npm run images\` first, as .ci/run does)`;
  return null;
}

const unavailable = podmanUnavailable();
if (unavailable) process.stderr.write(`test/containers/platform-pod: SKIPPED: ${unavailable}\n`);
const describeWithPodman = unavailable ? describe.skip : describe;

interface ImagesSummary {
  images: { image: string; digest: string; archive: string; sbom: string }[];
}

interface SmokeSummary {
  models: string[];
  chatText: string;
  chatUsage: { prompt_tokens: number; completion_tokens: number };
  streamChunks: number;
  streamText: string;
  embeddingLength: number;
  calls: number;
  userRecords: { kind: string; action: string; outcome: string }[];
  verify: { ok: boolean; records_checked: number };
}

const podman = (...args: string[]) => run('podman', args, { maxBuffer: 64 * 1024 * 1024 });

describeWithPodman('the platform from its images, in one pod with the chart settings', () => {
  const suffix = randomBytes(4).toString('hex');
  const pod = `airlock-test-${suffix}`;
  let scratch: string;
  let played: KubePlayPod;
  /** podman names a played pod's containers <pod>-<container> */
  const nameOf = (container: string) => `${pod}-${container}`;
  let loaded: Map<string, string>; // image name (airlock/gateway) → local reference
  let summary: ImagesSummary;

  beforeAll(async () => {
    summary = JSON.parse(readFileSync(join(IMAGES_DIR, 'images.json'), 'utf8')) as ImagesSummary;

    // Load each archive under a name of this run: what runs is what the archive holds. The archive's manifest
    // has the digest images.json reports, and the loaded image is its config (image id = config digest).
    loaded = new Map();
    for (const image of summary.images) {
      const name = image.image.split(':')[0];
      const archive = `oci-archive:${join(IMAGES_DIR, image.archive)}`;
      const manifest = (await run('skopeo', ['inspect', '--raw', archive])).stdout;
      expect(`sha256:${createHash('sha256').update(manifest).digest('hex')}`).toBe(image.digest);
      const local = `localhost/airlock-test/${name.split('/')[1]}:${image.digest.slice(7, 19)}`;
      await run('skopeo', ['copy', '--quiet', archive, `containers-storage:${local}`]);
      const { stdout: id } = await podman('image', 'inspect', '--format', '{{.Id}}', local);
      expect(`sha256:${id.trim()}`).toBe(
        (JSON.parse(manifest) as { config: { digest: string } }).config.digest,
      );
      loaded.set(name, local);
    }

    scratch = mkdtempSync(join(tmpdir(), 'airlock-pod-'));
    const valuesFile = join(scratch, 'values.yaml');
    const modelSha = execFileSync('sha256sum', [join(TEST_MODELS_DIR!, 'stories260K.gguf')], {
      encoding: 'utf8',
    }).split(' ')[0];
    writeFileSync(
      valuesFile,
      [
        'models:',
        '  gpt-oss-20b: null', // the preset's model: not here
        '  stories260k:',
        '    file: stories260K.gguf',
        `    sha256: "${modelSha}"`,
        '    contextSize: 256',
        '    parallel: 2',
        '    queueSize: 8',
        '    gpuLayers: 0',
        '    gpu: cpu',
        '    embeddings: true',
        '    gpus: 0',
        '    modelVolume:',
        '      hostPath:',
        '        path: /models',
        '',
      ].join('\n'),
    );
    const rendered = runHelm([
      'template',
      'airlock',
      join(repoRoot, 'helm', 'airlock'),
      '--kube-version',
      '1.33.0',
      '--values',
      join(repoRoot, 'helm', 'airlock', 'presets', 'cpu-evaluation.yaml'),
      '--values',
      valuesFile,
    ]);
    if (rendered.status !== 0) throw new Error(`helm template failed: ${rendered.stderr}`);
    // Service DNS names → the pod's 127.0.0.1 (podman 4.3 does not write --add-host entries with --network none).
    const hosts = [
      'airlock-auth-audit',
      'airlock-postgresql',
      'airlock-worker-stories260k',
      'airlock-gateway',
    ];
    const hostsFile = join(scratch, 'hosts');
    writeFileSync(hostsFile, `127.0.0.1 localhost ${hosts.join(' ')}\n`, { mode: 0o644 });
    const imageFor = (chartImage: string) => {
      const repository = chartImage.split('/').slice(1).join('/').split(':')[0];
      const local = loaded.get(repository === 'library/postgres' ? 'airlock/postgresql' : repository);
      if (!local) throw new Error(`no image built for ${chartImage}`);
      return local;
    };
    played = kubePlayPod(parseManifests(rendered.stdout), {
      podName: pod,
      image: imageFor,
      hostsFile,
      scratchDir: join(scratch, 'volumes'),
      hostPaths: { '/models': TEST_MODELS_DIR! },
      envOverrides: {
        // No API server in a pod: the one worker is listed statically (its Service name, as in the cluster).
        gateway: { AIRLOCK_DISCOVERY: 'static', AIRLOCK_WORKERS: 'airlock-worker-stories260k:50061' },
      },
    });
    process.stderr.write(`test/containers/platform-pod: substituted: ${played.substitutions.join('; ')}\n`);
    const kubeFile = join(scratch, 'pod.yaml');
    writeFileSync(kubeFile, played.yaml);
    // Every container starts at once, as in a cluster; one that starts before its dependency exits and is restarted
    // (restartPolicy Always), as a kubelet would.
    await podman('kube', 'play', '--network', 'none', '--no-hosts', kubeFile);
    const gateway = nameOf('gateway');
    await waitFor(nameOf('postgresql'), nameOf('postgresql'), [
      'pg_isready',
      '-h',
      '127.0.0.1',
      '-U',
      'airlock',
      '-d',
      'airlock',
    ]);
    // The chart's readiness probes (GET /readyz on each ops port), from inside the pod.
    for (const [service, port] of [
      ['auth-audit', 9401],
      ['worker', 9402],
      ['gateway', 9400],
    ] as const) {
      const probe = `fetch('http://127.0.0.1:${port}/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))`;
      await waitFor(gateway, nameOf(service), ['node', '-e', probe]);
    }
  }, 15 * 60_000);

  /** Bounded readiness wait: the command (a chart probe) run in container `in` until it succeeds. */
  async function waitFor(inContainer: string, what: string, command: string[], execIn = inContainer) {
    for (let attempt = 0; attempt < 120; attempt += 1) {
      const result = spawnSync('podman', ['exec', execIn, ...command], { encoding: 'utf8' });
      if (result.status === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const failed = what;
    const logs = spawnSync('podman', ['logs', '--tail', '30', failed], { encoding: 'utf8' });
    throw new Error(`${failed} not ready after 60 s; its logs:\n${logs.stdout}${logs.stderr}`);
  }

  afterAll(() => {
    if (process.env.AIRLOCK_KEEP_POD !== '1') {
      spawnSync('podman', ['pod', 'rm', '--force', '--time', '2', pod]);
      for (const local of loaded?.values() ?? []) spawnSync('podman', ['rmi', local]);
    }
    if (scratch && process.env.AIRLOCK_KEEP_POD !== '1') rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  test('every container runs as the chart says: non-root, read-only root, no capabilities, only loopback', async () => {
    expect(played.containers.map((c) => c.container).sort()).toEqual([
      'auth-audit',
      'gateway',
      'postgresql',
      'worker',
    ]);
    for (const container of played.containers) {
      const name = nameOf(container.container);
      const { stdout: inspect } = await podman(
        'inspect',
        '--format',
        '{{.State.Running}} {{.Config.User}}',
        name,
      );
      expect(inspect.trim()).toBe(`true ${container.runAsUser}:${container.runAsGroup}`);
      const { stdout } = await podman(
        'exec',
        name,
        'sh',
        '-c',
        'id -u; grep CapEff /proc/self/status; cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d " "; ' +
          'touch /usr/airlock-probe 2>&1 || true; command -v apt-get dpkg npm gcc cc || true',
      );
      const [uid, capEff, ...rest] = stdout.trim().split('\n');
      expect(Number(uid)).toBe(container.runAsUser);
      expect(uid).not.toBe('0');
      expect(capEff).toMatch(/^CapEff:\s+0+$/);
      expect(rest.filter((line) => !line.startsWith('touch:'))).toEqual(['lo']); // no interface but loopback
      expect(rest.find((line) => line.startsWith('touch:'))).toMatch(/Read-only file system/);
    }
  });

  test('the end-to-end smoke passes against the pod: models, chat, stream, embeddings, audit verify', async () => {
    // The admin key the chart's evaluation Secret gave auth-audit.
    const adminKey = played.containers.find((c) => c.container === 'auth-audit')!.env.AIRLOCK_ADMIN_KEY;
    expect(adminKey).toMatch(/^alk_/);
    const keyDir = join(scratch, 'smoke');
    execFileSync('mkdir', ['-p', keyDir]);
    writeFileSync(join(keyDir, 'admin-key'), `${adminKey}\n`, { mode: 0o644 });
    // The client runs in the pod (its 127.0.0.1 is the pod's), from the gateway image's Node, with the
    // repository's openai client and CLI mounted read-only.
    const { stdout } = await podman(
      'run',
      '--rm',
      '--pod',
      pod,
      '--user',
      '10001:10001',
      '--read-only',
      '--cap-drop',
      'ALL',
      '--volume',
      `${repoRoot}:/repo:ro`,
      '--volume',
      `${keyDir}:/smoke:ro`,
      '--env',
      'AIRLOCK_URL=http://127.0.0.1:8080',
      '--env',
      'AIRLOCK_DATA_DIR=/smoke',
      '--entrypoint',
      'node',
      loaded.get('airlock/gateway')!,
      '/repo/test/netns/smoke-client.mjs',
    );
    const smoke = JSON.parse(stdout.trim().split('\n').pop()!) as SmokeSummary;
    expect(smoke.models).toEqual(['stories260k']);
    expect(smoke.chatText.length).toBeGreaterThan(0);
    expect(smoke.chatUsage.completion_tokens).toBeGreaterThan(0);
    expect(smoke.streamChunks).toBeGreaterThan(0);
    expect(smoke.streamText).toBe(smoke.chatText); // temperature 0: the stream says what the plain call said
    expect(smoke.embeddingLength).toBeGreaterThan(0);
    // Every call left its request and completion records in the pod's PostgreSQL, and the chain verifies.
    expect(smoke.userRecords).toHaveLength(2 * smoke.calls);
    const completions = smoke.userRecords.filter((r) => r.kind === 'completion');
    expect(completions.map((r) => `${r.action} ${r.outcome}`).sort()).toEqual([
      'chat.completions succeeded',
      'chat.completions succeeded',
      'embeddings succeeded',
      'models.list succeeded',
    ]);
    expect(smoke.verify.ok).toBe(true);
    expect(smoke.verify.records_checked).toBeGreaterThanOrEqual(2 * smoke.calls);
  });
});
