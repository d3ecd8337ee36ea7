{{- define "kie.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kie.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "kie.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "kie.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kie.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kie.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kie.labels" -}}
{{ include "kie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kie.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The exporter's config file: the user's settings, plus what the chart itself wires. */}}
{{- define "kie.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $_ := set $config "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) -}}
{{- $expected := concat (default (list) $config.expected) (list) -}}
{{- range $name, $_ := .Values.expectedLists }}
{{- $expected = append $expected (printf "%s=/etc/kube-image-exporter/expected/%s" $name $name) -}}
{{- end }}
{{- if $expected }}{{ $_ := set $config "expected" $expected }}{{ end -}}
{{- with .Values.rollbackImages.namespaces }}{{ $_ := set $config "rollback_images" . }}{{ end -}}
{{- toYaml $config -}}
{{- end -}}


{{/* Environment of the fleet settings: the shared cache (its password from a Secret, never in the ConfigMap)
and, for a sharded StatefulSet, the shard from the pod's own name. */}}
{{- define "kie.fleetEnv" -}}
{{- $env := list -}}
{{- if .Values.cache.url }}
{{- $env = append $env (dict "name" "KUBE_IMAGE_EXPORTER_CACHE_URL" "value" .Values.cache.url) -}}
{{- end }}
{{- if .Values.cache.existingSecret }}
{{- $ref := dict "name" .Values.cache.existingSecret "key" .Values.cache.existingSecretKey -}}
{{- $env = append $env (dict "name" "KUBE_IMAGE_EXPORTER_CACHE_PASSWORD" "valueFrom" (dict "secretKeyRef" $ref)) -}}
{{- end }}
{{- if gt (int .Values.sharding.totalShards) 1 }}
{{- $env = append $env (dict "name" "KUBE_IMAGE_EXPORTER_SHARD" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name"))) -}}
{{- $env = append $env (dict "name" "KUBE_IMAGE_EXPORTER_TOTAL_SHARDS" "value" (printf "%d" (int .Values.sharding.totalShards))) -}}
{{- end }}
{{- toYaml $env -}}
{{- end -}}
