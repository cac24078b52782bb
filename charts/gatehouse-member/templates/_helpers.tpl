{{/* Name of the chart, or nameOverride. */}}
{{- define "gatehouse-member.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object's name: the release name, plus the chart name
unless the release name already contains it. */}}
{{- define "gatehouse-member.fullname" -}}
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

{{- define "gatehouse-member.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "gatehouse-member.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- end }}

{{/* The ServiceAccount whose tokens a Gateway's proxies present to the hub:
operator/hub.ProxyServiceAccount. */}}
{{- define "gatehouse-member.proxyServiceAccount" -}}
{{- printf "gatehouse-proxy-%s" . | trunc 253 | trimSuffix "-" | trimSuffix "." }}
{{- end }}

{{/* Selector of one Gateway's proxies; "." is (dict "root" $ "gateway" $gw). */}}
{{- define "gatehouse-member.proxySelectorLabels" -}}
app.kubernetes.io/name: gatehouse-proxy
app.kubernetes.io/instance: {{ .root.Release.Name }}
gatehouse.dev/gateway: {{ .gateway.name }}
{{- end }}

{{/* The fields of a LoadBalancer Service, from a service values block. */}}
{{- define "gatehouse-member.loadBalancer" -}}
{{- if eq .type "LoadBalancer" }}
{{- with .loadBalancerIP }}
loadBalancerIP: {{ . }}
{{- end }}
{{- with .loadBalancerSourceRanges }}
loadBalancerSourceRanges:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- if has .type (list "LoadBalancer" "NodePort") }}
externalTrafficPolicy: {{ .externalTrafficPolicy }}
{{- end }}
{{- end }}

{{/* An image reference from an image values block (.image, at .key in the
values): registry (global.imageRegistry in its place), repository, tag
(default: the chart's appVersion) and the digest when set. A repository
that begins with a registry host is refused: global.imageRegistry could
not replace it. */}}
{{- define "gatehouse-member.image" -}}
{{- $first := regexFind "^[^/]+/" .image.repository | trimSuffix "/" }}
{{- if or (contains "." $first) (contains ":" $first) (eq $first "localhost") }}
{{- fail (printf "%s.repository %q begins with the registry %q: set %s.registry (or global.imageRegistry) to %q and %s.repository to %q" .key .image.repository $first .key $first .key (trimPrefix (printf "%s/" $first) .image.repository)) }}
{{- end }}
{{- $registry := (.root.Values.global | default dict).imageRegistry | default .image.registry }}
{{- $ref := .image.repository }}
{{- with $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" .) $ref }}{{ end }}
{{- $ref = printf "%s:%s" $ref (toString (default .root.Chart.AppVersion .image.tag)) }}
{{- with .image.digest }}{{ $ref = printf "%s@%s" $ref . }}{{ end }}
{{- $ref }}
{{- end }}
