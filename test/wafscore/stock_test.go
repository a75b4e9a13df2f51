package wafscore

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"
)

// stockServer starts the reference: stock Coraza's net/http
// middleware (txhttp.WrapHandler) with the configuration Coraza's own
// documentation gives (its recommended engine settings, then the CRS
// set-up and rules, PL1 defaults), in front of an echo handler, on Go's
// net/http server on 127.0.0.1. It returns the server's URL. Scored side
// by side with the waf policy, it shows which findings are the CRS's own.
func stockServer(t *testing.T) string {
	t.Helper()
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives("Include @coraza.conf-recommended\nSecRuleEngine On\nInclude @crs-setup.conf.example\nInclude @owasp_crs/*.conf\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(txhttp.WrapHandler(w, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok\n")
	})))
	t.Cleanup(srv.Close)
	return srv.URL
}
