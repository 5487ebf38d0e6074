{{/* The chart name. */}}
{{- define "vantage.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name: the release name, with the chart name unless it has it. */}}
{{- define "vantage.fullname" -}}
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

{{- define "vantage.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vantage.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vantage.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "vantage.labels" -}}
helm.sh/chart: {{ include "vantage.chart" . }}
{{ include "vantage.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "vantage.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vantage.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount's user name, as the API server sees it. */}}
{{- define "vantage.serviceAccountUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "vantage.serviceAccountName" .) }}
{{- end }}

{{/* --shard-group: the Lease group. */}}
{{- define "vantage.leaseGroup" -}}
{{- default (include "vantage.fullname" .) .Values.leases.group }}
{{- end }}

{{/* Pods: the value or the mode's default. */}}
{{- define "vantage.replicas" -}}
{{- if not (kindIs "invalid" .Values.replicas) }}
{{- .Values.replicas }}
{{- else if eq .Values.mode "sharded" }}
{{- 3 }}
{{- else }}
{{- 1 }}
{{- end }}
{{- end }}

{{/* "true" when the pods renew Leases (sharded by Leases, or restore). */}}
{{- define "vantage.usesLeases" -}}
{{- if or (eq .Values.mode "restore") (and (eq .Values.mode "sharded") (eq .Values.sharding.strategy "leases")) }}true{{ end }}
{{- end }}

{{/* "true" for static sharding (a StatefulSet). */}}
{{- define "vantage.staticShards" -}}
{{- if and (eq .Values.mode "sharded") (eq .Values.sharding.strategy "static") }}true{{ end }}
{{- end }}

{{/* "true" when the daemon talks to the API server. */}}
{{- define "vantage.usesApi" -}}
{{- if or .Values.kubernetes.watch (include "vantage.usesLeases" .) }}true{{ end }}
{{- end }}

{{/* The ConfigMap holding vantage.toml, or "" when there is none. */}}
{{- define "vantage.configMapName" -}}
{{- if .Values.config.existingConfigMap }}
{{- .Values.config.existingConfigMap }}
{{- else if .Values.config.create }}
{{- printf "%s-config" (include "vantage.fullname" .) }}
{{- end }}
{{- end }}

{{/* The dockerconfigjson Secret, or "" when there is none. */}}
{{- define "vantage.registrySecretName" -}}
{{- if .Values.registryCredentials.existingSecret }}
{{- .Values.registryCredentials.existingSecret }}
{{- else if .Values.registryCredentials.dockerConfigJson }}
{{- printf "%s-registry" (include "vantage.fullname" .) }}
{{- end }}
{{- end }}

{{- define "vantage.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Rules to watch Check and RestoreTest resources and to read what they name. */}}
{{- define "vantage.kubernetesRules" -}}
- apiGroups: ["vantage.dev"]
  resources: ["checks", "restoretests"]
  verbs: ["get", "list", "watch"]
# The status the daemon writes (merge patches).
- apiGroups: ["vantage.dev"]
  resources: ["checks/status", "restoretests/status"]
  verbs: ["get", "patch"]
# secretKeyRef of a Check and component bytes from a ConfigMap's binaryData,
# read by name (get), never listed.
- apiGroups: [""]
  resources: ["secrets", "configmaps"]
  verbs: ["get"]
{{- end }}
