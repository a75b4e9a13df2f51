#!/usr/bin/env bash
# Checks docs/config.schema.json with yaml-language-server, the engine of
# VS Code's YAML extension and of other editors (they implement draft-07;
# the schema's own tests in internal/schema check 2020-12 and draft-07 with
# a Go validator). Not part of `make test`: it needs node and npm. Run it
# after changing how the schema is generated.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund \
	yaml-language-server@1.25.0 vscode-languageserver-textdocument@1.0.12 >/dev/null)
cp scripts/schema-editor-check.js "$work/"

# Configs the gateway takes must show no problem.
good=(examples/*.yaml internal/config/testdata/full.yaml internal/config/testdata/minimal.yaml
	internal/compile/testdata/basic.yaml test/e2e/testdata/good.yaml)
node "$work/schema-editor-check.js" docs/config.schema.json good "${good[@]}"

# Configs with one mistake each must show one.
base='listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: {app: {targets: [{address: "127.0.0.1:9"}]}}
routes: [{name: all, upstream: app}]'
i=0
while IFS= read -r line; do
	i=$((i + 1))
	printf '%s\n%s\n' "$base" "$line" >"$work/bad$i.yaml"
done <<'BAD'
listner: []
drain_timeout: 30
drain_timeout: -1s
admin: [a]
observability: {access_log: {format: text}}
cluster: {redis: {address: "127.0.0.1:6379", timeoutt: 1s}}
consumers: [{name: a, roles: admin}]
policies: {p: {type: firewall}}
policies: {p: {type: cors, allow_origins: ["*"], allow_origin: ["*"]}}
policies: {p: {type: api_key, any_of: [admin]}}
policies: {p: {type: rate_limit, rate: 0/s}}
policies: {p: {type: rate_limit, rate: 10/s, key: tenant}}
policies: {p: {type: jwt, algorithms: [HS256, HS256]}}
BAD
node "$work/schema-editor-check.js" docs/config.schema.json bad "$work"/bad*.yaml
