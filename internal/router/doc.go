// Package router picks the route for a request. New compiles the match
// conditions of every route once; Match then answers with the index of the
// winning route, or -1, without allocating. A Router is immutable after New
// and safe for concurrent use, so a config snapshot can share one across all
// requests.
//
// # Conditions
//
// A route matches when all of its conditions hold:
//
//   - Hosts: each entry is an exact name ("api.example.com") or a wildcard
//     ("*.example.com") that matches any name ending in ".example.com" with at
//     least one more label in front, never "example.com" itself; the grammar
//     is config.ParseHost's, the one Validate checks. Names are compared
//     ASCII case-insensitively; the request's port is ignored, and so are
//     the brackets of an IPv6 literal and one trailing dot. No hosts means
//     any host.
//   - Path, compared with the decoded path (r.URL.Path), case-sensitively:
//     exact (equal strings), prefix (plain string prefix, as in Envoy:
//     "/api" matches "/apis"), regex (Go regexp syntax; the whole path must
//     match, as if written ^(?:re)$) or template ("/u/{id}/{*rest}": {name}
//     is one non-empty segment, {*name} the rest of the path, possibly empty,
//     and may only be the last segment; "/u/{id}/{*rest}" matches "/u/1/" but
//     not "/u/1"; the grammar is config.ParseTemplate's). No path means
//     prefix "/".
//   - Methods: the request method must equal one of them; the configured
//     names are upper-cased, the request method is not.
//   - Headers: each named header (name case-insensitive) must be present with
//     exactly the given value as one of its values. The header map must use
//     canonical keys, as net/http produces.
//   - Query: each key must be present in the raw query with exactly the given
//     value as one of its values, decoded as url.ParseQuery does ("+" is a
//     space, %XX is a byte, pairs with a ";" or a bad escape are ignored).
//
// # Precedence
//
// When several routes match, the winner is decided by these keys in order:
//
//  1. Path rank: an exact path beats everything else. A prefix ranks by its
//     length and a regex or template by the length of its literal prefix
//     (below); the longer wins, and on equal lengths the prefix wins. So a
//     regex or template beats a prefix shorter than its literal (a catch-all
//     "/" included) and loses to one of equal or greater length, and a
//     longer literal beats a shorter one. Regexes and templates of equal
//     literal length rank equally, whatever their literal text.
//  2. Host rank: an exact host beats a wildcard, a longer wildcard suffix beats
//     a shorter one, and a wildcard beats a route without hosts. A route with
//     several hosts ranks by the best entry that matches the request.
//  3. More conditions: one each for hosts, path and methods when given, plus
//     one per header and per query key.
//  4. Earlier in config order.
//
// The literal prefix of a template is its text before the first variable
// ("/u/" for "/u/{id}"; the whole template if it has none). That of a regex
// is the text every match must start with as Go's regexp/syntax parser sees
// it: the leading case-sensitive literal characters after an optional ^,
// ending at the first character class, repetition (which takes its
// character along: "/items?" has "/item"), alternation the parser cannot
// factor, capture group, case-insensitive part or other anchor. Escaped
// characters are literal (`/a\.json` has "/a.json"). Literal returns it.
//
// A route whose path matches but whose other conditions fail is skipped and
// the next-best candidate is tried, so a GET to /users/1 falls back from a
// POST-only /users/ route to a / route.
//
// # Index
//
// Routes are indexed by host first (a map of exact names, a map keyed by
// wildcard suffix, and the any-host bucket), then by path inside each bucket:
// a map of exact paths, a byte-wise radix tree of prefixes walked along the
// request path (each node links to the nearest shorter prefix, giving the
// candidates longest first), and a second radix tree of regexes and templates
// keyed by their literal prefix, so that only those whose literal text starts
// the path are run. The two walks are merged by rank, longest first. Buckets are searched from the best host rank to the
// worst, and a later bucket only needs to beat the path rank already found,
// so most lookups touch a few map entries and one tree walk.
package router
