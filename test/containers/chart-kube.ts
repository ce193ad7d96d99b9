// Turns what the real chart renders into ONE Pod for `podman kube play`: every Deployment's and StatefulSet's
// containers, exactly as rendered (image, env, volume mounts, securityContext, probes), side by side in one pod, and
// the chart's ConfigMaps beside it. What a single pod without a cluster cannot have is substituted, and only that,
// each listed in `substitutions`: pod-level security settings move onto each container (one pod, several
// workloads), volume names get their workload's prefix (they would clash), the StatefulSet's claim becomes an
// emptyDir, the model hostPath points at the test models, field refs become the values Kubernetes would give,
// Service names resolve to the pod's 127.0.0.1 (an /etc/hosts file mounted into each container), images are the
// ones loaded from the archives, and env overrides (the gateway's static discovery) are applied. Two podman 4.3
// defects are worked around: a Secret volume's files come out base64-encoded and a `secretKeyRef` wants a JSON map,
// so Secret volumes are played as ConfigMaps of the decoded data and Secret env values are given as values; and it
// ignores fsGroup, so each emptyDir (and each emptyDir subPath) is a fresh host directory the workload's fsGroup may
// write. Container ports are not published: the pod has no network but loopback.
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { KubeObject } from '../helm/helm-harness.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
}

interface SecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
  [field: string]: unknown;
}

interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  securityContext?: SecurityContext;
  [field: string]: unknown;
}

interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  [field: string]: unknown;
}

interface PodSpec {
  securityContext?: SecurityContext & { fsGroup?: number };
  containers: Container[];
  volumes?: Volume[];
}

export interface KubePlayOptions {
  podName: string;
  /** the chart's image → the image to run */
  image: (chartImage: string) => string;
  /** hostPath path → directory on this machine */
  hostPaths: Record<string, string>;
  /** mounted read-only as every container's /etc/hosts */
  hostsFile: string;
  /** env overrides per container name */
  envOverrides: Record<string, Record<string, string>>;
  /** where the emptyDirs are created */
  scratchDir: string;
}

export interface KubePlayPod {
  /** the Pod and the chart's ConfigMaps, as one multi-document YAML for `podman kube play` */
  yaml: string;
  /** per container: name, uid and gid the chart gives it */
  containers: { container: string; runAsUser: number; runAsGroup: number; env: Record<string, string> }[];
  substitutions: string[];
}

