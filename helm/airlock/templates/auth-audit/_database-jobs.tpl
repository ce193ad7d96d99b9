{{/*
The pod of auth-audit's one-shot database commands: "migrate" (the owner's URL, a hook Job) and "prune" (the
retention role's URL, a CronJob). Same image and security context as the service; no ports, no token.
Pass (dict "root" $ "command" "migrate" "urlKey" "<key of the Secret>").
*/}}
{{- define "airlock.authAuditJobPod" -}}
{{- $root := .root }}
{{- $values := $root.Values.authAudit }}
metadata:
  labels:
    {{- include "airlock.podLabels" (dict "root" $root "component" (printf "auth-audit-%s" .command)) | nindent 4 }}
spec:
  restartPolicy: Never
  serviceAccountName: default
  automountServiceAccountToken: false
  {{- with $root.Values.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . | quote }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- include "airlock.podSecurityContext" $root | nindent 4 }}
  {{- with $values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .command }}
      image: {{ include "airlock.image" (dict "root" $root "image" $values.image) }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [{{ .command | quote }}]
      securityContext:
        {{- include "airlock.containerSecurityContext" $root | nindent 8 }}
      env:
        - name: AIRLOCK_LOG_LEVEL
          value: {{ $values.logLevel | quote }}
        - name: AIRLOCK_DATA_DIR
          value: /tmp/airlock
        {{- if include "airlock.cnpg.enabled" $root }}
        {{- include "airlock.cnpg.databaseEnvAs" (dict "root" $root "as" (ternary "owner" "retention" (eq .command "migrate"))) | nindent 8 }}
        {{- else }}
        - name: AIRLOCK_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "airlock.authAuditSecretName" $root }}
              key: {{ .urlKey }}
        {{- end }}
        {{- include "airlock.authAuditDatabaseEnv" $root | trim | nindent 8 }}
        {{- with include "airlock.caBundleEnv" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
      resources:
        requests:
          cpu: 100m
          memory: 128Mi
        limits:
          memory: 512Mi
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- if include "airlock.cnpg.enabled" $root }}
        {{- include "airlock.cnpg.caMount" $root | nindent 8 }}
        {{- end }}
        {{- with include "airlock.caBundleMount" $root | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- if $values.database.clientCertificateSecret }}
        - name: postgres-client
          mountPath: /etc/airlock/postgres-client
          readOnly: true
        {{- end }}
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if include "airlock.cnpg.enabled" $root }}
    {{- include "airlock.cnpg.caVolume" $root | nindent 4 }}
    {{- end }}
    {{- with include "airlock.caBundleVolume" $root | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $values.database.clientCertificateSecret }}
    - name: postgres-client
      secret:
        secretName: {{ . }}
        defaultMode: 0440
    {{- end }}
{{- end }}

{{/* Settings the service, the migration and the retention pass must agree on. */}}
{{- define "airlock.authAuditDatabaseEnv" -}}
{{- $database := .Values.authAudit.database }}
- name: AIRLOCK_AUDIT_RETENTION_DAYS
  value: {{ $database.retentionDays | quote }}
{{- with $database.runtimeRole }}
- name: AIRLOCK_DATABASE_RUNTIME_ROLE
  value: {{ . | quote }}
{{- end }}
{{- with $database.retentionRole }}
- name: AIRLOCK_DATABASE_RETENTION_ROLE
  value: {{ . | quote }}
{{- end }}
{{- end }}
