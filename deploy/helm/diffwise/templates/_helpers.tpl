{{- define "diffwise.fullname" -}}{{ .Release.Name }}-diffwise{{- end -}}
{{- define "diffwise.secretName" -}}{{ .Values.github.existingSecret | default (include "diffwise.fullname" .) }}{{- end -}}
{{- define "diffwise.redisUrl" -}}
{{- if .Values.redis.url -}}{{ .Values.redis.url }}{{- else -}}redis://{{ include "diffwise.fullname" . }}-redis:6379/0{{- end -}}
{{- end -}}
{{- define "diffwise.env" -}}
- name: REDIS_URL
  value: {{ include "diffwise.redisUrl" . | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: PRIVATE_KEY_PATH
  value: /var/run/diffwise/private-key.pem
- name: APP_ID
  valueFrom: {secretKeyRef: {name: {{ include "diffwise.secretName" . }}, key: APP_ID}}
- name: WEBHOOK_SECRET
  valueFrom: {secretKeyRef: {name: {{ include "diffwise.secretName" . }}, key: WEBHOOK_SECRET}}
- name: ANTHROPIC_API_KEY
  valueFrom: {secretKeyRef: {name: {{ include "diffwise.secretName" . }}, key: ANTHROPIC_API_KEY, optional: true}}
{{- if .Values.github.apiUrl }}
- name: GITHUB_API_URL
  value: {{ .Values.github.apiUrl | quote }}
{{- end }}
{{- if .Values.anthropic.model }}
- name: DIFFWISE_MODEL
  value: {{ .Values.anthropic.model | quote }}
{{- end }}
{{- end -}}
