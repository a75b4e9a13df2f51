#!/usr/bin/env bash
# Cross-check of the waf policy's false positives against the reference
# engine: ModSecurity v3 (Debian's libmodsecurity3, C libinjection) with the
# same CRS files Rampart embeds (coraza-coreruleset v4.25.0) and the same
# engine settings, fed gotestwaf's 141 legitimate requests. Prints each
# request, the rules that matched and whether ModSecurity intervened.
# Not part of any test run: it needs `apt-get install libmodsecurity-dev gcc
# pkg-config`. Usage: test/wafscore/testdata/modsec/run.sh (from the repo root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
crs=$(cd "$root" && go list -m -f '{{.Dir}}' github.com/corazawaf/coraza-coreruleset/v4)/rules
cases=$(cd "$root/tools/gotestwaf" && go list -m -f '{{.Dir}}' github.com/wallarm/gotestwaf)/testcases
mkdir -p "$work/crs"
cp -r "$crs/@owasp_crs" "$work/crs/rules"
cp "$crs/@crs-setup.conf.example" "$work/crs/crs-setup.conf"
chmod -R u+w "$work/crs"
# ModSecurity 3.0.9's parser refuses a chained SecRule without an action
# list (CRS 4's 949111/959111 early-blocking chains): give it t:none.
sed -i 's/^\(    SecRule TX:EARLY_BLOCKING "@eq 1"\)\s*$/\1 "t:none"/' \
	"$work/crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf" "$work/crs/rules/RESPONSE-959-BLOCKING-EVALUATION.conf"
# The waf policy's engine settings and body processors (internal/policy/waf/rules.go).
cat >"$work/main.conf" <<CONF
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 131073
SecRequestBodyNoFilesLimit 131073
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',severity:2"
Include $work/crs/crs-setup.conf
Include $work/crs/rules/*.conf
CONF
gcc -O1 -o "$work/ms" "$here/ms.c" $(pkg-config --libs --cflags modsecurity)
(cd "$root" && go run "$here/gen.go" "$cases/false-pos/texts.yml") >"$work/fp.tsv"
MODSEC_CONF="$work/main.conf" "$work/ms" <"$work/fp.tsv"
echo "ModSecurity intervened on $(MODSEC_CONF="$work/main.conf" "$work/ms" <"$work/fp.tsv" | grep -c INTERVENTION) of $(wc -l <"$work/fp.tsv") legitimate requests"
