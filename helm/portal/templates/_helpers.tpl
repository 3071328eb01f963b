{{/*
Names, labels and the pieces every process's Deployment shares.
*/}}

{{- define "portal.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Leaves room for the longest suffix ("-seed-migrate"): names stay under 63 characters. */}}
{{- define "portal.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "portal.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "root" $ "component" "web"). */}}
{{- define "portal.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portal.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Every label; call with (dict "root" $ "component" "web"), component may be empty. */}}
{{- define "portal.labels" -}}
helm.sh/chart: {{ include "portal.chart" .root }}
{{ include "portal.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "portal.name" .root }}
{{- end }}

{{- define "portal.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "portal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "portal.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "portal.secretName" -}}
{{- default (include "portal.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "portal.webServiceName" -}}
{{- printf "%s-web" (include "portal.fullname" .) }}
{{- end }}

{{/* The first ingress host, with https when TLS covers it. */}}
{{- define "portal.siteUrl" -}}
{{- if .Values.config.siteUrl }}
{{- .Values.config.siteUrl | trimSuffix "/" }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}
{{- if has $host .hosts }}{{ $tls = true }}{{ end }}
{{- end }}
{{- printf "%s://%s" (ternary "https" "http" $tls) $host }}
{{- else }}
{{- printf "http://%s" (include "portal.webServiceName" .) }}
{{- end }}
{{- end }}

{{/*
The ConfigMap's data as YAML: the non-secret environment of every process. The
migration hook reads the same dict inline (it runs before the ConfigMap exists).
*/}}
{{- define "portal.configData" -}}
{{- $svc := include "portal.webServiceName" . }}
{{- $hosts := list }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end }}
{{- end }}
{{- $hosts = concat $hosts .Values.config.allowedHosts (list $svc (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) "localhost" "127.0.0.1") | uniq }}
PORTAL_ENV: {{ .Values.config.portalEnv | quote }}
DEBUG: "false"
SITE_URL: {{ include "portal.siteUrl" . | quote }}
ALLOWED_HOSTS: {{ join "," $hosts | quote }}
CSRF_TRUSTED_ORIGINS: {{ join "," .Values.config.csrfTrustedOrigins | quote }}
FORWARDED_ALLOW_IPS: {{ .Values.config.forwardedAllowIps | quote }}
LOG_LEVEL: {{ .Values.config.logLevel | quote }}
LOG_FORMAT: {{ .Values.config.logFormat | quote }}
DATABASE_POOL: {{ .Values.database.pool | toString | quote }}
DATABASE_POOL_MAX_SIZE: {{ .Values.database.poolMaxSize | toString | quote }}
KAFKA_BOOTSTRAP_SERVERS: {{ .Values.kafka.bootstrapServers | quote }}
KAFKA_EVENTS_TOPIC: {{ .Values.kafka.eventsTopic | quote }}
KAFKA_EVENTS_DLQ_TOPIC: {{ default (printf "%s.dlq" .Values.kafka.eventsTopic) .Values.kafka.eventsDlqTopic | quote }}
KAFKA_EVENTS_PARTITIONS: {{ .Values.kafka.eventsPartitions | toString | quote }}
KAFKA_BRIDGE_GROUP: {{ .Values.kafka.bridgeGroup | quote }}
KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}
KAFKA_SASL_MECHANISM: {{ .Values.kafka.sasl.mechanism | quote }}
{{- with .Values.kafka.sasl.username }}
KAFKA_SASL_USERNAME: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.kafka.tls.secretName }}
{{- range $variable, $key := dict "KAFKA_SSL_CAFILE" .Values.kafka.tls.caFile "KAFKA_SSL_CERTFILE" .Values.kafka.tls.certFile "KAFKA_SSL_KEYFILE" .Values.kafka.tls.keyFile }}
{{- with $key }}
{{ $variable }}: {{ printf "%s/%s" (include "portal.kafkaTlsDir" $) . | quote }}
{{- end }}
{{- end }}
{{- end }}
EVENTS_RETENTION_DAYS: {{ .Values.events.retentionDays | toString | quote }}
EVENTS_RELAY_BATCH_SIZE: {{ .Values.events.relayBatchSize | toString | quote }}
STATIC_ROOT: "/app/staticfiles"
{{- range $key, $value := .Values.config.extraEnv }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}

{{/* The chart-made Secret's data (base64), when there is no existingSecret. */}}
{{- define "portal.secretData" -}}
SECRET_KEY: {{ .Values.secret.secretKey | b64enc | quote }}
ENCRYPTION_KEYS: {{ .Values.secret.encryptionKeys | b64enc | quote }}
DATABASE_URL: {{ .Values.database.url | b64enc | quote }}
REDIS_URL: {{ .Values.redis.url | b64enc | quote }}
{{- with .Values.secret.apiKeyHmacSecret }}
API_KEY_HMAC_SECRET: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.kafka.sasl.password }}
KAFKA_SASL_PASSWORD: {{ . | b64enc | quote }}
{{- end }}
{{- range $key, $value := .Values.secret.extra }}
{{ $key }}: {{ $value | toString | b64enc | quote }}
{{- end }}
{{- end }}

{{/* Pods roll when the configuration or the chart-made secret changes. */}}
{{- define "portal.configChecksum" -}}
{{- $secret := ternary (printf "existing:%s" .Values.secret.existingSecret) (include "portal.secretData" .) (ne .Values.secret.existingSecret "") }}
{{- printf "%s\n---\n%s" (include "portal.configData" .) $secret | sha256sum }}
{{- end }}

{{/* The volumes of every pod that runs the portal: /tmp and the Kafka TLS files. */}}
{{- define "portal.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  secret:
    secretName: {{ .Values.kafka.tls.secretName }}
{{- end }}
{{- end }}

{{/* Where kafka.tls.secretName is mounted (read-only) in every pod that runs the portal. */}}
{{- define "portal.kafkaTlsDir" -}}
/etc/portal/kafka-tls
{{- end }}

{{/* The volume mounts of every pod that runs the portal: /tmp and the Kafka TLS files. */}}
{{- define "portal.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.secretName }}
- name: kafka-tls
  mountPath: {{ include "portal.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
One process's Deployment. Call with
  (dict "root" $ "component" "worker" "values" .Values.worker "replicas" 2
        "env" (list ...) "ports" (list ...) "strategy" "RollingUpdate")
*/}}
{{- define "portal.deployment" -}}
{{- $root := .root }}
{{- $c := .values }}
{{- $component := .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "portal.fullname" $root }}-{{ $component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "portal.labels" (dict "root" $root "component" $component) | nindent 4 }}
spec:
  {{- if not (and $c.autoscaling $c.autoscaling.enabled) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: {{ default "RollingUpdate" .strategy }}
  selector:
    matchLabels:
      {{- include "portal.selectorLabels" (dict "root" $root "component" $component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "portal.labels" (dict "root" $root "component" $component) | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "portal.configChecksum" $root }}
        {{- with (merge (dict) (default (dict) $c.podAnnotations) $root.Values.podAnnotations) }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "portal.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
      containers:
        - name: {{ $component }}
          image: {{ include "portal.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            - {{ $component }}
            {{- range $c.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          {{- with .ports }}
          ports:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          envFrom:
            - configMapRef:
                name: {{ include "portal.fullname" $root }}
            - secretRef:
                name: {{ include "portal.secretName" $root }}
          {{- $env := concat (default (list) .env) (default (list) $c.extraEnv) }}
          {{- with $env }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.startupProbe }}
          startupProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.livenessProbe }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $c.readinessProbe }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "portal.volumeMounts" $root | nindent 12 }}
      volumes:
        {{- include "portal.volumes" $root | nindent 8 }}
      {{- with (default $root.Values.nodeSelector $c.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (default $root.Values.tolerations $c.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (default $root.Values.affinity $c.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* A PodDisruptionBudget; call with (dict "root" $ "component" "web" "pdb" .Values.web.pdb). */}}
{{- define "portal.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "portal.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "portal.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  {{- if hasKey .pdb "minAvailable" }}
  minAvailable: {{ .pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ .pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "portal.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end }}

{{/* A HorizontalPodAutoscaler; call with (dict "root" $ "component" "web" "autoscaling" .Values.web.autoscaling). */}}
{{- define "portal.hpa" -}}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "portal.fullname" .root }}-{{ .component }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "portal.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "portal.fullname" .root }}-{{ .component }}
  minReplicas: {{ .autoscaling.minReplicas }}
  maxReplicas: {{ .autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .autoscaling.targetCPUUtilizationPercentage }}
    {{- with .autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
  {{- with .autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
