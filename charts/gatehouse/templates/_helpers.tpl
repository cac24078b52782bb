{{/* Name of the chart, or nameOverride. */}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object's name: the release name, plus the chart name
unless the release name already contains it. */}}
{{- define "gatehouse.fullname" -}}
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

{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end }}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* An image reference from an image values block (.image, at .key in the
values): registry (global.imageRegistry in its place), repository, tag
(default: the chart's appVersion) and the digest when set. A repository
that begins with a registry host is refused: global.imageRegistry could
not replace it. */}}
{{- define "gatehouse.image" -}}
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

{{/* Leader election as asked for; more than one replica without it would
run several active hubs side by side, which is refused. */}}
{{- define "gatehouse.leaderElect" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicas) 1) }}
{{- fail (printf "replicas: %d with leaderElection.enabled=false would run %d active hubs side by side, each pushing to the same proxies and writing the same statuses: set leaderElection.enabled=true, or replicas: 1" (int .Values.replicas) (int .Values.replicas)) }}
{{- end }}
{{- .Values.leaderElection.enabled }}
{{- end }}

{{/* The Secret cert-manager writes the webhook's serving certificate into. */}}
{{- define "gatehouse.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "gatehouse.fullname" .) }}
{{- end }}

{{/* Host names and IPs of the webhook's serving certificate, as a JSON list:
the Service's names, webhook.hosts and the host of webhook.url. */}}
{{- define "gatehouse.webhookHosts" -}}
{{- $svc := printf "%s-webhook" (include "gatehouse.fullname" .) }}
{{- $hosts := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) }}
{{- range .Values.webhook.hosts }}
{{- $hosts = append $hosts . }}
{{- end }}
{{- with .Values.webhook.url }}
{{- $hosts = append $hosts (urlParse .).hostname }}
{{- end }}
{{- $hosts | uniq | toJson }}
{{- end }}

{{/*
gatehouse.crds renders every YAML document of the chart files matching
.glob, adding helm.sh/resource-policy: keep so that `helm uninstall` never
deletes a CRD and with it every object of its kind. Rendering CRDs as
templates (not from Helm's install-only crds/ directory) is what makes
`helm upgrade` upgrade them.
*/}}
{{- define "gatehouse.crds" -}}
{{- $root := .root }}
{{- range $path, $_ := $root.Files.Glob .glob }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get $path) -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "%s: %s" $path $obj.Error) }}
{{- end }}
{{- if $obj }}
{{- $meta := $obj.metadata }}
{{- $annotations := $meta.annotations | default dict }}
{{- $_ := set $annotations "helm.sh/resource-policy" "keep" }}
{{- $_ := set $meta "annotations" $annotations }}
{{- $labels := $meta.labels | default dict }}
{{- $_ := set $labels "app.kubernetes.io/part-of" "gatehouse" }}
{{- $_ := set $labels "app.kubernetes.io/managed-by" $root.Release.Service }}
{{- $_ := set $meta "labels" $labels }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The fields of a LoadBalancer Service, from a service values block. */}}
{{- define "gatehouse.loadBalancer" -}}
{{- if eq .type "LoadBalancer" }}
{{- with .loadBalancerIP }}
loadBalancerIP: {{ . }}
{{- end }}
{{- with .loadBalancerSourceRanges }}
loadBalancerSourceRanges:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* Host names and IPs of the push server's certificate, comma-separated:
push.hosts, or the push Service's names and the host of push.externalAddress. */}}
{{- define "gatehouse.pushHosts" -}}
{{- $hosts := .Values.push.hosts }}
{{- if not $hosts }}
{{- $svc := printf "%s-push" (include "gatehouse.fullname" .) }}
{{- $hosts = list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) }}
{{- with .Values.push.externalAddress }}
{{- $hosts = append $hosts (regexReplaceAll ":[0-9]+$" . "" | trimPrefix "[" | trimSuffix "]") }}
{{- end }}
{{- end }}
{{- $hosts | uniq | join "," }}
{{- end }}
