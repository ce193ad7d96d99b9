{{/*
postgresql.cloudNativePG: names and wiring of the CloudNativePG Cluster. The operator creates <cluster>-app (the
owner's credentials: username, password, uri, …) and <cluster>-ca (the CA that signs the server certificate of the
<cluster>-rw Service); the chart creates the runtime and retention roles' Secrets unless given.
*/}}
{{- define "airlock.cnpg.enabled" -}}
{{- if .Values.postgresql.cloudNativePG.enabled }}true{{ end }}
{{- end }}

{{- define "airlock.cnpg.name" -}}
{{- include "airlock.componentName" (dict "root" . "component" "postgresql") }}
{{- end }}

{{/* The basic-auth Secret of a managed role. Pass (dict "root" $ "role" "runtime"|"retention"). */}}
{{- define "airlock.cnpg.roleSecret" -}}
{{- get .root.Values.postgresql.cloudNativePG.roleSecrets .role | default (printf "%s-%s" (include "airlock.cnpg.name" .root) .role) }}
{{- end }}

{{/*
AIRLOCK_DATABASE_URL for one role, and PGPASSWORD from that role's Secret: node-postgres takes the password from
PGPASSWORD when the URL carries none, so a generated password never has to be escaped into a URL. TLS is
verify-full against the cluster's own CA. Pass (dict "root" $ "user" "<role>" "secret" "<Secret>").
*/}}
{{- define "airlock.cnpg.databaseEnv" -}}
{{- $c := .root.Values.postgresql.cloudNativePG }}
- name: AIRLOCK_DATABASE_URL
  value: {{ printf "postgres://%s@%s-rw.%s.svc:5432/%s?sslmode=verify-full&sslrootcert=/etc/airlock/postgres-ca/ca.crt" .user (include "airlock.cnpg.name" .root) .root.Release.Namespace $c.database | quote }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: password
{{- end }}

{{/* The env of a pod's database connection as a role: "owner", "runtime" or "retention". Pass (dict "root" $ "as" …). */}}
{{- define "airlock.cnpg.databaseEnvAs" -}}
{{- $root := .root }}
{{- if eq .as "owner" }}
{{- include "airlock.cnpg.databaseEnv" (dict "root" $root "user" $root.Values.postgresql.cloudNativePG.owner "secret" (printf "%s-app" (include "airlock.cnpg.name" $root))) }}
{{- else if eq .as "runtime" }}
{{- include "airlock.cnpg.databaseEnv" (dict "root" $root "user" $root.Values.authAudit.database.runtimeRole "secret" (include "airlock.cnpg.roleSecret" (dict "root" $root "role" "runtime"))) }}
{{- else }}
{{- include "airlock.cnpg.databaseEnv" (dict "root" $root "user" $root.Values.authAudit.database.retentionRole "secret" (include "airlock.cnpg.roleSecret" (dict "root" $root "role" "retention"))) }}
{{- end }}
{{- end }}

{{- define "airlock.cnpg.caMount" -}}
- name: postgres-ca
  mountPath: /etc/airlock/postgres-ca
  readOnly: true
{{- end }}

{{/* Only the certificate of <cluster>-ca (which also holds the CA's key) reaches the pod. */}}
{{- define "airlock.cnpg.caVolume" -}}
- name: postgres-ca
  secret:
    secretName: {{ include "airlock.cnpg.name" . }}-ca
    defaultMode: 0440
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
