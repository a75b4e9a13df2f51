package jwt

import (
	"net/http"
	"strconv"

	"github.com/rampart-gw/rampart/internal/exchange"
)

// failure is why a request's token was refused: the message of the JSON
// body (never the token itself), the result label of
// rampart_jwt_verifications_total and the WWW-Authenticate challenge.
type failure struct {
	result    string
	msg       string
	challenge []string
}

// realm is the protection space named in every challenge.
const realm = `Bearer realm="rampart"`

// fail makes a failure. A request without a token gets a challenge
// without an error code (RFC 6750, section 3.1); any other failure
// invalid_token, with msg as error_description, less the characters
// section 3 forbids there.
func fail(result, msg string) *failure {
	ch := realm
	if result != "missing" {
		ch += `, error="invalid_token", error_description="` + description(msg) + `"`
	}
	return &failure{result: result, msg: msg, challenge: []string{ch}}
}

var (
	failMissing    = fail("missing", "missing bearer token")
	failAmbiguous  = fail("malformed", "more than one token in the request")
	failTooLarge   = fail("malformed", "token too large (at most "+strconv.Itoa(MaxTokenBytes)+" bytes)")
	failMalformed  = fail("malformed", "malformed token")
	failAlg        = fail("algorithm", "token signing algorithm not accepted")
	failNoKeys     = fail("no_keys", "signing keys unavailable: the key set could not be read yet")
	failUnknownKey = fail("unknown_key", "token signed by an unknown key")
	failKeyAlg     = fail("algorithm", "no key for the token's signing algorithm")
	failSignature  = fail("signature", "invalid token signature")
	failExpired    = fail("expired", "token expired")
	failNotYet     = fail("not_yet_valid", "token not valid yet")
	failIssuedAt   = fail("not_yet_valid", "token issued in the future")
	failIssuer     = fail("issuer", "token issuer not accepted")
	failAudience   = fail("audience", "token audience not accepted")
	failClaims     = fail("claims", "invalid token claims")
)

// missingClaim is the failure of a token without a required claim. Claim
// names come from the config, never from the token.
func missingClaim(name string) *failure {
	return fail("claims", "token lacks the required claim "+strconv.Quote(name))
}

// description keeps the characters RFC 6750 (section 3) allows in
// error_description: printable ASCII except '"' and '\'.
func description(msg string) string {
	b := make([]byte, 0, len(msg))
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b = append(b, c)
		}
	}
	return string(b)
}

// resultNames are the result labels, for resolving the counters once.
var resultNames = []string{"ok", "cached", "missing", "malformed", "algorithm", "no_keys", "unknown_key",
	"signature", "expired", "not_yet_valid", "issuer", "audience", "claims"}

// refuse answers 401 unauthenticated with the failure's challenge.
func (p *JWT) refuse(w http.ResponseWriter, r *http.Request, f *failure) {
	w.Header()["Www-Authenticate"] = f.challenge
	exchange.Error(w, r, http.StatusUnauthorized, "unauthenticated", f.msg)
}
