{{- /*
The Gateway API CRDs, shared by the gatehouse and gatehouse-member charts:
this file is the same in both (test/charts checks it).

A cluster may already have Gateway API CRDs: from its provider, another
gateway, kubectl, or the other Gatehouse chart. Helm refuses to take over
objects another release or tool made ("invalid ownership metadata"), and
taking them over (--take-ownership) would replace them with this chart's
standard-channel copies: an experimental-channel CRD would lose the fields
in use. So before rendering anything the chart looks at what is there
(lookup; `helm template` sees nothing) and decides, by crds.gatewayAPI:

  auto     CRDs installed by this release, or none: install and upgrade
           them. CRDs someone else installed: leave them to their owner and
           say so in NOTES; fail if they are older than the chart's bundle
           or lack a kind the hub reads. CRDs of this release that are newer
           than the bundle (an upgrade to an older chart): keep them.
  install  install and upgrade them, adopting others' with
           `helm install/upgrade --take-ownership`; refuse to replace
           experimental-channel or newer CRDs.
  skip     leave them alone (fail only if they are older than the bundle).

true and false, the values of earlier releases, mean install and skip.
*/ -}}

{{- define "gatewayAPI.mode" -}}
{{- $v := .Values.crds.gatewayAPI -}}
{{- if kindIs "bool" $v }}{{ ternary "install" "skip" $v }}{{ else }}{{ $v }}{{ end -}}
{{- end }}

{{- define "gatewayAPI.bundle" -}}
{{- index .Chart.Annotations "gateway-api.sigs.k8s.io/bundle-version" -}}
{{- end }}

{{- /* The YAML documents of the chart's Gateway API files, as a JSON list. */ -}}
{{- define "gatewayAPI.documents" -}}
{{- $docs := list }}
{{- range $path, $_ := .Files.Glob "files/gateway-api/*.yaml" }}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($.Files.Get $path) -1 }}
{{- $obj := fromYaml $doc }}
{{- if hasKey $obj "Error" }}
{{- fail (printf "%s: %s" $path $obj.Error) }}
{{- end }}
{{- if $obj }}
{{- $docs = append $docs $obj }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $docs }}
{{- end }}

