// Package wafscore scores the waf and sanitize policies with gotestwaf
// (github.com/wallarm/gotestwaf): a real gateway, in-process on
// 127.0.0.1, in front of an echo upstream, one run per config. It needs
// the gotestwaf binary and its testcases folder, which `make waf-score`
// builds from the tools/gotestwaf module (so the gateway's go.mod never
// gains gotestwaf's dependencies) and passes in RAMPART_GOTESTWAF and
// RAMPART_GOTESTWAF_CASES; without them the test is skipped. Not in CI:
// a run takes minutes (docs/security.md).
package wafscore
