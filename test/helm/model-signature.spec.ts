// models.<id>.signature: the bundle in the model volume and the trusted public key from a ConfigMap or Secret,
// rendered by the real Helm binary into the worker's catalog and mounts, and the rendered catalog read by the
// worker's own catalog parser.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseCatalog } from '../../apps/worker/src/catalog/model-catalog.js';
import { ofKind, parseManifests, renderChart, repoRoot, runHelm, templateArgs, type KubeObject } from './helm-harness.js';

interface Container {
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
type Volume = { name: string } & Record<string, unknown>;
type Workload = KubeObject & { spec: { template: { spec: { containers: Container[]; volumes?: Volume[] } } } };

const signed = (publicKey: string[], extra: string[] = []) =>
  renderChart({
    set: [
      'models.gpt-oss-20b.sha256=' + 'a'.repeat(64),
      ...publicKey.map((v) => `models.gpt-oss-20b.signature.publicKey.${v}`),
      ...extra,
    ],
  });

function pool(objects: KubeObject[], model: string): Workload {
  return ofKind<Workload>(objects, 'Deployment').find(
    (d) => d.metadata.labels?.['app.kubernetes.io/component'] === 'worker' && d.metadata.name.endsWith(model),
  )!;
}

function catalogEntry(objects: KubeObject[], model: string) {
  const catalog = ofKind<KubeObject & { data: Record<string, string> }>(objects, 'ConfigMap').find((c) =>
    c.metadata.name.endsWith('-model-catalog'),
  )!;
  return catalog.data[`${model}.yaml`];
}

describe('models.<id>.signature', () => {
  it('a ConfigMap key: the catalog names the bundle beside the GGUF and the key where the pod mounts it', () => {
    const objects = signed(['configMap=model-signers', 'key=hospital.pub']);
    const text = catalogEntry(objects, 'gpt-oss-20b');
    const [spec] = parseCatalog(parse(text), '/etc/airlock/catalog');
    expect(spec.signature).toEqual({
      bundle: '/models/gpt-oss-20b-mxfp4.gguf.sig',
      publicKey: '/etc/airlock/model-signer/hospital.pub',
    });
    const worker = pool(objects, 'gpt-oss-20b');
    const container = worker.spec.template.spec.containers[0];
    const signerMount = container.volumeMounts!.find((m) => m.name === 'model-signer')!;
    expect(signerMount).toEqual({ name: 'model-signer', mountPath: '/etc/airlock/model-signer', readOnly: true });
    expect(spec.signature!.publicKey.startsWith(`${signerMount.mountPath}/`)).toBe(true);
    const modelsMount = container.volumeMounts!.find((m) => m.name === 'models')!;
    expect(spec.signature!.bundle.startsWith(`${modelsMount.mountPath}/`)).toBe(true);
    expect(worker.spec.template.spec.volumes!.find((v) => v.name === 'model-signer')).toEqual({
      name: 'model-signer',
      configMap: { name: 'model-signers', items: [{ key: 'hospital.pub', path: 'hospital.pub' }] },
    });
  });

  it('a Secret key and a bundle path of its own', () => {
    const objects = signed(['secret=signers', 'key=release.pem'], [
      'models.gpt-oss-20b.signature.bundle=signatures/gpt-oss-20b.sig',
    ]);
    const [spec] = parseCatalog(parse(catalogEntry(objects, 'gpt-oss-20b')), '/etc/airlock/catalog');
    expect(spec.signature).toEqual({
      bundle: '/models/signatures/gpt-oss-20b.sig',
      publicKey: '/etc/airlock/model-signer/release.pem',
    });
    expect(pool(objects, 'gpt-oss-20b').spec.template.spec.volumes!.find((v) => v.name === 'model-signer')).toEqual({
      name: 'model-signer',
      secret: { secretName: 'signers', items: [{ key: 'release.pem', path: 'release.pem' }] },
    });
  });

  it('changing the trusted key rolls the pool (the worker checks signatures at load)', () => {
    const annotation = (objects: KubeObject[]) =>
      (pool(objects, 'gpt-oss-20b').spec.template as unknown as { metadata: { annotations: Record<string, string> } })
        .metadata.annotations['airlock.dev/catalog-sha256'];
    expect(annotation(signed(['configMap=a', 'key=one.pub']))).not.toBe(annotation(signed(['configMap=a', 'key=two.pub'])));
  });

  it('a model without one has no signature in its catalog and no signer volume', () => {
    const objects = renderChart({});
    const [spec] = parseCatalog(parse(catalogEntry(objects, 'gpt-oss-20b')), '/etc/airlock/catalog');
    expect(spec.signature).toBeUndefined();
    const worker = pool(objects, 'gpt-oss-20b');
    expect(worker.spec.template.spec.volumes!.some((v) => v.name === 'model-signer')).toBe(false);
  });

  it.each<[string, string[], RegExp]>([
    ['both a Secret and a ConfigMap', ['secret=a', 'configMap=b', 'key=k'], /signature\.publicKey: Must validate one and only one schema/],
    ['neither', ['key=k'], /signature\.publicKey: Must validate one and only one schema/],
    ['no key', ['secret=a'], /signature\.publicKey: key is required/],
    ['a key name with a slash', ['secret=a', 'key=../k'], /signature\.publicKey\.key: Does not match pattern/],
    ['a misspelt field', ['secret=a', 'key=k', 'kye=k'], /Additional property kye is not allowed/],
  ])('refuses %s', (_case, publicKey, message) => {
    const result = runHelm(templateArgs({ set: publicKey.map((v) => `models.gpt-oss-20b.signature.publicKey.${v}`) }));
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it('refuses a bundle outside the model volume', () => {
    const result = runHelm(
      templateArgs({
        set: [
          'models.gpt-oss-20b.signature.bundle=../etc/x.sig',
          'models.gpt-oss-20b.signature.publicKey.secret=a',
          'models.gpt-oss-20b.signature.publicKey.key=k',
        ],
      }),
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/signature\.bundle: Must not validate the schema/);
  });
});

describe('docs/air-gapped-install.md, "Signed models"', () => {
  it("the guide's signed-values.yaml on the 24 GB preset gives the worker the bundle and the ConfigMap's key", () => {
    const guide = readFileSync(join(repoRoot, 'docs', 'air-gapped-install.md'), 'utf8');
    const heredoc = /cat > signed-values\.yaml <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(guide);
    expect(heredoc).not.toBeNull();
    const file = join(mkdtempSync(join(tmpdir(), 'airlock-guide-')), 'signed-values.yaml');
    writeFileSync(file, heredoc![1]);
    const result = runHelm([...templateArgs({ valuesFile: 'presets/gpt-oss-20b-24gb.yaml' }), '--values', file]);
    expect(result.stderr).toBe('');
    const objects = parseManifests(result.stdout);
    const [spec] = parseCatalog(parse(catalogEntry(objects, 'gpt-oss-20b')), '/etc/airlock/catalog');
    expect(spec.signature).toEqual({
      bundle: '/models/gpt-oss-20b-mxfp4.gguf.sig',
      publicKey: '/etc/airlock/model-signer/hospital.pub',
    });
    expect(pool(objects, 'gpt-oss-20b').spec.template.spec.volumes!.find((v) => v.name === 'model-signer')).toMatchObject({
      configMap: { name: 'model-signers' },
    });
  });
});
