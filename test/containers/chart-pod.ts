// Turns the Deployments and the StatefulSet that the real chart renders into `podman run` arguments for one pod:
// the container's image, env (values, Secret keys, field refs), volumes (Secret and ConfigMap items as files,
// emptyDirs and subPaths as fresh directories, the model hostPath), user and group, read-only root filesystem,
// dropped capabilities and no privilege escalation. What Kubernetes itself would provide and podman cannot
// (Service DNS, the API server for EndpointSlice discovery) is replaced and listed in `substitutions`.
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from '../helm/helm-harness.js';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string };
    fieldRef?: { fieldPath: string };
  };
}

interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[];
  securityContext?: {
    runAsUser?: number;
    runAsGroup?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
}

interface Volume {
  name: string;
  secret?: { secretName: string; defaultMode?: number; items?: { key: string; path: string }[] };
  configMap?: { name: string; items?: { key: string; path: string }[] };
  emptyDir?: object;
  hostPath?: { path: string };
  persistentVolumeClaim?: object;
}

interface PodSpec {
  securityContext?: { runAsUser?: number; runAsGroup?: number; fsGroup?: number };
  containers: Container[];
  volumes?: Volume[];
}

export interface PodContainer {
  /** workload name, e.g. airlock-gateway */
  workload: string;
  container: string;
  /** the podman container's name */
  name: string;
  /** the image the chart names (registry.local/airlock/gateway:0.1.0) */
  chartImage: string;
  runAsUser: number;
  runAsGroup: number;
  /** arguments for `podman run` after `--pod`, without the image */
  args: string[];
}

export interface ChartPodOptions {
  /** where Secret/ConfigMap files and emptyDirs are created */
  scratchDir: string;
  /** hostPath volume path → directory on this machine */
  hostPaths: Record<string, string>;
  /** mounted read-only as every container's /etc/hosts (Service names → the pod's loopback) */
  hostsFile: string;
  /** container names are `<prefix>-<container>` */
  namePrefix: string;
  /** env overrides per container name, each a documented substitution */
  envOverrides: Record<string, Record<string, string>>;
}

const decode = (value: string) => Buffer.from(value, 'base64').toString('utf8');

export function podContainers(objects: KubeObject[], options: ChartPodOptions): PodContainer[] {
  const secrets = new Map(
    objects
      .filter((o) => o.kind === 'Secret')
      .map((o) => [o.metadata.name, (o as unknown as { data: Record<string, string> }).data]),
  );
  const configMaps = new Map(
    objects
      .filter((o) => o.kind === 'ConfigMap')
      .map((o) => [o.metadata.name, (o as unknown as { data: Record<string, string> }).data]),
  );
  const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const result: PodContainer[] = [];

  for (const workload of workloads) {
    const spec = (workload as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
    const podSecurity = spec.securityContext ?? {};
    for (const container of spec.containers) {
      const security = container.securityContext ?? {};
      const runAsUser = security.runAsUser ?? podSecurity.runAsUser;
      const runAsGroup = security.runAsGroup ?? podSecurity.runAsGroup ?? runAsUser;
      if (runAsUser === undefined || runAsGroup === undefined)
        throw new Error(`${workload.metadata.name}/${container.name}: no runAsUser in the chart`);
      const fsGroup = podSecurity.fsGroup ?? runAsGroup;
      const name = `${options.namePrefix}-${container.name}`;
      const args = ['--name', name, '--user', `${runAsUser}:${runAsGroup}`];
      args.push('--volume', `${options.hostsFile}:/etc/hosts:ro`);
      if (fsGroup !== runAsGroup) args.push('--group-add', String(fsGroup));
      // readOnlyRootFilesystem: nothing writable but the declared volumes (no podman /tmp tmpfs either).
      if (security.readOnlyRootFilesystem) args.push('--read-only', '--read-only-tmpfs=false');
      for (const cap of security.capabilities?.drop ?? []) args.push('--cap-drop', cap);
      for (const cap of security.capabilities?.add ?? []) args.push('--cap-add', cap);
      if (security.allowPrivilegeEscalation === false) args.push('--security-opt', 'no-new-privileges');

      const env = new Map<string, string>();
      for (const variable of container.env ?? []) {
        if (variable.value !== undefined) env.set(variable.name, variable.value);
        else if (variable.valueFrom?.secretKeyRef) {
          const { name, key } = variable.valueFrom.secretKeyRef;
          const value = secrets.get(name)?.[key];
          if (value === undefined) throw new Error(`${container.name}: Secret ${name} has no key ${key}`);
          env.set(variable.name, decode(value));
        } else if (variable.valueFrom?.fieldRef) {
          const path = variable.valueFrom.fieldRef.fieldPath;
          env.set(variable.name, path === 'metadata.namespace' ? 'default' : `${workload.metadata.name}-0`);
        }
      }
      for (const [name, value] of Object.entries(options.envOverrides[container.name] ?? {}))
        env.set(name, value);
      for (const [name, value] of env) args.push('--env', `${name}=${value}`);

      // Volumes: one host directory per (workload, volume); subPaths are directories inside it.
      const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
      const volumeClaims = new Set(
        (
          (workload as unknown as { spec: { volumeClaimTemplates?: { metadata: { name: string } }[] } }).spec
            .volumeClaimTemplates ?? []
        ).map((claim) => claim.metadata.name),
      );
      for (const mount of container.volumeMounts ?? []) {
        const volume = volumes.get(mount.name);
        const hostDir = join(options.scratchDir, workload.metadata.name, mount.name);
        let source: string;
        if (volume?.hostPath) {
          source = options.hostPaths[volume.hostPath.path];
          if (!source) throw new Error(`no host directory for hostPath ${volume.hostPath.path}`);
        } else if (volume?.secret || volume?.configMap) {
          const data = volume.secret
            ? secrets.get(volume.secret.secretName)
            : configMaps.get(volume.configMap!.name);
          const items = (volume.secret ?? volume.configMap)!.items;
          if (!data) throw new Error(`${mount.name}: no such Secret/ConfigMap`);
          mkdirSync(hostDir, { recursive: true });
          for (const { key, path } of items ?? Object.keys(data).map((k) => ({ key: k, path: k }))) {
            const file = join(hostDir, path);
            writeFileSync(file, volume.secret ? Buffer.from(data[key], 'base64') : data[key]);
            // Kubernetes: root-owned, group fsGroup, defaultMode (0644 for ConfigMaps).
            chownSync(file, 0, fsGroup);
            chmodSync(file, volume.secret?.defaultMode ?? 0o644);
          }
          source = hostDir;
        } else if (volume?.emptyDir || volumeClaims.has(mount.name)) {
          // emptyDir / the StatefulSet's claim: an empty directory the pod's fsGroup may write (setgid, 2770).
          source = mount.subPath ? join(hostDir, mount.subPath) : hostDir;
          for (const dir of [hostDir, source]) {
            mkdirSync(dir, { recursive: true });
            chownSync(dir, 0, fsGroup);
            chmodSync(dir, 0o2770);
          }
        } else
          throw new Error(
            `${workload.metadata.name}: volume ${mount.name} is of a kind this test does not map`,
          );
        args.push('--volume', `${source}:${mount.mountPath}:${mount.readOnly ? 'ro' : 'rw'}`);
      }
      result.push({
        workload: workload.metadata.name,
        container: container.name,
        name,
        chartImage: container.image,
        runAsUser,
        runAsGroup,
        args,
      });
    }
  }
  return result;
}
