{{/* Names, labels, the image, the pod hardening and the environment every component shares. */}}

{{- define "ringpilot.chart" -}}
{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (dict "root" $ "component" "controller"). */}}
{{- define "ringpilot.labels" -}}
helm.sh/chart: {{ include "ringpilot.chart" .root }}
app.kubernetes.io/name: ringpilot
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ringpilot
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Selector labels; call with (dict "root" $ "component" "controller" "instance" "shard-or-queue"). */}}
{{- define "ringpilot.selector" -}}
app.kubernetes.io/name: ringpilot
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- with .instance }}
ringpilot.dev/instance: {{ . }}
{{- end }}
{{- end }}

{{- define "ringpilot.image" -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "ringpilot.rbac" -}}
{{ .Files.Get "files/rbac.yaml" }}
{{- end }}

{{/* PodSecurity "restricted": the pod's part. */}}
{{- define "ringpilot.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* PodSecurity "restricted": the container's part, with a read-only root filesystem. */}}
{{- define "ringpilot.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Where a process may write: /tmp and the data directory (worker metrics), both emptyDir. */}}
{{- define "ringpilot.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: data
  emptyDir:
    sizeLimit: 256Mi
- name: policy
  configMap:
    name: {{ default "ringpilot-policy" .Values.policy.existingConfigMap }}
{{- end }}

{{- define "ringpilot.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/ringpilot
- name: policy
  mountPath: /etc/ringpilot/policy
  readOnly: true
{{- end }}

{{/* Database, Redis and the policy: every component reads them; credentials only from existing Secrets. */}}
{{- define "ringpilot.commonEnv" -}}
- name: RINGPILOT_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
- name: RINGPILOT_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.key }}
- name: RINGPILOT_POLICY_FILE
  value: /etc/ringpilot/policy/policy.yaml
- name: RINGPILOT_DATA_DIR
  value: /var/lib/ringpilot
- name: RINGPILOT_LOG_FORMAT
  value: json
{{- end }}

{{/* Scheduling of a component; call with its values section. */}}
{{- define "ringpilot.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The controller Deployments: one per shard, or one for all namespaces. A list of {name, namespaces}. */}}
{{- define "ringpilot.shards" -}}
{{- $shards := list -}}
{{- if .Values.controller.shards -}}
{{- $shards = .Values.controller.shards -}}
{{- else if .Values.controller.namespaces -}}
{{- $shards = list (dict "name" "" "namespaces" .Values.controller.namespaces) -}}
{{- else if .Values.rbac.namespaced -}}
{{- $shards = list (dict "name" "" "namespaces" .Values.rbac.namespaces) -}}
{{- else -}}
{{- $shards = list (dict "name" "" "namespaces" list) -}}
{{- end -}}
{{ toJson (dict "shards" $shards) }}
{{- end }}

{{/* Rules that JSON Schema cannot say: refused at render time, naming the key. */}}
{{- define "ringpilot.validate" -}}
{{- if and .Values.rbac.namespaced (not .Values.rbac.namespaces) -}}
{{- fail "rbac.namespaces: required (at least one namespace) when rbac.namespaced is true" -}}
{{- end -}}
{{- if and .Values.rbac.namespaced .Values.gateway.enabled (not (has .Values.gateway.namespace .Values.rbac.namespaces)) -}}
{{- fail (printf "gateway.namespace: %q must be one of rbac.namespaces (the gateway may write Conversations only there)" .Values.gateway.namespace) -}}
{{- end -}}
{{- if and .Values.gateway.enabled (eq .Values.gateway.auth.mode "tokens") (not .Values.gateway.auth.tokens.existingSecret) -}}
{{- fail "gateway.auth.tokens.existingSecret: required when gateway.auth.mode is tokens" -}}
{{- end -}}
{{- if and .Values.gateway.enabled (eq .Values.gateway.auth.mode "oidc") (not (and .Values.gateway.auth.oidc.issuer .Values.gateway.auth.oidc.audience .Values.gateway.auth.oidc.jwksUrl)) -}}
{{- fail "gateway.auth.oidc: issuer, audience and jwksUrl are required when gateway.auth.mode is oidc" -}}
{{- end -}}
{{- if and (or .Values.worker.turns.keda.enabled .Values.worker.steps.keda.enabled) (not .Values.worker.kedaRedisAddress) -}}
{{- fail "worker.kedaRedisAddress: required when a worker queue's keda.enabled is true" -}}
{{- end -}}
{{- range $q := list "turns" "steps" -}}
{{- $queue := index $.Values.worker $q -}}
{{- if lt (int $queue.keda.maxReplicas) (int $queue.keda.minReplicas) -}}
{{- fail (printf "worker.%s.keda.maxReplicas: must not be less than minReplicas" $q) -}}
{{- end -}}
{{- end -}}
{{- $names := dict -}}
{{- range .Values.controller.shards -}}
{{- if hasKey $names .name -}}
{{- fail (printf "controller.shards: the name %q appears twice" .name) -}}
{{- end -}}
{{- $_ := set $names .name true -}}
{{- end -}}
{{- end }}
