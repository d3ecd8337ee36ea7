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
{{- if not .Values.webUI }}{{ $_ := set $config "web_ui" false }}{{ end -}}
{{- with .Values.rollbackImages.namespaces }}{{ $_ := set $config "rollback_images" . }}{{ end -}}
{{- $node := .Values.node -}}
{{- if $node.hostPath.credentialProviderConfig }}{{ $_ := set $config "image_credential_provider_config" "/node/credential-provider-config" }}
{{- else if $node.credentialProviderConfig }}{{ $_ := set $config "image_credential_provider_config" "/node/config/credential-providers.yaml" }}{{ end -}}
{{- if $node.hostPath.credentialProviderBinDir }}{{ $_ := set $config "image_credential_provider_bin_dir" "/node/credential-provider-bin" }}
{{- else if $node.credentialProviderBinDir }}{{ $_ := set $config "image_credential_provider_bin_dir" $node.credentialProviderBinDir }}{{ end -}}
{{- if $node.hostPath.kubeletDockerConfig }}{{ $_ := set $config "kubelet_root_dir" "/node/kubelet" }}{{ end -}}
{{- if or $node.hostPath.containerdHostsDir $node.containerdHosts }}{{ $_ := set $config "containerd_hosts_dir" "/node/certs.d" }}{{ end -}}
{{- if $node.hostPath.containersDir }}{{ $_ := set $config "registries_conf" "/node/containers/registries.conf" }}
{{- else if $node.registriesConf }}{{ $_ := set $config "registries_conf" "/node/config/registries.conf" }}{{ end -}}
{{- if $node.serviceAccountTokens }}{{ $_ := set $config "service_account_tokens" true }}{{ end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Volumes of the node's view: hostPath (read-only, the named files only) or the chart's ConfigMaps. */}}
{{- define "kie.nodeVolumes" -}}
{{- $node := .Values.node -}}
{{- with $node.hostPath.credentialProviderConfig }}
- name: node-credential-provider-config
  hostPath: {path: {{ . | quote }}, type: File}
{{- end }}
{{- with $node.hostPath.credentialProviderBinDir }}
- name: node-credential-provider-bin
  hostPath: {path: {{ . | quote }}, type: Directory}
{{- end }}
{{- with $node.hostPath.kubeletDockerConfig }}
- name: node-kubelet-docker-config
  hostPath: {path: {{ . | quote }}, type: File}
{{- end }}
{{- with $node.hostPath.containerdHostsDir }}
- name: node-certs-d
  hostPath: {path: {{ . | quote }}, type: Directory}
{{- end }}
{{- with $node.hostPath.containersDir }}
- name: node-containers
  hostPath: {path: {{ . | quote }}, type: Directory}
{{- end }}
{{- if or (and $node.credentialProviderConfig (not $node.hostPath.credentialProviderConfig)) (and $node.registriesConf (not $node.hostPath.containersDir)) }}
- name: node-config
  configMap:
    name: {{ include "kie.fullname" . }}-node
{{- end }}
{{- if and $node.containerdHosts (not $node.hostPath.containerdHostsDir) }}
- name: node-certs-d
  configMap:
    name: {{ include "kie.fullname" . }}-certs-d
    items:
      {{- range $host, $_ := $node.containerdHosts }}
      - key: {{ $host | replace ":" "_" }}.toml
        path: {{ $host }}/hosts.toml
      {{- end }}
{{- end }}
{{- end -}}

{{- define "kie.nodeMounts" -}}
{{- $node := .Values.node -}}
{{- if $node.hostPath.credentialProviderConfig }}
- name: node-credential-provider-config
  mountPath: /node/credential-provider-config
  readOnly: true
{{- end }}
{{- if $node.hostPath.credentialProviderBinDir }}
- name: node-credential-provider-bin
  mountPath: /node/credential-provider-bin
  readOnly: true
{{- end }}
{{- if $node.hostPath.kubeletDockerConfig }}
- name: node-kubelet-docker-config
  mountPath: /node/kubelet/config.json
  readOnly: true
{{- end }}
{{- if or $node.hostPath.containerdHostsDir $node.containerdHosts }}
- name: node-certs-d
  mountPath: /node/certs.d
  readOnly: true
{{- end }}
{{- if $node.hostPath.containersDir }}
- name: node-containers
  mountPath: /node/containers
  readOnly: true
{{- end }}
{{- if or (and $node.credentialProviderConfig (not $node.hostPath.credentialProviderConfig)) (and $node.registriesConf (not $node.hostPath.containersDir)) }}
- name: node-config
  mountPath: /node/config
  readOnly: true
{{- end }}
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
