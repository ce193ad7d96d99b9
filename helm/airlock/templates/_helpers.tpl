{{/* Chart name, cut to 63 characters (the limit of a DNS label). */}}
{{- define "airlock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name of every object. */}}
{{- define "airlock.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "airlock.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "airlock.labels" -}}
helm.sh/chart: {{ include "airlock.chart" . }}
{{ include "airlock.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: airlock
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the release's pods (NetworkPolicies use them too). */}}
{{- define "airlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "airlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Component names and labels: pass (dict "root" $ "component" "gateway"). */}}
{{- define "airlock.componentName" -}}
{{- printf "%s-%s" (include "airlock.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "airlock.componentLabels" -}}
{{ include "airlock.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of a pod template: no chart version and no app version, so that upgrading the chart alone never restarts
pods (a GPU pool reloads its model for minutes). What does change a pod (image, settings) changes its spec anyway.
*/}}
{{- define "airlock.podLabels" -}}
{{ include "airlock.componentSelectorLabels" . }}
app.kubernetes.io/part-of: airlock
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- with .model }}
airlock.dev/model: {{ .id | quote }}
{{- end }}
{{- end }}

{{- define "airlock.componentSelectorLabels" -}}
{{ include "airlock.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* A worker pool's name: <fullname>-worker-<model id in DNS form>. Pass (dict "root" $ "model" $model). */}}
{{- define "airlock.workerName" -}}
{{- $slug := regexReplaceAll "[^a-z0-9-]+" (.model.id | lower) "-" | trimAll "-" }}
{{- printf "%s-worker-%s" (include "airlock.fullname" .root) $slug | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "airlock.workerSelectorLabels" -}}
{{ include "airlock.componentSelectorLabels" (dict "root" .root "component" "worker") }}
airlock.dev/model: {{ .model.id | quote }}
{{- end }}

{{- define "airlock.workerLabels" -}}
{{ include "airlock.componentLabels" (dict "root" .root "component" "worker") }}
airlock.dev/model: {{ .model.id | quote }}
{{- end }}

{{/*
The models to serve, as a JSON list ordered by id: each entry of the .Values.models map with its key as "id".
A map (not a list) so that a preset and the operator's own values file merge per model instead of one replacing
the other; an entry set to null is dropped. Use: range $model := include "airlock.models" $ | fromJsonArray.
*/}}
{{- define "airlock.models" -}}
{{- $models := list }}
{{- range $id, $entry := .Values.models }}
{{- if $entry }}
{{- $models = append $models (merge (dict "id" $id) $entry) }}
{{- end }}
{{- end }}
{{- toJson $models }}
{{- end }}

{{/*
Deep merge of .src into .dst (maps merge key by key, anything else replaces, false and 0 included: sprig's
mergeOverwrite would skip those). Pass (dict "dst" $map "src" $map); .dst is changed.
*/}}
{{- define "airlock.mergeInto" -}}
{{- range $key, $value := .src }}
{{- if and (kindIs "map" $value) (kindIs "map" (get $.dst $key)) }}
{{- include "airlock.mergeInto" (dict "dst" (get $.dst $key) "src" $value) }}
{{- else }}
{{- $_ := set $.dst $key $value }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A worker pool's settings: .Values.workers deep-merged with the model entry (the entry wins, key by key at every
depth; modelVolume is replaced whole). Pass (dict "root" $ "model" $model "out" (dict)); the result is written into "out".
*/}}
{{- define "airlock.mergePool" -}}
{{- range $key, $value := deepCopy .root.Values.workers }}
{{- $_ := set $.out $key $value }}
{{- end }}
{{- include "airlock.mergeInto" (dict "dst" .out "src" (omit .model "id")) }}
{{- /* The model volume is one choice of three: an entry that names one replaces the default whole. */}}
{{- with .model.modelVolume }}
{{- $_ := set $.out "modelVolume" (deepCopy .) }}
{{- end }}
{{- end }}

{{/*
An image reference from the configured registry: <registry>/<repository>:<tag>[@<digest>].
Pass (dict "root" $ "image" .Values.gateway.image). Never "latest": a moving tag defeats mirroring and audits.
*/}}
{{- define "airlock.image" -}}
{{- $registry := .root.Values.image.registry | trimSuffix "/" }}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString }}
{{- if eq $tag "latest" }}
{{- fail (printf "image %s: the tag \"latest\" is refused; pin a version (and optionally a digest)" .image.repository) }}
{{- end }}
{{- $ref := printf "%s/%s:%s" $registry .image.repository $tag }}
{{- if .image.digest }}
{{- /* Either form: "sha256:…" or what `docker inspect` prints, "repo@sha256:…" (the repository part is dropped). */}}
{{- $ref = printf "%s@%s" $ref (regexReplaceAll "^.*@" .image.digest "") }}
{{- end }}
{{- $ref }}
{{- end }}

{{/* Pod- and container-level security contexts that meet Pod Security "restricted". */}}
{{- define "airlock.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "airlock.containerSecurityContext" -}}
{{ toYaml .Values.containerSecurityContext }}
{{- end }}

{{/* Extra AIRLOCK_* settings from a values map, rendered as env entries. */}}
{{- define "airlock.envFromMap" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* The Secret that holds auth-audit's secrets (database URL, admin key, audit signing key). */}}
{{- define "airlock.authAuditSecretName" -}}
{{- .Values.authAudit.secrets.name | default (include "airlock.componentName" (dict "root" . "component" "auth-audit")) }}
{{- end }}

{{/* The port the worker pools listen on for gRPC and for /healthz /readyz /metrics. */}}
{{- define "airlock.workerGrpcPort" -}}50061{{- end }}
{{- define "airlock.workerOpsPort" -}}9402{{- end }}

{{/* Egress to the cluster DNS only (UDP and TCP 53). */}}
{{- define "airlock.dnsEgressRule" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace | quote }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
{{- end }}

{{/* Ingress to the ops port (/metrics) from the monitoring namespaces, if any. */}}
{{- define "airlock.metricsIngressRule" -}}
{{- with .Values.networkPolicy.metrics.namespaces -}}
- ports:
    - port: ops
      protocol: TCP
  from:
    {{- range . }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ . | quote }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Egress to PostgreSQL (the evaluation StatefulSet, the CloudNativePG Cluster's instances, or networkPolicy.database): auth-audit and its jobs. */}}
{{- define "airlock.databaseEgressRules" -}}
{{- $np := .Values.networkPolicy }}
{{- $postgresql := dict "root" . "component" "postgresql" }}
{{- if .Values.postgresql.enabled }}
- ports:
    - port: 5432
      protocol: TCP
  to:
    - podSelector:
        matchLabels:
          {{- include "airlock.componentSelectorLabels" $postgresql | nindent 10 }}
{{- end }}
{{- if include "airlock.cnpg.enabled" . }}
- ports:
    - port: 5432
      protocol: TCP
  to:
    - podSelector:
        matchLabels:
          cnpg.io/cluster: {{ include "airlock.cnpg.name" . }}
{{- end }}
{{- if or $np.database.cidrs $np.database.podLabels }}
- ports:
    - port: {{ $np.database.port }}
      protocol: TCP
  to:
    {{- range $np.database.cidrs }}
    - ipBlock:
        cidr: {{ . | quote }}
    {{- end }}
    {{- if $np.database.podLabels }}
    - podSelector:
        matchLabels:
          {{- toYaml $np.database.podLabels | nindent 10 }}
      {{- if $np.database.namespace }}
      namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $np.database.namespace | quote }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end }}

{{/* Name of a component's TLS Secret (ca.crt, tls.crt, tls.key). Pass (dict "root" $ "component" "gateway"). */}}
{{- define "airlock.tlsSecretName" -}}
{{- $given := get .root.Values.tls.secretNames .component | default "" }}
{{- $given | default (printf "%s-tls" (include "airlock.componentName" .)) }}
{{- end }}

{{/* The AIRLOCK_TLS_* (or the plaintext) variables of a component's container. */}}
{{- define "airlock.tlsEnv" -}}
{{- if eq .root.Values.tls.mode "plaintext" }}
# NOT FOR PRODUCTION: internal gRPC without TLS (tls.mode plaintext); every service logs it at start.
- name: AIRLOCK_INTERNAL_PLAINTEXT
  value: "true"
{{- else }}
- name: AIRLOCK_TLS_CA_FILE
  value: /etc/airlock/tls/ca.crt
- name: AIRLOCK_TLS_CERT_FILE
  value: /etc/airlock/tls/tls.crt
- name: AIRLOCK_TLS_KEY_FILE
  value: /etc/airlock/tls/tls.key
- name: AIRLOCK_TLS_REFRESH_SECONDS
  value: {{ .root.Values.tls.refreshSeconds | quote }}
{{- end }}
{{- end }}

{{/* The TLS volume mount; the kubelet swaps a renewed Secret in place and the service re-reads it. */}}
{{- define "airlock.tlsVolumeMount" -}}
{{- if ne .root.Values.tls.mode "plaintext" }}
- name: tls
  mountPath: /etc/airlock/tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "airlock.tlsVolume" -}}
{{- if ne .root.Values.tls.mode "plaintext" }}
- name: tls
  secret:
    secretName: {{ include "airlock.tlsSecretName" . }}
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- end }}

{{/*
The organisation's CA bundle (caBundle), trusted by Node in addition to the system roots: PostgreSQL with
sslmode=verify-full, an https OIDC JWKS URL, TLS sinks. Env, mount and volume, each empty when no bundle is set.
*/}}
{{- define "airlock.caBundleEnv" -}}
{{- if or .Values.caBundle.configMap .Values.caBundle.secret }}
- name: NODE_EXTRA_CA_CERTS
  value: /etc/airlock/ca/ca.crt
{{- end }}
{{- end }}

{{- define "airlock.caBundleMount" -}}
{{- if or .Values.caBundle.configMap .Values.caBundle.secret }}
- name: ca-bundle
  mountPath: /etc/airlock/ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "airlock.caBundleVolume" -}}
{{- $ca := .Values.caBundle }}
{{- if $ca.secret }}
- name: ca-bundle
  secret:
    secretName: {{ $ca.secret }}
    items:
      - key: {{ $ca.key }}
        path: ca.crt
{{- else if $ca.configMap }}
- name: ca-bundle
  configMap:
    name: {{ $ca.configMap }}
    items:
      - key: {{ $ca.key }}
        path: ca.crt
{{- end }}
{{- end }}

{{/* The Secret with the key that seals console sessions: the operator's, or the one the chart generates. */}}
{{- define "airlock.consoleSessionSecretName" -}}
{{- .Values.gateway.console.sessionKeySecret.name | default (printf "%s-console-session" (include "airlock.componentName" (dict "root" . "component" "gateway"))) }}
{{- end }}
