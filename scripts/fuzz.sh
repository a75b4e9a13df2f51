#!/usr/bin/env bash
# Runs every Go fuzz target in the module for the given time each
# (default 10s): scripts/fuzz.sh 30s
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
t=${1:-10s}
cd "$(dirname "$0")/.."
fail=0
while IFS= read -r line; do
	file=${line%%:*}
	name=$(sed -E 's/^.*func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$line")
	pkg=./$(dirname "$file")
	echo "fuzz $pkg $name ($t)"
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$t" "$pkg" >/tmp/fuzz-$$.log 2>&1; then
		cat /tmp/fuzz-$$.log
		fail=1
	fi
done < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' . | grep -v '/bench/results/')
rm -f /tmp/fuzz-$$.log
exit $fail
