{{/*
Checks that JSON schema cannot express: a clear message at install time instead of a broken release.
*/}}
{{- define "airlock.validate" -}}
{{- $names := dict }}
{{- $ids := dict }}
{{- range $model := .Values.models }}
{{- if hasKey $ids $model.id }}
{{- fail (printf "models: the id %q appears twice" $model.id) }}
{{- end }}
{{- $_ := set $ids $model.id true }}
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
{{- fail (printf "models[%s].modelVolume: set exactly one of persistentVolumeClaim, hostPath or image" $model.id) }}
{{- end }}
{{- if and $pool.autoscaling.hpa.enabled $pool.autoscaling.keda.enabled }}
{{- fail (printf "models[%s].autoscaling: enable hpa or keda, not both (KEDA creates its own HPA)" $model.id) }}
{{- end }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (eq .Values.authAudit.secrets.name "") (not .Values.authAudit.secrets.databaseUrlKey) }}
{{- fail "authAudit.secrets.databaseUrlKey: auth-audit needs a PostgreSQL URL (or postgresql.enabled for evaluation)" }}
{{- end }}
{{- end }}
