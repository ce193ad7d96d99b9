// Offline validation of rendered objects against the Kubernetes schemas: kubernetes-models (types, required fields,
// formats; CRDs from @kubernetes-models/prometheus-operator, /keda and /gateway-api; CloudNativePG's Cluster against a
// subset schema of our own, see localSchemas), plus a check for unknown fields, which
// kubernetes-models lets through: each built-in object goes through @kubernetes/client-node's typed (de)serialiser,
// which keeps only the fields the API defines, and anything that does not come back is reported.
import { dumpYaml, loadYaml } from '@kubernetes/client-node';
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parse, stringify } from 'yaml';
import type { KubeObject } from './helm-harness.js';

type ModelClass = new (data: unknown) => { validate(): void };

const crdPackages: Record<string, string> = {
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
  'keda.sh': '@kubernetes-models/keda',
  'gateway.networking.k8s.io': '@kubernetes-models/gateway-api',
};

function modulePath(apiVersion: string, kind: string): { path: string; builtIn: boolean } {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const crdPackage = crdPackages[group];
  if (crdPackage) return { path: `${crdPackage}/${group}/${version}/${kind}`, builtIn: false };
  return { path: group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`, builtIn: true };
}

/** Paths (a.b[0].c) present in `original` but missing or different in `roundTripped`. */
export function lostFields(original: unknown, roundTripped: unknown, path = ''): string[] {
  if (Array.isArray(original)) {
    if (!Array.isArray(roundTripped)) return [path || '(root)'];
    return original.flatMap((item, index) => lostFields(item, roundTripped[index], `${path}[${index}]`));
  }
  if (original !== null && typeof original === 'object') {
    if (roundTripped === null || typeof roundTripped !== 'object') return [path || '(root)'];
    return Object.entries(original).flatMap(([key, value]) =>
      lostFields(value, (roundTripped as Record<string, unknown>)[key], path ? `${path}.${key}` : key),
    );
  }
  // Scalars: quantities and int-or-strings may change representation; compare as strings.
  return isDeepStrictEqual(original, roundTripped) || String(original) === String(roundTripped) ? [] : [path];
}

// CRDs that no npm package carries: a JSON schema of our own, written from the project's API reference for exactly
// the fields the chart renders (each file says which reference and version). Not the upstream CRD.
const localSchemas: Record<string, string> = {
  'postgresql.cnpg.io/v1/Cluster': 'schemas/cnpg-cluster-v1.subset.schema.json',
};

const ajv = new Ajv({ allErrors: true, strict: true });

function validateLocal(object: KubeObject, schemaFile: string): string[] {
  const where = `${object.kind}/${object.metadata?.name}`;
  const schema = JSON.parse(readFileSync(new URL(schemaFile, import.meta.url), 'utf8')) as object;
  const validate = ajv.getSchema(schemaFile) ?? (ajv.addSchema(schema, schemaFile), ajv.getSchema(schemaFile)!);
  if (validate(object)) return [];
  return (validate.errors ?? []).map(
    (error) =>
      `${where}: ${error.instancePath || '(root)'} ${error.message}${error.params && 'additionalProperty' in error.params ? ` (${String(error.params.additionalProperty)})` : ''}`,
  );
}

/** Problems with one object; empty when it is valid. */
export async function validateObject(object: KubeObject): Promise<string[]> {
  const where = `${object.kind}/${object.metadata?.name}`;
  const local = localSchemas[`${object.apiVersion}/${object.kind}`];
  if (local) return validateLocal(object, local);
  const { path, builtIn } = modulePath(object.apiVersion, object.kind);
  let Model: ModelClass | undefined;
  try {
    Model = ((await import(path)) as Record<string, ModelClass>)[object.kind];
  } catch {
    return [`${where}: no schema for ${object.apiVersion} ${object.kind}`];
  }
  if (!Model) return [`${where}: no schema for ${object.apiVersion} ${object.kind}`];
  const problems: string[] = [];
  try {
    new Model(structuredClone(object)).validate();
  } catch (error) {
    problems.push(`${where}: ${(error as Error).message}`);
  }
  if (builtIn) {
    const roundTripped: unknown = parse(dumpYaml(loadYaml(stringify(object))));
    for (const field of lostFields(object, roundTripped)) problems.push(`${where}: unknown field ${field}`);
  }
  return problems;
}

export async function validateObjects(objects: KubeObject[]): Promise<string[]> {
  const problems: string[] = [];
  for (const object of objects) problems.push(...(await validateObject(object)));
  return problems;
}
