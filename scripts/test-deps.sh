#!/usr/bin/env bash
# Installs the programs the test suite needs when they are missing.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
need=()
# for pkg in ...; do command -v ... >/dev/null || need+=(pkg); done
# The store redis rate-limit tests and internal/l4 (Redis behind the TCP proxy)
# run real redis-server processes.
command -v redis-server >/dev/null || need+=(redis-server)
# redis-cli --cluster create builds the Redis Cluster of the accuracy tests.
command -v redis-cli >/dev/null || need+=(redis-tools)
# test/reload runs a real etcd server (the control-plane tests).
command -v etcd >/dev/null || need+=(etcd-server)
# test/dashboard renders the admin dashboard in headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
# deploy/prometheus runs promtool on the alert rules; deploy/grafana runs a
# real Prometheus against a real gateway (one Debian package has both).
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need+=(prometheus)
if ((${#need[@]})); then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	fi
fi
# test/conformance runs h2spec against the h2c listener; it is built from the
# version pinned in test/conformance/tools/go.mod (kept out of the main go.mod).
if ! command -v h2spec >/dev/null && [ ! -x "$(go env GOPATH)/bin/h2spec" ]; then
	(cd "$(dirname "$0")/../test/conformance/tools" &&
		go build -o "$(go env GOPATH)/bin/h2spec" github.com/summerwind/h2spec/cmd/h2spec)
fi
go version
