{{/*
Checks that JSON schema cannot express: a clear message at install time instead of a broken release.
*/}}
{{- define "airlock.validate" -}}
{{- $requestTimeout := int (get .Values.gateway.env "AIRLOCK_REQUEST_TIMEOUT_SECONDS" | default 600) }}
{{- $gatewayNeeds := add .Values.gateway.preStopSleepSeconds $requestTimeout }}
{{- if lt (int .Values.gateway.terminationGracePeriodSeconds) (int $gatewayNeeds) }}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%d) must cover preStopSleepSeconds + the request timeout (%d s), or rollouts cut answers" (int .Values.gateway.terminationGracePeriodSeconds) (int $gatewayNeeds)) }}
{{- end }}
{{- $names := dict }}
{{- range $model := include "airlock.models" $ | fromJsonArray }}
{{- $name := include "airlock.workerName" (dict "root" $ "model" $model) }}
{{- if hasKey $names $name }}
{{- fail (printf "models: %q and %q give the same object name %q; shorten or rename one" (get $names $name) $model.id $name) }}
{{- end }}
{{- $_ := set $names $name $model.id }}
{{- $pool := dict }}
{{- include "airlock.mergePool" (dict "root" $ "model" $model "out" $pool) }}
{{- $volume := $pool.modelVolume }}
{{- $sources := 0 }}
{{- range $kind := list "persistentVolumeClaim" "hostPath" "image" }}
{{- if get $volume $kind }}{{ $sources = add1 $sources }}{{ end }}
{{- end }}
{{- if ne (int $sources) 1 }}
{{- fail (printf "models.%s.modelVolume: set exactly one of persistentVolumeClaim, hostPath or image" $model.id) }}
{{- end }}
{{- if lt (int $pool.drainTimeoutSeconds) $requestTimeout }}
{{- fail (printf "models.%s.drainTimeoutSeconds (%d) must be at least the gateway's request timeout (%d s), or rollouts cut answers" $model.id (int $pool.drainTimeoutSeconds) $requestTimeout) }}
{{- end }}
{{- if and (eq (int $pool.updateStrategy.maxSurge) 0) (eq (int $pool.updateStrategy.maxUnavailable) 0) }}
{{- fail (printf "models.%s.updateStrategy: maxSurge and maxUnavailable cannot both be 0" $model.id) }}
{{- end }}
{{- if and $pool.autoscaling.hpa.enabled $pool.autoscaling.keda.enabled }}
{{- fail (printf "models.%s.autoscaling: enable hpa or keda, not both (KEDA creates its own HPA)" $model.id) }}
{{- end }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.parentRefs: name the Gateway the route attaches to" }}
{{- end }}
{{- $database := .Values.authAudit.database }}
{{- $cnpg := .Values.postgresql.cloudNativePG }}
{{- if $cnpg.enabled }}
{{- if .Values.postgresql.enabled }}
{{- fail "postgresql: enable the evaluation StatefulSet (enabled) or a CloudNativePG Cluster (cloudNativePG.enabled), not both" }}
{{- end }}
{{- if not $database.runtimeRole }}
{{- fail "postgresql.cloudNativePG: set authAudit.database.runtimeRole, the managed role auth-audit runs as (the owner only migrates)" }}
{{- end }}
{{- if or (eq $database.runtimeRole $cnpg.owner) (eq $database.retentionRole $cnpg.owner) }}
{{- fail "postgresql.cloudNativePG: the runtime and retention roles must not be the owner" }}
{{- end }}
{{- if $database.migrationJob.enabled }}
{{- fail "authAudit.database.migrationJob: with postgresql.cloudNativePG the owner migrates in auth-audit's init container (a pre-install hook would run before the Cluster exists); turn the Job off" }}
{{- end }}
{{- if ge (int $cnpg.synchronous.number) (int $cnpg.instances) }}
{{- fail (printf "postgresql.cloudNativePG.synchronous.number (%d) must be below instances (%d): the primary is not its own replica" (int $cnpg.synchronous.number) (int $cnpg.instances)) }}
{{- end }}
{{- end }}
{{- if $database.migrationJob.enabled }}
{{- if .Values.postgresql.enabled }}
{{- fail "authAudit.database.migrationJob: the evaluation PostgreSQL and its generated Secret do not exist yet when a pre-install hook runs; use your own PostgreSQL and Secret (docs/air-gapped-install.md, step 5)" }}
{{- end }}
{{- if not .Values.authAudit.secrets.databaseMigrateUrlKey }}
{{- fail "authAudit.database.migrationJob: set authAudit.secrets.databaseMigrateUrlKey (the owner's URL in the Secret)" }}
{{- end }}
{{- if not $database.runtimeRole }}
{{- fail "authAudit.database.migrationJob: set authAudit.database.runtimeRole, the role auth-audit connects as, so the migration can grant it" }}
{{- end }}
{{- end }}
{{- if and $database.retentionJob.enabled (or (not $database.retentionRole) (eq (int $database.retentionDays) 0)) }}
{{- fail "authAudit.database.retentionJob: set authAudit.database.retentionRole and retentionDays > 0" }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (not $cnpg.enabled) (eq .Values.authAudit.secrets.name "") (not .Values.authAudit.secrets.databaseUrlKey) }}
{{- fail "authAudit.secrets.databaseUrlKey: auth-audit needs a PostgreSQL URL (or postgresql.enabled for evaluation)" }}
{{- end }}
{{- end }}
