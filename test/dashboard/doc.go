// Package dashboard tests the admin dashboard in a real browser: the gateway
// runs in-process with real upstreams, takes some traffic (part of it 5xx),
// and headless Chromium renders http://ADMIN/dashboard/; the tests read the
// rendered DOM and check a screenshot.
//
// Chromium comes from scripts/test-deps.sh (Debian package chromium). Without
// it the browser tests are skipped, unless CI is set, when they fail.
package dashboard
