{{/* Name of every object: fullnameOverride, else the release name. */}}
{{- define "plinth.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object of the webhook. */}}
{{- define "plinth.labels" -}}
app.kubernetes.io/name: plinth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: plinth
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of the day-2 objects (worker, API, store Secret): the same, without the component. */}}
{{- define "plinth.commonLabels" -}}
app.kubernetes.io/name: plinth
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: plinth
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of the webhook Pods. */}}
{{- define "plinth.selectorLabels" -}}
app.kubernetes.io/name: plinth
app.kubernetes.io/component: admission-webhook
{{- end -}}

{{/* The container image: repository@digest or repository:tag. */}}
{{- define "plinth.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* What the webhook configurations share: client CA, rules, exclusions. */}}
{{- define "plinth.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
matchPolicy: Equivalent
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
    scope: Namespaced
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "replicasets", "statefulsets", "daemonsets"]
    scope: Namespaced
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range .Values.webhook.excludedNamespaces }}
        {{- if ne . $.Release.Namespace }}
        - {{ . | quote }}
        {{- end }}
        {{- end }}
        - {{ .Release.Namespace | quote }}
matchConditions:
  - name: exclude-plinth-service-account
    expression: {{ printf "request.userInfo.username != 'system:serviceaccount:%s:%s'" .Release.Namespace (include "plinth.fullname" .) | quote }}
{{- end -}}

{{/* The store Secret's name. */}}
{{- define "plinth.storeSecret" -}}
{{- default (printf "%s-store" (include "plinth.fullname" .)) .Values.store.existingSecret -}}
{{- end -}}

{{/* PLINTH_STORE from the store Secret. */}}
{{- define "plinth.storeEnv" -}}
- name: PLINTH_STORE
  valueFrom:
    secretKeyRef:
      name: {{ include "plinth.storeSecret" . }}
      key: {{ .Values.store.key }}
{{- end -}}

{{/* The restricted container security context every Plinth container runs with. */}}
{{- define "plinth.containerSecurity" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The worker's container (Deployment and CronJob). */}}
{{- define "plinth.workerPodSpec" -}}
serviceAccountName: {{ include "plinth.fullname" . }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  fsGroup: 65532
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if and .Values.worker.dbUpdateArgs (not .Values.worker.dbClaim) }}
initContainers:
  - name: advisories
    image: {{ include "plinth.image" . | quote }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args:
      - db
      {{- range .Values.worker.dbUpdateArgs }}
      - {{ . | quote }}
      {{- end }}
      - --db=/var/lib/plinth/vuln.db
    securityContext:
      {{- include "plinth.containerSecurity" . | nindent 6 }}
    volumeMounts:
      - name: advisories
        mountPath: /var/lib/plinth
      - name: tmp
        mountPath: /tmp
{{- end }}
containers:
  - name: worker
    image: {{ include "plinth.image" . | quote }}
    imagePullPolicy: {{ .Values.image.pullPolicy }}
    args:
      - watch
      {{- if eq .Values.worker.mode "cronjob" }}
      - --once
      - --queue=off
      {{- end }}
      - --db=/var/lib/plinth/vuln.db
      - --catalog=/etc/plinth/config/catalog.yaml
      - {{ printf "--severity=%v" .Values.worker.severity | quote }}
      - {{ printf "--rescan-ttl=%v" .Values.worker.rescanTtl | quote }}
      - {{ printf "--event-retention=%v" .Values.worker.eventRetention | quote }}
      - {{ printf "--match-workers=%v" .Values.worker.matchWorkers | quote }}
      - {{ printf "--notify-format=%v" .Values.worker.notifyFormat | quote }}
      {{- range .Values.worker.watchTags }}
      - {{ printf "--watch-tag=%v" . | quote }}
      {{- end }}
      {{- if .Values.worker.owners }}
      - --owners=/etc/plinth/notify/owners.yaml
      {{- end }}
      {{- if ne .Values.worker.mode "cronjob" }}
      - {{ printf "--metrics-port=%v" .Values.worker.metricsPort | quote }}
      {{- end }}
      - --deny-private-networks
      {{- range .Values.allowPrivateRegistries }}
      - {{ printf "--allow-private-registry=%v" . | quote }}
      {{- end }}
    env:
      {{- include "plinth.storeEnv" . | nindent 6 }}
      {{- if .Values.worker.notify }}
      # Webhook URLs are secrets: from a Secret, never in the arguments.
      - name: PLINTH_NOTIFY
        valueFrom:
          secretKeyRef:
            name: {{ include "plinth.fullname" . }}-notify
            key: targets
      {{- end }}
      - name: XDG_STATE_HOME
        value: /tmp
    {{- if ne .Values.worker.mode "cronjob" }}
    ports:
      - name: metrics
        containerPort: {{ .Values.worker.metricsPort }}
        protocol: TCP
    livenessProbe:
      httpGet:
        path: /healthz
        port: metrics
      periodSeconds: 20
      timeoutSeconds: 2
    {{- end }}
    resources:
      {{- toYaml .Values.worker.resources | nindent 6 }}
    securityContext:
      {{- include "plinth.containerSecurity" . | nindent 6 }}
    volumeMounts:
      - name: config
        mountPath: /etc/plinth/config
        readOnly: true
      {{- if .Values.worker.owners }}
      - name: notify
        mountPath: /etc/plinth/notify
        readOnly: true
      {{- end }}
      - name: advisories
        mountPath: /var/lib/plinth
      - name: tmp
        mountPath: /tmp
volumes:
  - name: config
    configMap:
      name: {{ include "plinth.fullname" . }}-config
  {{- if .Values.worker.owners }}
  - name: notify
    secret:
      secretName: {{ include "plinth.fullname" . }}-notify
      defaultMode: 0440
  {{- end }}
  - name: advisories
    {{- if .Values.worker.dbClaim }}
    persistentVolumeClaim:
      claimName: {{ .Values.worker.dbClaim }}
    {{- else }}
    emptyDir:
      sizeLimit: 2Gi
    {{- end }}
  - name: tmp
    emptyDir:
      sizeLimit: 256Mi
{{- end -}}
