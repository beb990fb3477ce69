{{/*
Names and labels.
*/}}
{{- define "traverse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "traverse.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name derived from the fullname with a suffix, within 63 characters. */}}
{{- define "traverse.suffixed" -}}
{{- $root := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- printf "%s-%s" (include "traverse.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix -}}
{{- end -}}

{{- define "traverse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "traverse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "traverse.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "traverse.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: traverse
traverse.dev/role: {{ .Values.role | quote }}
{{- end -}}

{{- define "traverse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "traverse.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "traverse.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "traverse.clusterName" -}}
{{- default .Values.role .Values.cluster.name -}}
{{- end -}}

{{- define "traverse.serviceName" -}}
{{- default (printf "traverse-%s" .Values.role) .Values.tracing.serviceName -}}
{{- end -}}

{{- define "traverse.leaseName" -}}
{{- default (include "traverse.suffixed" (list . "status")) .Values.providers.kubernetes.leaderElection.name -}}
{{- end -}}

{{- define "traverse.leaseNamespace" -}}
{{- default .Release.Namespace .Values.providers.kubernetes.leaderElection.namespace -}}
{{- end -}}

{{/*
Where the pod sees its files. The ConfigMap is mounted alone at configDir; every Secret
gets its own directory under tlsDir (no mount is nested in another volume).
*/}}
{{- define "traverse.configDir" -}}/etc/traverse{{- end -}}
{{- define "traverse.configPath" -}}/etc/traverse/traverse.yaml{{- end -}}
{{- define "traverse.tlsDir" -}}/etc/traverse-tls{{- end -}}

{{/*
Durations. "traverse.duration" (list KEY VALUE) is the value as the gateway reads it: a
string such as 10s, or a number of seconds. "traverse.seconds" (list KEY VALUE) is the
same duration in whole seconds, rounded up. Both fail on anything else, naming KEY.
*/}}
{{- define "traverse.duration" -}}
{{- $key := index . 0 -}}
{{- $value := index . 1 -}}
{{- if kindIs "string" $value -}}
{{- $text := trim $value -}}
{{- if not (regexMatch "^([0-9]+(ms|s|m|h))+$" $text) -}}
{{- fail (printf "%s: %q is not a duration such as 500ms, 10s, 2m or 1h30m" $key $value) -}}
{{- end -}}
{{- $text -}}
{{- else if or (kindIs "float64" $value) (kindIs "int" $value) (kindIs "int64" $value) -}}
{{- if lt (float64 $value) 0.0 -}}
{{- fail (printf "%s: %v is negative" $key $value) -}}
{{- end -}}
{{- printf "%ds" (int64 $value) -}}
{{- else -}}
{{- fail (printf "%s: %v is not a duration such as 500ms, 10s, 2m or 1h30m" $key $value) -}}
{{- end -}}
{{- end -}}

{{- define "traverse.seconds" -}}
{{- $text := include "traverse.duration" . -}}
{{- $millis := 0 -}}
{{- range regexFindAll "[0-9]+(ms|s|m|h)" $text -1 -}}
{{- $number := regexFind "^[0-9]+" . -}}
{{- $unit := trimPrefix $number . -}}
{{- $factor := get (dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000) $unit -}}
{{- $millis = add $millis (mul (int64 $number) $factor) -}}
{{- end -}}
{{- div (add $millis 999) 1000 -}}
{{- end -}}

{{/*
A map passed to the gateway as it is, with its duration FIELDS normalized (numbers of
seconds become "Ns"). (list KEY MAP FIELDS)
*/}}
{{- define "traverse.withDurations" -}}
{{- $key := index . 0 -}}
{{- $out := deepCopy (default (dict) (index . 1)) -}}
{{- range $field := index . 2 -}}
{{- if hasKey $out $field -}}
{{- $_ := set $out $field (include "traverse.duration" (list (printf "%s.%s" $key $field) (index $out $field))) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
A tri-state switch: "true", "false" or "" (unset) for KEY of MAP.
*/}}
{{- define "traverse.switch" -}}
{{- $map := index . 0 -}}
{{- $key := index . 1 -}}
{{- if and (kindIs "map" $map) (hasKey $map $key) -}}
{{- $value := index $map $key -}}
{{- if kindIs "bool" $value -}}
{{- ternary "true" "false" $value -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- fail (printf "%s: %v is not true or false" (index . 2) $value) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A map of strings (header or attribute values): numbers and booleans become their text.
*/}}
{{- define "traverse.stringMap" -}}
{{- $out := dict -}}
{{- range $key, $value := . -}}
{{- $_ := set $out (toString $key) (toString $value) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
Traefik's additionalArguments, turned into the OTLP settings of the gateway's own logs
(general) and of the access log (access), in the chart's values shape:
{general: {enabled, http: {enabled, endpoint}, grpc: {...}}, access: {...}, level}.
*/}}
{{- define "traverse.arguments" -}}
{{- $out := dict "general" (dict) "access" (dict) -}}
{{- range $index, $argument := .Values.additionalArguments -}}
{{- $text := toString $argument | trim -}}
{{- $flag := regexReplaceAll "=.*$" $text "" -}}
{{- $value := "true" -}}
{{- if contains "=" $text -}}
{{- $value = regexReplaceAll "^[^=]*=" $text "" -}}
{{- end -}}
{{- $match := regexMatch "^--(log|accesslog|accessLog)\\.otlp(\\.http(\\.endpoint)?|\\.grpc(\\.(endpoint|insecure))?)?$" $flag -}}
{{- if eq $flag "--experimental.otlpLogs" -}}
{{- /* Traverse's OTLP logs are not experimental: nothing to turn on. */ -}}
{{- else if eq $flag "--log.level" -}}
{{- $_ := set $out "level" $value -}}
{{- else if $match -}}
{{- $signal := ternary "general" "access" (hasPrefix "--log." $flag) -}}
{{- $parts := splitList "." (trimPrefix "--" $flag) -}}
{{- $target := index $out $signal -}}
{{- if eq (len $parts) 2 -}}
{{- $_ := set $target "enabled" (eq (lower $value) "true") -}}
{{- else -}}
{{- $transport := index $parts 2 -}}
{{- $settings := default (dict) (get $target $transport) -}}
{{- if eq (len $parts) 3 -}}
{{- $_ := set $settings "enabled" (eq (lower $value) "true") -}}
{{- else if eq (index $parts 3) "endpoint" -}}
{{- $_ := set $settings "endpoint" $value -}}
{{- if not (hasKey $settings "enabled") -}}
{{- $_ := set $settings "enabled" true -}}
{{- end -}}
{{- else -}}
{{- $_ := set $settings "insecure" (eq (lower $value) "true") -}}
{{- end -}}
{{- $_ := set $target $transport $settings -}}
{{- end -}}
{{- else -}}
{{- fail (printf "additionalArguments[%d]: %q is a Traefik flag with no Traverse equivalent; set the chart's values instead (only Traefik's OTLP log flags and --log.level are translated)" $index $text) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
One signal's OTLP values merged with what additionalArguments say about it; a value set
in both places with different contents fails. (list KEY VALUES FROM-ARGUMENTS)
*/}}
{{- define "traverse.otlpValues" -}}
{{- $key := index . 0 -}}
{{- $values := deepCopy (default (dict) (index . 1)) -}}
{{- $arguments := default (dict) (index . 2) -}}
{{- if hasKey $arguments "enabled" -}}
{{- if and (hasKey $values "enabled") (ne (toString (index $values "enabled")) (toString $arguments.enabled)) -}}
{{- fail (printf "%s.enabled and additionalArguments disagree" $key) -}}
{{- end -}}
{{- $_ := set $values "enabled" $arguments.enabled -}}
{{- end -}}
{{- range $transport := list "http" "grpc" -}}
{{- if hasKey $arguments $transport -}}
{{- $given := default (dict) (get $values $transport) -}}
{{- range $name, $value := index $arguments $transport -}}
{{- $current := get $given $name -}}
{{- if and (hasKey $given $name) (not (kindIs "invalid" $current)) (ne (toString $current) "") (ne (toString $current) (toString $value)) (not (and (eq $name "insecure") (eq (toString $current) "false"))) -}}
{{- fail (printf "%s.%s.%s is %q but additionalArguments set %q: keep one" $key $transport $name (toString $current) (toString $value)) -}}
{{- end -}}
{{- $_ := set $given $name $value -}}
{{- end -}}
{{- $_ := set $values $transport $given -}}
{{- end -}}
{{- end -}}
{{- toYaml $values -}}
{{- end -}}

{{/*
The gateway's `otlp` block of one signal from the chart's values (list KEY VALUES):
http and grpc are on when enabled, or when enabled is unset and an endpoint is given.
Empty output: nothing to render (the gateway's defaults apply).
*/}}
{{- define "traverse.otlp" -}}
{{- $key := index . 0 -}}
{{- $values := default (dict) (index . 1) -}}
{{- $out := dict -}}
{{- $enabled := include "traverse.switch" (list $values "enabled" (printf "%s.enabled" $key)) -}}
{{- if eq $enabled "false" -}}
{{- $_ := set $out "enabled" false -}}
{{- else -}}
{{- $on := dict -}}
{{- range $transport := list "http" "grpc" -}}
{{- $settings := default (dict) (get $values $transport) -}}
{{- $switch := include "traverse.switch" (list $settings "enabled" (printf "%s.%s.enabled" $key $transport)) -}}
{{- $endpoint := toString (default "" (get $settings "endpoint")) | trim -}}
{{- if or (eq $switch "true") (and (eq $switch "") (ne $endpoint "")) -}}
{{- $block := dict -}}
{{- if $endpoint -}}
{{- if and (eq $transport "http") (not (regexMatch "^https?://[^\\s]+$" $endpoint)) -}}
{{- fail (printf "%s.http.endpoint: %q is not an http:// or https:// URL (the full URL, e.g. http://collector:4318/v1/traces)" $key $endpoint) -}}
{{- end -}}
{{- $_ := set $block "endpoint" $endpoint -}}
{{- end -}}
{{- if get $settings "headers" -}}
{{- $_ := set $block "headers" (include "traverse.stringMap" $settings.headers | fromYaml) -}}
{{- end -}}
{{- if get $settings "timeout" -}}
{{- $_ := set $block "timeout" (include "traverse.duration" (list (printf "%s.%s.timeout" $key $transport) $settings.timeout)) -}}
{{- end -}}
{{- if get $settings "tls" -}}
{{- $_ := set $block "tls" $settings.tls -}}
{{- end -}}
{{- if eq $transport "grpc" -}}
{{- if get $settings "insecure" -}}
{{- if hasPrefix "https://" $endpoint -}}
{{- fail (printf "%s.grpc.insecure: true contradicts the https:// endpoint %s" $key $endpoint) -}}
{{- end -}}
{{- $_ := set $block "insecure" true -}}
{{- end -}}
{{- end -}}
{{- $_ := set $on $transport $block -}}
{{- end -}}
{{- end -}}
{{- if and (hasKey $on "http") (hasKey $on "grpc") -}}
{{- fail (printf "%s: enable one of http and grpc, not both (%s.http and %s.grpc are both on)" $key $key $key) -}}
{{- end -}}
{{- $out = merge $out $on -}}
{{- if eq $enabled "true" -}}
{{- $_ := set $out "enabled" true -}}
{{- end -}}
{{- end -}}
{{- if $out -}}
{{- toYaml $out -}}
{{- end -}}
{{- end -}}

{{/*
Whether a signal exports (list OTLP-BLOCK-YAML): "true" or "".
*/}}
{{- define "traverse.exports" -}}
{{- $block := fromYaml (index . 0) -}}
{{- if and $block (ne (toString (get $block "enabled")) "false") -}}true{{- end -}}
{{- end -}}

{{/*
An entrypoint of the gateway (list NAME VALUES UPLINK TLS-DICT).
*/}}
{{- define "traverse.entryPoint" -}}
{{- $name := index . 0 -}}
{{- $values := index . 1 -}}
{{- $key := printf "entryPoints.%s" $name -}}
{{- $out := dict "address" (printf "0.0.0.0:%d" (int64 $values.port)) -}}
{{- if hasKey $values "h2c" -}}
{{- $_ := set $out "h2c" $values.h2c -}}
{{- end -}}
{{- if get $values "traceContext" -}}
{{- if not (has $values.traceContext (list "continue" "new-and-link" "ignore")) -}}
{{- fail (printf "%s.traceContext: %q is not continue, new-and-link or ignore" $key $values.traceContext) -}}
{{- end -}}
{{- if and (index . 2) (ne $values.traceContext "continue") -}}
{{- fail (printf "%s.traceContext: an uplink entrypoint continues its parent's trace; it must be continue" $key) -}}
{{- end -}}
{{- $_ := set $out "traceContext" $values.traceContext -}}
{{- end -}}
{{- $forwarded := default (dict) (get $values "forwardedHeaders") -}}
{{- if or (get $forwarded "insecure") (get $forwarded "trustedIPs") -}}
{{- $headers := dict -}}
{{- if get $forwarded "insecure" -}}
{{- $_ := set $headers "insecure" true -}}
{{- end -}}
{{- if get $forwarded "trustedIPs" -}}
{{- $_ := set $headers "trustedIPs" $forwarded.trustedIPs -}}
{{- end -}}
{{- $_ := set $out "forwardedHeaders" $headers -}}
{{- end -}}
{{- if get $values "timeouts" -}}
{{- $timeouts := dict -}}
{{- range $field, $value := $values.timeouts -}}
{{- if not (has $field (list "read" "write" "idle")) -}}
{{- fail (printf "%s.timeouts.%s: not a timeout (read, write or idle)" $key $field) -}}
{{- end -}}
{{- $_ := set $timeouts $field (include "traverse.duration" (list (printf "%s.timeouts.%s" $key $field) $value)) -}}
{{- end -}}
{{- $_ := set $out "timeouts" $timeouts -}}
{{- end -}}
{{- with dig "redirections" "entryPoint" nil $values -}}
{{- $redirect := dict "to" (toString .to) "scheme" (default "https" .scheme) "permanent" (ne (toString (get . "permanent")) "false") -}}
{{- $_ := set $out "http" (dict "redirections" (dict "entryPoint" $redirect)) -}}
{{- end -}}
{{- if index . 2 -}}
{{- $_ := set $out "uplink" true -}}
{{- end -}}
{{- if index . 3 -}}
{{- $_ := set $out "tls" (index . 3) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The Secrets the pod mounts: a list of {volume, secret, dir, items: {key: path}}.
*/}}
{{- define "traverse.secretMounts" -}}
{{- $tls := include "traverse.tlsDir" . -}}
{{- $mounts := list -}}
{{- if eq .Values.role "child" -}}
{{- $uplink := .Values.entryPoints.multicluster.tls -}}
{{- if $uplink.secretName -}}
{{- $mounts = append $mounts (dict "volume" "uplink-tls" "secret" $uplink.secretName "dir" (printf "%s/uplink" $tls) "items" (dict "tls.crt" "tls.crt" "tls.key" "tls.key")) -}}
{{- end -}}
{{- if $uplink.clientCASecretName -}}
{{- $mounts = append $mounts (dict "volume" "parents-ca" "secret" $uplink.clientCASecretName "dir" (printf "%s/parents" $tls) "items" (dict "ca.crt" "ca.crt")) -}}
{{- end -}}
{{- else -}}
{{- $mc := .Values.multicluster -}}
{{- if $mc.tls.clientCertSecretName -}}
{{- $mounts = append $mounts (dict "volume" "client-tls" "secret" $mc.tls.clientCertSecretName "dir" (printf "%s/client" $tls) "items" (dict "tls.crt" "tls.crt" "tls.key" "tls.key")) -}}
{{- end -}}
{{- $cas := list -}}
{{- range $name, $child := $mc.children -}}
{{- if dig "tls" "enabled" false (default (dict) $child) -}}
{{- $ca := default $mc.tls.caSecretName (dig "tls" "caSecretName" "" $child) -}}
{{- if $ca -}}
{{- $cas = append $cas $ca -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $index, $ca := $cas | uniq | sortAlpha -}}
{{- $mounts = append $mounts (dict "volume" (printf "children-ca-%d" $index) "secret" $ca "dir" (printf "%s/children/%s" $tls $ca) "items" (dict "ca.crt" "ca.crt")) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "mounts" $mounts) -}}
{{- end -}}

{{/*
Checks the values for contradictions, and fails naming the keys.
*/}}
{{- define "traverse.validate" -}}
{{- $v := .Values -}}
{{- if not (has $v.role (list "parent" "child")) -}}
{{- fail (printf "role: %q is not parent or child" (toString $v.role)) -}}
{{- end -}}
{{- $dns := "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" -}}
{{- $web := $v.entryPoints.web -}}
{{- $uplink := $v.entryPoints.multicluster -}}
{{- $ports := dict -}}
{{- $_ := set $ports (toString (int64 $v.admin.port)) "admin.port" -}}
{{- if $web.enabled -}}
{{- if hasKey $ports (toString (int64 $web.port)) -}}
{{- fail (printf "entryPoints.web.port: %d is already admin.port" (int64 $web.port)) -}}
{{- end -}}
{{- $_ := set $ports (toString (int64 $web.port)) "entryPoints.web.port" -}}
{{- end -}}
{{- $websecure := $v.entryPoints.websecure -}}
{{- if $websecure.enabled -}}
{{- if hasKey $ports (toString (int64 $websecure.port)) -}}
{{- fail (printf "entryPoints.websecure.port: %d is already %s" (int64 $websecure.port) (get $ports (toString (int64 $websecure.port)))) -}}
{{- end -}}
{{- $_ := set $ports (toString (int64 $websecure.port)) "entryPoints.websecure.port" -}}
{{- end -}}
{{- with dig "redirections" "entryPoint" nil $web -}}
{{- $to := toString (get . "to") -}}
{{- if not (or (and (eq $to "websecure") $websecure.enabled) (regexMatch "^:[0-9]{1,5}$" $to)) -}}
{{- fail (printf "entryPoints.web.redirections.entryPoint.to: %q is not an enabled entrypoint to redirect to (websecure) or a port such as \":443\"" $to) -}}
{{- end -}}
{{- end -}}
{{- if eq $v.role "child" -}}
{{- if not (and $uplink $uplink.port) -}}
{{- fail "role: child needs entryPoints.multicluster.port, the uplink entrypoint its parents forward to (default 9443)" -}}
{{- end -}}
{{- if hasKey $ports (toString (int64 $uplink.port)) -}}
{{- fail (printf "entryPoints.multicluster.port: %d is already %s" (int64 $uplink.port) (get $ports (toString (int64 $uplink.port)))) -}}
{{- end -}}
{{- if $v.multicluster.children -}}
{{- fail (printf "multicluster.children: only a parent forwards to children (role is child): remove %s, or set role: parent" (keys $v.multicluster.children | sortAlpha | join ", ")) -}}
{{- end -}}
{{- if and $uplink.tls.clientCASecretName (not $uplink.tls.secretName) -}}
{{- fail "entryPoints.multicluster.tls.clientCASecretName needs entryPoints.multicluster.tls.secretName: mutual TLS is TLS with client certificates" -}}
{{- end -}}
{{- else -}}
{{- if not $web.enabled -}}
{{- fail "entryPoints.web.enabled: a parent takes client traffic on web; it cannot be disabled" -}}
{{- end -}}
{{- if not $v.multicluster.children -}}
{{- fail "role: parent needs at least one child in multicluster.children, e.g. multicluster.children.child-a.address: traverse-uplink.eu-west.example.com:9443" -}}
{{- end -}}
{{- $anyTls := false -}}
{{- range $name, $child := $v.multicluster.children -}}
{{- $key := printf "multicluster.children.%s" $name -}}
{{- if not (regexMatch $dns $name) -}}
{{- fail (printf "%s: child names must be lowercase letters, digits and '-' (at most 63)" $key) -}}
{{- end -}}
{{- if not (kindIs "map" $child) -}}
{{- fail (printf "%s: expected a map with address (host:port of the child's uplink entrypoint)" $key) -}}
{{- end -}}
{{- $address := toString (default "" (get $child "address")) -}}
{{- if not (regexMatch "^([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\]):[0-9]{1,5}$" $address) -}}
{{- fail (printf "%s.address: %q is not host:port, e.g. traverse-uplink.eu-west.example.com:9443" $key $address) -}}
{{- end -}}
{{- range $field, $_ := $child -}}
{{- if not (has $field (list "address" "tls")) -}}
{{- fail (printf "%s.%s: unknown key (a child has address and tls)" $key $field) -}}
{{- end -}}
{{- end -}}
{{- $tls := default (dict) (get $child "tls") -}}
{{- range $field, $_ := $tls -}}
{{- if not (has $field (list "enabled" "serverName" "caSecretName" "insecureSkipVerify")) -}}
{{- fail (printf "%s.tls.%s: unknown key (enabled, serverName, caSecretName, insecureSkipVerify)" $key $field) -}}
{{- end -}}
{{- end -}}
{{- if get $tls "enabled" -}}
{{- $anyTls = true -}}
{{- else if or (get $tls "serverName") (get $tls "caSecretName") (get $tls "insecureSkipVerify") -}}
{{- fail (printf "%s.tls: settings are given but tls.enabled is not true" $key) -}}
{{- end -}}
{{- end -}}
{{- if and $v.multicluster.tls.clientCertSecretName (not $anyTls) -}}
{{- fail "multicluster.tls.clientCertSecretName: a client certificate needs TLS, but no child has tls.enabled: true" -}}
{{- end -}}
{{- end -}}
{{- range $index, $namespace := $v.providers.kubernetes.namespaces -}}
{{- if not (regexMatch $dns (toString $namespace)) -}}
{{- fail (printf "providers.kubernetes.namespaces[%d]: %q is not a namespace name" $index (toString $namespace)) -}}
{{- end -}}
{{- end -}}
{{- $drain := include "traverse.seconds" (list "shutdown.drainDelay" $v.shutdown.drainDelay) | int64 -}}
{{- $grace := include "traverse.seconds" (list "shutdown.gracePeriod" $v.shutdown.gracePeriod) | int64 -}}
{{- if gt $drain 600 -}}
{{- fail "shutdown.drainDelay: must be at most 10m" -}}
{{- end -}}
{{- if gt $grace 3600 -}}
{{- fail "shutdown.gracePeriod: must be at most 1h" -}}
{{- end -}}
{{- $given := get $v.deployment "terminationGracePeriodSeconds" -}}
{{- if and (not (kindIs "invalid" $given)) (ne (toString $given) "") -}}
{{- $needed := add $drain $grace 5 -}}
{{- if le (int64 $given) $needed -}}
{{- fail (printf "deployment.terminationGracePeriodSeconds: %d is too short; it must exceed shutdown.drainDelay (%ds) + shutdown.gracePeriod (%ds) + 5s for the final telemetry flush, i.e. at least %d (or leave it unset)" (int64 $given) $drain $grace (add $needed 1)) -}}
{{- end -}}
{{- end -}}
{{- $pdb := $v.podDisruptionBudget -}}
{{- if $pdb.enabled -}}
{{- $min := get $pdb "minAvailable" -}}
{{- $max := get $pdb "maxUnavailable" -}}
{{- if and (ne (toString $min) "") (ne (toString $max) "") (not (kindIs "invalid" $min)) (not (kindIs "invalid" $max)) -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
{{- if and (not (kindIs "invalid" $min)) (not (kindIs "string" $min)) (ne (toString $min) "") -}}
{{- if ge (int64 $min) (int64 $v.deployment.replicas) -}}
{{- fail (printf "podDisruptionBudget.minAvailable: %d with deployment.replicas %d blocks every voluntary eviction (node drains never finish); lower it or use maxUnavailable" (int64 $min) (int64 $v.deployment.replicas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if and $v.metrics.prometheus.serviceMonitor.enabled (not $v.metrics.prometheus.enabled) -}}
{{- fail "metrics.prometheus.serviceMonitor.enabled: the ServiceMonitor scrapes /metrics, which metrics.prometheus.enabled: false turns off" -}}
{{- end -}}
{{- $access := $v.logs.access -}}
{{- if $access.filePath -}}
{{- if not (hasPrefix "/" $access.filePath) -}}
{{- fail (printf "logs.access.filePath: %q must be an absolute path (an emptyDir is mounted at its directory)" $access.filePath) -}}
{{- end -}}
{{- $dir := dir $access.filePath -}}
{{- if or (eq $dir "/") (hasPrefix (include "traverse.configDir" .) $dir) (hasPrefix $dir (include "traverse.configDir" .)) (hasPrefix (include "traverse.tlsDir" .) $dir) -}}
{{- fail (printf "logs.access.filePath: %q cannot be written there; use a directory of its own, e.g. /var/log/traverse/access.log" $access.filePath) -}}
{{- end -}}
{{- end -}}
{{- range $field := list "general" "headers" -}}
{{- $selection := default (dict) (get $access.fields $field) -}}
{{- if and (hasKey $selection "defaultmode") (hasKey $selection "defaultMode") (ne (toString $selection.defaultmode) (toString $selection.defaultMode)) -}}
{{- fail (printf "logs.access.fields.%s: defaultmode (%v) and defaultMode (%v) disagree; keep one" $field $selection.defaultmode $selection.defaultMode) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The gateway's configuration (docs/configuration.md), as YAML.
*/}}
{{- define "traverse.config" -}}
{{- $v := .Values -}}
{{- $config := dict "role" $v.role "cluster" (dict "name" (include "traverse.clusterName" .)) -}}
{{- $tlsDir := include "traverse.tlsDir" . -}}

{{- /* Entrypoints */ -}}
{{- $entryPoints := dict -}}
{{- if $v.entryPoints.web.enabled -}}
{{- $_ := set $entryPoints "web" (include "traverse.entryPoint" (list "web" $v.entryPoints.web false (dict)) | fromYaml) -}}
{{- end -}}
{{- if $v.entryPoints.websecure.enabled -}}
{{- $websecure := include "traverse.entryPoint" (list "websecure" $v.entryPoints.websecure false (dict)) | fromYaml -}}
{{- /* Certificates from resources only. */ -}}
{{- $_ := set $websecure "tls" (dict) -}}
{{- $_ := set $entryPoints "websecure" $websecure -}}
{{- end -}}
{{- if eq $v.role "child" -}}
{{- $tls := dict -}}
{{- if $v.entryPoints.multicluster.tls.secretName -}}
{{- $tls = dict "cert" (printf "%s/uplink/tls.crt" $tlsDir) "key" (printf "%s/uplink/tls.key" $tlsDir) -}}
{{- if $v.entryPoints.multicluster.tls.clientCASecretName -}}
{{- $_ := set $tls "clientCA" (printf "%s/parents/ca.crt" $tlsDir) -}}
{{- end -}}
{{- end -}}
{{- $uplink := omit $v.entryPoints.multicluster "tls" -}}
{{- $_ := set $entryPoints "multicluster" (include "traverse.entryPoint" (list "multicluster" $uplink true $tls) | fromYaml) -}}
{{- end -}}
{{- $_ := set $config "entryPoints" $entryPoints -}}
{{- $_ := set $config "admin" (dict "address" (printf "0.0.0.0:%d" (int64 $v.admin.port))) -}}

{{- /* The Kubernetes provider */ -}}
{{- $k := $v.providers.kubernetes -}}
{{- $kubernetes := dict "leaderElection" (dict "name" (include "traverse.leaseName" .) "namespace" (include "traverse.leaseNamespace" .) "leaseDuration" (include "traverse.duration" (list "providers.kubernetes.leaderElection.leaseDuration" (default "15s" $k.leaderElection.leaseDuration)))) -}}
{{- if $k.namespaces -}}
{{- $_ := set $kubernetes "namespaces" (uniq $k.namespaces) -}}
{{- end -}}
{{- if $k.labelSelector -}}
{{- $_ := set $kubernetes "labelSelector" $k.labelSelector -}}
{{- end -}}
{{- if $k.ingressClass -}}
{{- $_ := set $kubernetes "ingressClass" $k.ingressClass -}}
{{- end -}}
{{- if $k.allowCrossNamespace -}}
{{- $_ := set $kubernetes "allowCrossNamespace" true -}}
{{- end -}}
{{- if $k.throttle -}}
{{- $_ := set $kubernetes "throttle" (include "traverse.duration" (list "providers.kubernetes.throttle" $k.throttle)) -}}
{{- end -}}
{{- $_ := set $config "providers" (dict "kubernetes" $kubernetes) -}}

{{- /* Process settings */ -}}
{{- if $v.upstream -}}
{{- $_ := set $config "upstream" (include "traverse.withDurations" (list "upstream" $v.upstream (list "connectTimeout" "readTimeout" "writeTimeout" "idleTimeout")) | fromYaml) -}}
{{- end -}}
{{- if $v.server -}}
{{- $_ := set $config "server" $v.server -}}
{{- end -}}
{{- $_ := set $config "shutdown" (dict "drainDelay" (include "traverse.duration" (list "shutdown.drainDelay" $v.shutdown.drainDelay)) "gracePeriod" (include "traverse.duration" (list "shutdown.gracePeriod" $v.shutdown.gracePeriod))) -}}

{{- /* Multicluster (parents) */ -}}
{{- if eq $v.role "parent" -}}
{{- $mc := $v.multicluster -}}
{{- $children := dict -}}
{{- range $name, $child := $mc.children -}}
{{- $out := dict "address" (toString $child.address) -}}
{{- $tls := default (dict) (get $child "tls") -}}
{{- if get $tls "enabled" -}}
{{- $block := dict -}}
{{- if get $tls "serverName" -}}
{{- $_ := set $block "serverName" $tls.serverName -}}
{{- end -}}
{{- $ca := default $mc.tls.caSecretName (get $tls "caSecretName") -}}
{{- if $ca -}}
{{- $_ := set $block "ca" (printf "%s/children/%s/ca.crt" $tlsDir $ca) -}}
{{- end -}}
{{- if $mc.tls.clientCertSecretName -}}
{{- $_ := set $block "cert" (printf "%s/client/tls.crt" $tlsDir) -}}
{{- $_ := set $block "key" (printf "%s/client/tls.key" $tlsDir) -}}
{{- end -}}
{{- if get $tls "insecureSkipVerify" -}}
{{- $_ := set $block "insecureSkipVerify" true -}}
{{- end -}}
{{- $_ := set $out "tls" $block -}}
{{- end -}}
{{- $_ := set $children $name $out -}}
{{- end -}}
{{- $multicluster := dict "children" $children -}}
{{- if $mc.sourceClusterHeader -}}
{{- $_ := set $multicluster "sourceClusterHeader" $mc.sourceClusterHeader -}}
{{- end -}}
{{- if $mc.maxHops -}}
{{- $_ := set $multicluster "maxHops" (int64 $mc.maxHops) -}}
{{- end -}}
{{- if $mc.healthCheck -}}
{{- $_ := set $multicluster "healthCheck" (include "traverse.withDurations" (list "multicluster.healthCheck" $mc.healthCheck (list "interval" "timeout")) | fromYaml) -}}
{{- end -}}
{{- if $mc.passiveHealthCheck -}}
{{- $_ := set $multicluster "passiveHealthCheck" (include "traverse.withDurations" (list "multicluster.passiveHealthCheck" $mc.passiveHealthCheck (list "ejectionTime")) | fromYaml) -}}
{{- end -}}
{{- $_ := set $config "multicluster" $multicluster -}}
{{- end -}}

{{- /* Tracing */ -}}
{{- $t := $v.tracing -}}
{{- $tracing := dict "serviceName" (include "traverse.serviceName" .) -}}
{{- if not (kindIs "invalid" (get $t "sampleRate")) -}}
{{- if or (lt (float64 $t.sampleRate) 0.0) (gt (float64 $t.sampleRate) 1.0) -}}
{{- fail (printf "tracing.sampleRate: %v is not between 0.0 and 1.0" $t.sampleRate) -}}
{{- end -}}
{{- $_ := set $tracing "sampleRate" (float64 $t.sampleRate) -}}
{{- end -}}
{{- if $t.addInternals -}}
{{- $_ := set $tracing "addInternals" true -}}
{{- end -}}
{{- if $t.resourceAttributes -}}
{{- $_ := set $tracing "resourceAttributes" (include "traverse.stringMap" $t.resourceAttributes | fromYaml) -}}
{{- end -}}
{{- if $t.traceIdResponseHeader -}}
{{- $_ := set $tracing "traceIdResponseHeader" $t.traceIdResponseHeader -}}
{{- end -}}
{{- $otlp := include "traverse.otlp" (list "tracing.otlp" $t.otlp) -}}
{{- if $otlp -}}
{{- $_ := set $tracing "otlp" (fromYaml $otlp) -}}
{{- end -}}
{{- if $t.queue -}}
{{- $_ := set $tracing "queue" (include "traverse.withDurations" (list "tracing.queue" $t.queue (list "scheduleDelay")) | fromYaml) -}}
{{- end -}}
{{- $_ := set $config "tracing" $tracing -}}

{{- /* Metrics */ -}}
{{- $m := $v.metrics -}}
{{- $p := $m.prometheus -}}
{{- $metrics := dict "prometheus" (dict "enabled" $p.enabled "addEntryPointsLabels" $p.addEntryPointsLabels "addRoutersLabels" $p.addRoutersLabels "addServicesLabels" $p.addServicesLabels) -}}
{{- $push := dict "addEntryPointsLabels" $m.otlp.addEntryPointsLabels "addRoutersLabels" $m.otlp.addRoutersLabels "addServicesLabels" $m.otlp.addServicesLabels -}}
{{- $otlp = include "traverse.otlp" (list "metrics.otlp" $m.otlp) -}}
{{- if $otlp -}}
{{- $push = merge $push (fromYaml $otlp) -}}
{{- end -}}
{{- if $m.otlp.pushInterval -}}
{{- $_ := set $push "pushInterval" (include "traverse.duration" (list "metrics.otlp.pushInterval" $m.otlp.pushInterval)) -}}
{{- end -}}
{{- if $m.otlp.serviceName -}}
{{- $_ := set $push "serviceName" $m.otlp.serviceName -}}
{{- end -}}
{{- $_ := set $metrics "otlp" $push -}}
{{- $_ := set $config "metrics" $metrics -}}

{{- /* Logs */ -}}
{{- $arguments := include "traverse.arguments" . | fromYaml -}}
{{- $l := $v.logs -}}
{{- $logs := dict -}}
{{- $general := include "traverse.otlpValues" (list "logs.general.otlp" $l.general.otlp $arguments.general) | fromYaml -}}
{{- $otlp = include "traverse.otlp" (list "logs.general.otlp" $general) -}}
{{- if $otlp -}}
{{- $_ := set $logs "general" (dict "otlp" (fromYaml $otlp)) -}}
{{- end -}}
{{- $a := $l.access -}}
{{- $access := dict "enabled" (and $a.enabled true) -}}
{{- if $a.enabled -}}
{{- if not (has (toString $a.format) (list "common" "json" "")) -}}
{{- fail (printf "logs.access.format: %q is not common or json" (toString $a.format)) -}}
{{- end -}}
{{- if $a.format -}}
{{- $_ := set $access "format" $a.format -}}
{{- end -}}
{{- if $a.filePath -}}
{{- $_ := set $access "filePath" $a.filePath -}}
{{- end -}}
{{- if $a.addInternals -}}
{{- $_ := set $access "addInternals" true -}}
{{- end -}}
{{- if get $a "bufferSize" -}}
{{- $_ := set $access "bufferSize" (int64 $a.bufferSize) -}}
{{- end -}}
{{- if $a.filters -}}
{{- $filters := deepCopy $a.filters -}}
{{- if get $filters "statusCodes" -}}
{{- $codes := list -}}
{{- range $filters.statusCodes -}}
{{- $codes = append $codes (toString .) -}}
{{- end -}}
{{- $_ := set $filters "statusCodes" $codes -}}
{{- end -}}
{{- if get $filters "minDuration" -}}
{{- $_ := set $filters "minDuration" (include "traverse.duration" (list "logs.access.filters.minDuration" $filters.minDuration)) -}}
{{- end -}}
{{- $_ := set $access "filters" $filters -}}
{{- end -}}
{{- $fields := dict -}}
{{- range $field := list "general" "headers" -}}
{{- $selection := default (dict) (get $a.fields $field) -}}
{{- $out := dict -}}
{{- $mode := coalesce (get $selection "defaultMode") (get $selection "defaultmode") -}}
{{- if $mode -}}
{{- $allowed := ternary (list "keep" "drop") (list "keep" "drop" "redact") (eq $field "general") -}}
{{- if not (has (lower (toString $mode)) $allowed) -}}
{{- fail (printf "logs.access.fields.%s.defaultmode: %q is not %s" $field (toString $mode) (join " or " $allowed)) -}}
{{- end -}}
{{- $_ := set $out "defaultMode" (lower (toString $mode)) -}}
{{- end -}}
{{- if get $selection "names" -}}
{{- $_ := set $out "names" $selection.names -}}
{{- end -}}
{{- if $out -}}
{{- $_ := set $fields $field $out -}}
{{- end -}}
{{- end -}}
{{- if $fields -}}
{{- $_ := set $access "fields" $fields -}}
{{- end -}}
{{- end -}}
{{- $accessOtlp := include "traverse.otlpValues" (list "logs.access.otlp" $a.otlp $arguments.access) | fromYaml -}}
{{- $otlp = include "traverse.otlp" (list "logs.access.otlp" $accessOtlp) -}}
{{- if and $otlp $a.enabled -}}
{{- $_ := set $access "otlp" (fromYaml $otlp) -}}
{{- end -}}
{{- $_ := set $logs "access" $access -}}
{{- $_ := set $config "logs" $logs -}}
{{- toYaml (pick $config "role" "cluster") }}
{{ toYaml (omit $config "role" "cluster") -}}
{{- end -}}

{{/*
RUST_LOG for logs.general.level (or --log.level in additionalArguments); empty when unset.
*/}}
{{- define "traverse.logFilter" -}}
{{- $arguments := include "traverse.arguments" . | fromYaml -}}
{{- $level := lower (toString (default "" .Values.logs.general.level)) -}}
{{- $fromArguments := lower (toString (default "" (get $arguments "level"))) -}}
{{- if and $level $fromArguments (ne $level $fromArguments) -}}
{{- fail (printf "logs.general.level is %q but additionalArguments set --log.level=%s: keep one" $level $fromArguments) -}}
{{- end -}}
{{- $level = default $fromArguments $level -}}
{{- $level = get (dict "warning" "warn" "fatal" "error" "panic" "error") $level | default $level -}}
{{- if $level -}}
{{- if not (has $level (list "trace" "debug" "info" "warn" "error")) -}}
{{- fail (printf "logs.general.level: %q is not trace, debug, info, warn or error" $level) -}}
{{- end -}}
{{- if has $level (list "trace" "debug" "info") -}}
{{- printf "%s,pingora_core=warn,pingora_proxy=warn,pingora=warn,hyper=warn,hyper_util=warn,h2=warn,tonic=warn,rustls=warn" $level -}}
{{- else -}}
{{- $level -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the value given (checked by traverse.validate), else
drainDelay + gracePeriod + 10s.
*/}}
{{- define "traverse.terminationGracePeriod" -}}
{{- $given := get .Values.deployment "terminationGracePeriodSeconds" -}}
{{- if and (not (kindIs "invalid" $given)) (ne (toString $given) "") -}}
{{- int64 $given -}}
{{- else -}}
{{- $drain := include "traverse.seconds" (list "shutdown.drainDelay" .Values.shutdown.drainDelay) | int64 -}}
{{- $grace := include "traverse.seconds" (list "shutdown.gracePeriod" .Values.shutdown.gracePeriod) | int64 -}}
{{- add $drain $grace 10 -}}
{{- end -}}
{{- end -}}
