#!/usr/bin/env bash
# Installs the programs the test suite needs when they are missing. Nothing
# beyond Go is needed yet; later suites add redis-server, etcd and h2spec here.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
need=()
# for pkg in ...; do command -v ... >/dev/null || need+=(pkg); done
# test/reload runs a real etcd server (the control-plane tests).
command -v etcd >/dev/null || need+=(etcd-server)
if ((${#need[@]})); then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	else
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
	fi
fi
go version
