package waf

import "github.com/corazawaf/coraza/v3/types"

// SetTestHooks makes every WAF built from now on load pre before the CRS
// set-up and report each logged rule match to onMatch (for the CRS
// regression suite in crs_test.go). Call it before starting a gateway;
// the returned func restores the previous hooks.
func SetTestHooks(pre string, onMatch func(types.MatchedRule)) (restore func()) {
	cache.Lock()
	old := testHooks
	testHooks.pre, testHooks.onMatch = pre, onMatch
	cache.Unlock()
	return func() {
		cache.Lock()
		testHooks = old
		cache.Unlock()
	}
}
