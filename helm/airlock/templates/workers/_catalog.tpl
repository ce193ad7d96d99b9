{{/*
One model's catalog, in the worker's AIRLOCK_MODELS_FILE format. The GGUF path is inside the model volume,
mounted at /models. Pass (dict "model" $model).
*/}}
{{- define "airlock.catalogEntry" -}}
{{- $m := .model }}
{{- $entry := dict "id" $m.id "path" (printf "/models/%s" ($m.file | trimPrefix "/")) }}
{{- with $m.sha256 }}{{ $_ := set $entry "sha256" (lower .) }}{{ end }}
{{- /* The later files of a split GGUF, each checked like the first: only those with a recorded sha256. */}}
{{- $parts := list }}
{{- range $m.parts }}
{{- if .sha256 }}{{ $parts = append $parts (dict "path" (printf "/models/%s" (.file | trimPrefix "/")) "sha256" (lower .sha256)) }}{{ end }}
{{- end }}
{{- with $parts }}{{ $_ := set $entry "parts" . }}{{ end }}
{{- /* A required signature: the bundle beside the GGUF in the model volume, the trusted key from its own mount. */}}
{{- with $m.signature }}
{{- $bundle := .bundle | default (printf "%s.sig" $m.file) | trimPrefix "/" }}
{{- $key := printf "%s/%s" (include "airlock.modelSignerDir" .) .publicKey.key }}
{{- $_ := set $entry "signature" (dict "bundle" (printf "/models/%s" $bundle) "publicKey" $key) }}
{{- end }}
{{- range $key := list "contextSize" "parallel" "queueSize" "gpuLayers" "gpu" "threads" "embeddings" "chatTemplate" }}
{{- if hasKey $m $key }}{{ $_ := set $entry $key (get $m $key) }}{{ end }}
{{- end }}
{{- toYaml (dict "models" (list $entry)) }}
{{- end }}

{{/* Where a pool's trusted model-signing key is mounted. */}}
{{- define "airlock.modelSignerDir" -}}
/etc/airlock/model-signer
{{- end }}