export function kubePlayPod(objects: KubeObject[], options: KubePlayOptions): KubePlayPod {
  const substitutions = new Set<string>();
  const containers: Container[] = [];
  const volumes: Volume[] = [{ name: 'hosts', hostPath: { path: options.hostsFile, type: 'File' } }];
  const summary: KubePlayPod['containers'] = [];
  const secretData = new Map(
    objects
      .filter((o) => o.kind === 'Secret')
      .map((o) => [
        o.metadata.name,
        Object.fromEntries(
          Object.entries((o as unknown as { data?: Record<string, string> }).data ?? {}).map(
            ([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')],
          ),
        ),
      ]),
  );
  const secretAsConfigMap = (name: string) => `secret-${name}`;
  /** volume name → the fsGroup (else runAsGroup) of the workload it belongs to */
  const groupOf = new Map<string, number>();
  for (const workload of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
    const spec = (workload as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
    const prefix = workload.metadata.name;
    const { fsGroup, ...podSecurity } = spec.securityContext ?? {};
    if (fsGroup !== undefined)
      substitutions.add('fsGroup: a pod-level setting of each workload, not per container');
    const claims = (
      (workload as unknown as { spec: { volumeClaimTemplates?: { metadata: { name: string } }[] } }).spec
        .volumeClaimTemplates ?? []
    ).map((claim) => claim.metadata.name);
    const renamed = (name: string) => `${prefix}-${name}`.slice(0, 63);
    const group = fsGroup ?? podSecurity.runAsGroup ?? spec.containers[0]?.securityContext?.runAsGroup;
    for (const volume of spec.volumes ?? []) {
      const copy: Volume = { ...volume, name: renamed(volume.name) };
      const secret = volume.secret as { secretName: string; items?: unknown[] } | undefined;
      if (secret) {
        delete copy.secret;
        copy.configMap = {
          name: secretAsConfigMap(secret.secretName),
          ...(secret.items ? { items: secret.items } : {}),
        };
        substitutions.add(`Secret ${secret.secretName} volume → a ConfigMap of its decoded data`);
      }
      if (volume.hostPath) {
        const path = options.hostPaths[volume.hostPath.path];
        if (!path) throw new Error(`no host directory for hostPath ${volume.hostPath.path}`);
        copy.hostPath = { ...volume.hostPath, path };
        substitutions.add(`hostPath ${volume.hostPath.path} → ${path}`);
      }
      volumes.push(copy);
      if (group !== undefined) groupOf.set(copy.name, group);
    }
    for (const claim of claims) {
      volumes.push({ name: renamed(claim), emptyDir: {} });
      if (group !== undefined) groupOf.set(renamed(claim), group);
      substitutions.add(`${prefix}'s volume claim ${claim} → an emptyDir`);
    }
    for (const original of spec.containers) {
      const container: Container = structuredClone(original);
      container.image = options.image(original.image);
      // No network but the pod's loopback: nothing is published (podman refuses port mappings without a network).
      if (container.ports) {
        delete container.ports;
        substitutions.add('container ports: not published (the pod has only loopback)');
      }
      // One pod holds every workload: each container keeps its own workload's pod-level settings.
      container.securityContext = { ...podSecurity, ...original.securityContext };
      const emptyDirs = new Set([
        ...(spec.volumes ?? []).filter((v) => 'emptyDir' in v).map((v) => v.name),
        ...claims,
      ]);
      container.volumeMounts = [
        ...(original.volumeMounts ?? []).map((mount) => {
          if (!mount.subPath || !emptyDirs.has(mount.name)) return { ...mount, name: renamed(mount.name) };
          // podman 4.3 creates an emptyDir's subPath directories root-owned and ignores fsGroup: a subPath that the
          // non-root container must write becomes an emptyDir of its own.
          const name = renamed(`${mount.name}-${mount.subPath.replace(/[^a-z0-9-]/g, '-')}`);
          if (!volumes.some((v) => v.name === name)) volumes.push({ name, emptyDir: {} });
          if (group !== undefined) groupOf.set(name, group);
          substitutions.add('emptyDir subPaths → an emptyDir each');
          return { name, mountPath: mount.mountPath, ...(mount.readOnly ? { readOnly: true } : {}) };
        }),
        { name: 'hosts', mountPath: '/etc/hosts', readOnly: true },
      ];
      const env = (original.env ?? []).map((variable) => {
        const ref = variable.valueFrom?.secretKeyRef;
        if (ref) {
          const value = secretData.get(ref.name)?.[ref.key];
          if (value === undefined)
            throw new Error(`${original.name}: Secret ${ref.name} has no key ${ref.key}`);
          substitutions.add(`env from Secret ${ref.name} → values`);
          return { name: variable.name, value };
        }
        const path = variable.valueFrom?.fieldRef?.fieldPath;
        if (!path) return variable;
        substitutions.add(`fieldRef ${path} → a literal`);
        return { name: variable.name, value: path === 'metadata.namespace' ? 'default' : `${prefix}-0` };
      });
      for (const [name, value] of Object.entries(options.envOverrides[original.name] ?? {})) {
        const index = env.findIndex((variable) => variable.name === name);
        if (index >= 0) env[index] = { name, value };
        else env.push({ name, value });
        substitutions.add(`${original.name}: ${name}=${value}`);
      }
      container.env = env;
      containers.push(container);
      const runAsUser = container.securityContext.runAsUser;
      const runAsGroup = container.securityContext.runAsGroup ?? runAsUser;
      if (runAsUser === undefined || runAsGroup === undefined)
        throw new Error(`${prefix}/${original.name}: no runAsUser in the chart`);
      summary.push({
        container: original.name,
        runAsUser,
        runAsGroup,
        env: Object.fromEntries(env.filter((v) => v.value !== undefined).map((v) => [v.name, v.value!])),
      });
    }
  }
  // podman 4.3 ignores fsGroup and leaves some emptyDirs root-owned (one mounted over an image directory through the
  // /var/run symlink): each emptyDir is a fresh host directory the workload's fsGroup may write (setgid 2770), as a
  // kubelet's fsGroup would make it.
  for (const volume of volumes) {
    if (!('emptyDir' in volume)) continue;
    const dir = join(options.scratchDir, volume.name);
    mkdirSync(dir, { recursive: true });
    chownSync(dir, 0, groupOf.get(volume.name) ?? 0);
    chmodSync(dir, 0o2770);
    delete volume.emptyDir;
    volume.hostPath = { path: dir, type: 'Directory' };
    substitutions.add('emptyDirs → fresh host directories owned by the fsGroup');
  }
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: options.podName },
    spec: { restartPolicy: 'Always', containers, volumes },
  };
  const configMaps = [
    ...objects.filter((o) => o.kind === 'ConfigMap'),
    ...[...secretData].map(([name, data]) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: secretAsConfigMap(name) },
      data,
    })),
  ];
  return {
    yaml: [pod, ...configMaps].map((document) => stringify(document)).join('---\n'),
    containers: summary,
    substitutions: [...substitutions],
  };
}
