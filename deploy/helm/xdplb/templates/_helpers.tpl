{{/* Names, labels and the one config both components read. */}}

{{/* The release's base name: the release name, or "<release>-xdplb" when it does not say xdplb. */}}
{{- define "xdplb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component's objects: (dict "context" $ "component" "director"). */}}
{{- define "xdplb.componentName" -}}
{{- printf "%s-%s" (include "xdplb.fullname" .context) .component -}}
{{- end -}}

{{/* What selects one component's pods: (dict "context" $ "component" "director"). */}}
{{- define "xdplb.selectorLabels" -}}
app.kubernetes.io/name: {{ .context.Chart.Name }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every object's labels: (dict "context" $ "component" "director"), component optional. */}}
{{- define "xdplb.labels" -}}
app.kubernetes.io/name: {{ .context.Chart.Name }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/version: {{ .context.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .context.Chart.Name .context.Chart.Version }}
{{- end -}}

{{- define "xdplb.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* HOST:PORT as xdplb reads it ([IPv6]:PORT): (dict "host" "::" "port" 9842). */}}
{{- define "xdplb.listen" -}}
{{- if contains ":" .host -}}
{{- printf "[%s]:%v" .host .port -}}
{{- else -}}
{{- printf "%s:%v" .host .port -}}
{{- end -}}
{{- end -}}

{{/*
The config file (src/config/schema.ts) that the director (`xdplb attach -c`) and the agent
(`xdplb realserver --k8s -c`, which reads its kubernetes: section) share: .Values.config, then
the keys the chart sets. No kubeconfig: both use their pod's ServiceAccount.
*/}}
{{- define "xdplb.config" -}}
{{- $k := .Values.kubernetes -}}
{{- $kubernetes := dict
  "externalIPs" $k.externalIPs
  "loadBalancerClass" $k.loadBalancerClass
  "defaultClass" $k.defaultClass
  "pools" $k.pools
  "nodeSelector" $k.nodeSelector
  "nodeHealthCheck" $k.nodeHealthCheck
  "drainTimeout" $k.drainTimeout
-}}
{{- with .Values.leaderElection }}{{ if .enabled -}}
{{- $_ := set $kubernetes "leaderElection" (dict "namespace" $.Release.Namespace "name" .leaseName "leaseDuration" .leaseDuration "renewDeadline" .renewDeadline "retryPeriod" .retryPeriod) -}}
{{- end }}{{ end -}}
{{- $config := mergeOverwrite (deepCopy .Values.config) (dict
  "mode" .Values.mode
  "metricsAddress" (include "xdplb.listen" (dict "host" .Values.metrics.host "port" .Values.metrics.directorPort))
  "kubernetes" $kubernetes
) -}}
{{- with .Values.interface }}{{ $_ := set $config "interface" . }}{{ end -}}
{{- toYaml $config -}}
{{- end -}}
