{{/* The name of every object: the release name, with "postie" unless the release name has it. */}}
{{- define "postie.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "postie.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "postie.labels" -}}
{{ include "postie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "postie.secretName" -}}
{{- default (include "postie.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "postie.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* Whether the chart runs on PostgreSQL; fails on a driver it does not know. */}}
{{- define "postie.postgres" -}}
{{- if eq .Values.database.driver "postgres" -}}true
{{- else if ne .Values.database.driver "sqlite" -}}
{{- fail (printf "database.driver must be sqlite or postgres, not %q" .Values.database.driver) -}}
{{- end -}}
{{- end -}}

{{/* The environment of every postie container: the plain settings, then the secret ones. */}}
{{- define "postie.env" -}}
- name: POSTIE_LISTEN
  value: {{ printf ":%d" (int .Values.ports.http) | quote }}
- name: POSTIE_ADMIN_LISTEN
  value: {{ printf ":%d" (int .Values.ports.admin) | quote }}
- name: POSTIE_SHUTDOWN_TIMEOUT
  value: {{ printf "%ds" (int .Values.shutdownTimeoutSeconds) | quote }}
{{- if include "postie.postgres" . }}
- name: POSTIE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "postie.secretName" . }}
      key: database-url
{{- else }}
- name: POSTIE_DATABASE_URL
  value: sqlite:/var/lib/postie/postie.db
{{- end }}
{{- range $key, $env := dict "api-key" "POSTIE_API_KEY" "secret-key" "POSTIE_SECRET_KEY" "smtp-url" "POSTIE_SMTP_URL" "sentry-dsn" "POSTIE_SENTRY_DSN" }}
- name: {{ $env }}
  valueFrom:
    secretKeyRef:
      name: {{ include "postie.secretName" $ }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- range $name, $value := .Values.env }}
{{- if has $name (list "POSTIE_LISTEN" "POSTIE_ADMIN_LISTEN" "POSTIE_SHUTDOWN_TIMEOUT" "POSTIE_DATABASE_URL") }}
{{- fail (printf "env.%s: the chart sets it (ports.http, ports.admin, shutdownTimeoutSeconds, database.url): set that value instead" $name) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The preStop sleep the pods get, in seconds (0 when none: before Kubernetes 1.30, which has no sleep action). */}}
{{- define "postie.preStopSleep" -}}
{{- if semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version -}}{{ int .Values.preStopSleepSeconds }}{{- else -}}0{{- end -}}
{{- end -}}

{{/* The container security context: no root, no privilege, a read-only root filesystem. */}}
{{- define "postie.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