{{- /* gatewayAPI.older: whether version a is older than version b
("vMAJOR.MINOR.PATCH"); a version that is not one is not older. */ -}}
{{- define "gatewayAPI.older" -}}
{{- $a := trimPrefix "v" (index . 0) }}
{{- $b := trimPrefix "v" (index . 1) }}
{{- if and (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+$" $a) (regexMatch "^[0-9]+\\.[0-9]+\\.[0-9]+$" $b) (semverCompare (printf "< %s" $b) $a) }}true{{ end }}
{{- end }}

{{- /*
gatewayAPI.plan looks at the cluster and returns, as JSON:
  render   render the bundle's CRDs
  owned    this release owns the cluster's Gateway API CRDs (rendered, or
           kept because they are newer): the downgrade guard goes with them
  policy   render upstream's safe-upgrades ValidatingAdmissionPolicy
  notes    lines for NOTES.txt
It fails, naming the value to change, where going on would do harm.
*/ -}}
{{- define "gatewayAPI.plan" -}}
{{- $mode := include "gatewayAPI.mode" . }}
{{- $bundle := include "gatewayAPI.bundle" . }}
{{- $cluster := not (empty (lookup "v1" "Namespace" "" "kube-system")) }}
{{- $names := list }}
{{- $foreign := list }}{{ $owned := list }}{{ $missing := list }}
{{- $experimental := list }}{{ $older := list }}{{ $newer := list }}
{{- $versions := dict }}
{{- range $obj := include "gatewayAPI.documents" . | fromJsonArray }}
{{- if eq $obj.kind "CustomResourceDefinition" }}
{{- $name := $obj.metadata.name }}
{{- $names = append $names $name }}
{{- $live := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" $name }}
{{- if not $live }}
{{- $missing = append $missing $name }}
{{- else }}
{{- $a := $live.metadata.annotations | default dict }}
{{- $version := index $a "gateway.networking.k8s.io/bundle-version" | default "unknown version" }}
{{- $channel := index $a "gateway.networking.k8s.io/channel" | default "unknown" }}
{{- $_ := set $versions (printf "%s, %s channel" $version $channel) true }}
{{- if and (eq (index $a "meta.helm.sh/release-name" | default "") $.Release.Name) (eq (index $a "meta.helm.sh/release-namespace" | default "") $.Release.Namespace) }}
{{- $owned = append $owned $name }}
{{- else }}
{{- $foreign = append $foreign $name }}
{{- end }}
{{- if eq $channel "experimental" }}{{ $experimental = append $experimental $name }}{{ end }}
{{- if include "gatewayAPI.older" (list $version $bundle) }}{{ $older = append $older $name }}{{ end }}
{{- if include "gatewayAPI.older" (list $bundle $version) }}{{ $newer = append $newer $name }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- $have := keys $versions | sortAlpha | join "; " }}
{{- $plan := dict "render" false "owned" false "policy" false "notes" list }}
{{- $fix := printf "upgrade them to Gateway API %s or later (standard or experimental channel) the way they were installed, or set crds.gatewayAPI=install and run helm with --take-ownership to let this release replace them with the standard channel" $bundle }}
{{- if not $cluster }}
{{- /* helm template, or a client-side dry run: nothing to look at. */}}
{{- $_ := set $plan "render" (ne $mode "skip") }}
{{- $_ := set $plan "owned" (ne $mode "skip") }}
{{- $_ := set $plan "policy" (ne $mode "skip") }}
{{- else if eq $mode "skip" }}
{{- if $older }}
{{- fail (printf "crds.gatewayAPI=skip, but the cluster's Gateway API CRDs (%s) are older than %s, which Gatehouse needs: %s" $have $bundle $fix) }}
{{- end }}
{{- if $missing }}
{{- $_ := set $plan "notes" (list (printf "crds.gatewayAPI=skip: this release installs no Gateway API CRDs, and the cluster lacks %s. Install Gateway API %s or later (standard channel at least)." (join ", " $missing) $bundle)) }}
{{- else }}
{{- $_ := set $plan "notes" (list (printf "crds.gatewayAPI=skip: the Gateway API CRDs are left to their owner (the cluster has %s)." $have)) }}
{{- end }}
{{- else if eq $mode "install" }}
{{- if $experimental }}
{{- fail (printf "crds.gatewayAPI=install would replace experimental-channel Gateway API CRDs (%s; annotation gateway.networking.k8s.io/channel: experimental) with this chart's standard channel, dropping the experimental fields and every value stored in them. This chart never does that: set crds.gatewayAPI=auto (or skip) to keep them; Gatehouse works with experimental CRDs of %s or later." (join ", " $experimental) $bundle) }}
{{- end }}
{{- if $newer }}
{{- fail (printf "crds.gatewayAPI=install would downgrade Gateway API CRDs (%s: %s) to this chart's %s: set crds.gatewayAPI=auto (or skip) to keep them." (join ", " $newer) $have $bundle) }}
{{- end }}
{{- $_ := set $plan "render" true }}
{{- $_ := set $plan "owned" true }}
{{- $_ := set $plan "policy" true }}
{{- if $foreign }}
{{- $_ := set $plan "notes" (list (printf "This release adopted the Gateway API CRDs that were there (%s) and keeps them at %s, standard channel." $have $bundle)) }}
{{- end }}
{{- else if $foreign }}
{{- if $older }}
{{- fail (printf "The cluster has Gateway API CRDs this release did not install (%s), older than %s, which Gatehouse needs: %s" $have $bundle $fix) }}
{{- end }}
{{- if $missing }}
{{- fail (printf "The cluster has Gateway API CRDs this release did not install (%s), but not %s, which the hub reads: install them from Gateway API %s or later the way the others were installed, or set crds.gatewayAPI=install and run helm with --take-ownership to let this release own all of them" $have (join ", " $missing) $bundle) }}
{{- end }}
{{- $_ := set $plan "notes" (list (printf "The cluster already has Gateway API CRDs that this release did not install (%s): they are left to their owner, and neither upgraded nor removed by this chart. To let this release own them instead: crds.gatewayAPI=install with helm --take-ownership (standard channel only)." $have)) }}
{{- else if $experimental }}
{{- fail (printf "The Gateway API CRDs of this release (%s) are of the experimental channel now (annotation gateway.networking.k8s.io/channel); this chart never replaces them with the standard channel: set crds.gatewayAPI=skip to leave them as they are." (join ", " $experimental)) }}
{{- else if $newer }}
{{- $_ := set $plan "owned" true }}
{{- $_ := set $plan "notes" (list (printf "The cluster's Gateway API CRDs (%s) are newer than this chart's %s: kept as they are." $have $bundle)) }}
{{- else }}
{{- $_ := set $plan "render" true }}
{{- $_ := set $plan "owned" true }}
{{- $_ := set $plan "policy" (or (empty (lookup "admissionregistration.k8s.io/v1" "ValidatingAdmissionPolicy" "" "safe-upgrades.gateway.networking.k8s.io")) (not (empty $owned))) }}
{{- end }}
{{- if not .Values.crds.safeUpgradesPolicy }}
{{- $_ := set $plan "policy" false }}
{{- end }}
{{- toJson $plan }}
{{- end }}

{{- /*
gatewayAPI.manifests renders the plan: the CRDs with
helm.sh/resource-policy: keep, so that `helm uninstall` never deletes a
CRD and with it every Gateway and route; the safe-upgrades policy and
the downgrade guard without it, so that uninstall removes them — they
act on the whole cluster and must not outlive the release.
*/ -}}
{{- define "gatewayAPI.manifests" -}}
{{- $plan := include "gatewayAPI.plan" . | fromJson }}
{{- range $obj := include "gatewayAPI.documents" . | fromJsonArray }}
{{- $crd := eq $obj.kind "CustomResourceDefinition" }}
{{- if or (and $crd $plan.render) (and (not $crd) $plan.policy) }}
{{- $meta := $obj.metadata }}
{{- $annotations := $meta.annotations | default dict }}
{{- if $crd }}
{{- $_ := set $annotations "helm.sh/resource-policy" "keep" }}
{{- end }}
{{- $_ := set $meta "annotations" $annotations }}
{{- $labels := $meta.labels | default dict }}
{{- $_ := set $labels "app.kubernetes.io/part-of" "gatehouse" }}
{{- $_ := set $labels "app.kubernetes.io/managed-by" $.Release.Service }}
{{- $_ := set $meta "labels" $labels }}
---
{{ toYaml $obj }}
{{- end }}
{{- end }}
{{- if $plan.owned }}
{{ include "gatewayAPI.guard" . }}
{{- end }}
{{- end }}

{{- /*
gatewayAPI.guard refuses, with a reason, an update of this release's
Gateway API CRDs to an older bundle version or from the experimental to
the standard channel. `helm rollback` re-applies the manifest of the
revision it goes back to, CRDs included: across a Gateway API upgrade that
is a downgrade, which drops the newer fields and their stored values. It
matches only CRDs that carry this release's Helm annotations, so it never
stands in another tool's way.
*/ -}}
{{- define "gatewayAPI.guard" -}}
{{- $name := printf "gatehouse-gateway-api-crds.%s.%s" .Release.Namespace .Release.Name | trunc 253 }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {{ $name }}
  labels:
    app.kubernetes.io/part-of: gatehouse
    app.kubernetes.io/managed-by: {{ .Release.Service }}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["apiextensions.k8s.io"]
        apiVersions: ["v1"]
        operations: ["UPDATE"]
        resources: ["customresourcedefinitions"]
  matchConditions:
    - name: gateway-api-crd-of-this-release
      expression: >-
        object.spec.group == 'gateway.networking.k8s.io' && has(object.metadata.annotations) &&
        'meta.helm.sh/release-name' in object.metadata.annotations &&
        object.metadata.annotations['meta.helm.sh/release-name'] == {{ .Release.Name | squote }} &&
        'meta.helm.sh/release-namespace' in object.metadata.annotations &&
        object.metadata.annotations['meta.helm.sh/release-namespace'] == {{ .Release.Namespace | squote }}
  variables:
    {{- range $var, $key := dict "Version" "gateway.networking.k8s.io/bundle-version" "Channel" "gateway.networking.k8s.io/channel" }}
    {{- range $prefix, $obj := dict "new" "object" "old" "oldObject" }}
    - name: {{ $prefix }}{{ $var }}
      expression: "has({{ $obj }}.metadata.annotations) && '{{ $key }}' in {{ $obj }}.metadata.annotations ? {{ $obj }}.metadata.annotations['{{ $key }}'] : ''"
    {{- end }}
    {{- end }}
    - name: comparable
      expression: "variables.newVersion.matches('^v[0-9]+[.][0-9]+[.][0-9]+$') && variables.oldVersion.matches('^v[0-9]+[.][0-9]+[.][0-9]+$')"
    - name: newParts
      expression: "variables.comparable ? variables.newVersion.substring(1).split('.').map(p, int(p)) : [0, 0, 0]"
    - name: oldParts
      expression: "variables.comparable ? variables.oldVersion.substring(1).split('.').map(p, int(p)) : [0, 0, 0]"
  validations:
    - expression: >-
        !variables.comparable || variables.newParts[0] > variables.oldParts[0] ||
        (variables.newParts[0] == variables.oldParts[0] && (variables.newParts[1] > variables.oldParts[1] ||
        (variables.newParts[1] == variables.oldParts[1] && variables.newParts[2] >= variables.oldParts[2])))
      messageExpression: >-
        'Helm release {{ .Release.Namespace }}/{{ .Release.Name }} would downgrade the Gateway API CRD ' + object.metadata.name +
        ' from ' + variables.oldVersion + ' to ' + variables.newVersion +
        ' (a helm rollback across a Gateway API upgrade, or an upgrade to an older chart with crds.gatewayAPI=install), dropping the newer fields and their stored values.' +
        ' Newer CRDs serve an older Gatehouse: to go back, run helm upgrade with the older chart version and crds.gatewayAPI=auto (or skip), which keeps them.'
      reason: Forbidden
    - expression: "variables.oldChannel != 'experimental' || variables.newChannel == 'experimental'"
      messageExpression: >-
        'Helm release {{ .Release.Namespace }}/{{ .Release.Name }} would turn the experimental-channel Gateway API CRD ' + object.metadata.name +
        ' into the standard channel (annotation gateway.networking.k8s.io/channel), dropping the experimental fields and their stored values: set crds.gatewayAPI=auto or skip to keep it.'
      reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {{ $name }}
  labels:
    app.kubernetes.io/part-of: gatehouse
    app.kubernetes.io/managed-by: {{ .Release.Service }}
spec:
  policyName: {{ $name }}
  validationActions: [Deny]
{{- end }}

{{- /* gatewayAPI.notes: what NOTES.txt says of the Gateway API CRDs. */ -}}
{{- define "gatewayAPI.notes" -}}
{{- range (include "gatewayAPI.plan" . | fromJson).notes }}

{{ . | wrap 78 }}
{{- end }}
{{- end }}
