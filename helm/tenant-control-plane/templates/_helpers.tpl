{{- define "tcp.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tcp.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tcp.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tcp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tcp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tcp.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* checkov checks that cannot hold for a component, each with its reason (docs/helm.md). */}}
{{- define "tcp.checkovSkips" -}}
{{- $reasons := dict
  "CKV_K8S_35" "tenantctl reads its secrets from the environment (never logged or on a command line)"
  "CKV_K8S_43" "pin a digest with image.digest"
  "CKV_K8S_38" "this component calls the Kubernetes API"
  "CKV_K8S_8" "no HTTP endpoint; a dead worker is noticed by its missed heartbeats"
  "CKV_K8S_9" "no HTTP endpoint; it takes work from the queue or the watch, not traffic"
-}}
{{- range $index, $check := . }}
checkov.io/skip{{ add1 $index }}: {{ printf "%s=%s" $check (index $reasons $check) | quote }}
{{- end }}
{{- end -}}

{{/* The pod spec every component shares: restricted security, secrets by reference. */}}
{{- define "tcp.pod" -}}
serviceAccountName: {{ include "tcp.serviceAccountName" .root }}
automountServiceAccountToken: {{ .token }}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: platform
    configMap:
      name: {{ include "tcp.fullname" .root }}-platform
  - name: data
    emptyDir: {}
  - name: tmp
    emptyDir: {}
{{- end -}}

{{/* A container of the pod above: `args` of tenantctl, its resources. */}}
{{- define "tcp.container" -}}
name: {{ .name }}
image: {{ include "tcp.image" .root }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
command: ["tenantctl"]
args:
  {{- toYaml .args | nindent 2 }}
env:
  - name: TENANTCTL_DATA_DIR
    value: /var/lib/tenantctl
  - name: HOME
    value: /tmp
  {{- range $name, $key := .root.Values.secretEnv.keys }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ $.root.Values.secretEnv.secretName }}
        key: {{ $key }}
  {{- end }}
  {{- range $name, $value := .root.Values.env }}
  - name: {{ $name }}
    value: {{ $value | quote }}
  {{- end }}
resources:
  {{- toYaml .resources | nindent 2 }}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
volumeMounts:
  - name: platform
    mountPath: /etc/tenantctl
    readOnly: true
  - name: data
    mountPath: /var/lib/tenantctl
  - name: tmp
    mountPath: /tmp
{{- end -}}
