package waf

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A prefilter is a necessary condition for a regexp to match, derived
// from its syntax tree: an input it rejects cannot match, so the regexp
// need not run. It is
//
//   - a minimum length in bytes (every match consumes at least that), and
//   - up to maxConds conditions that must all hold, each "at least one of
//     these occurs in the input": a set of literals (strings.Contains, or
//     an ASCII case-insensitive search for the literals of a (?i) part) or
//     a set of bytes.
//
// The derivation only ever keeps conditions that hold for every match
// (see need), so a prefilter can make a regexp run when it would not have
// matched (a cost) but never skip one that would have (a miss). The fuzz
// target FuzzPrefilter checks exactly that against every CRS pattern.
type prefilter struct {
	minLen int
	conds  []*cond
}

// cond is "at least one of lits, or one byte of set, occurs".
type cond struct {
	lits []lit
	set  *[256]bool
	// small are set's bytes when there are few (searched with IndexByte).
	small []byte
	// foldAny is whether a literal is matched case-insensitively: inputs
	// with a byte >= 0x80 then always pass (Unicode folding maps k and s
	// to non-ASCII runes, K and ſ, that an ASCII search does not see).
	foldAny bool
	cost    float64
}

// lit is a required literal; fold: lowercase ASCII, matched ignoring
// ASCII case.
type lit struct {
	s    string
	fold bool
}

const (
	maxConds = 3
	maxLits  = 16
)

// newPrefilter derives the prefilter of expr (as regexp.Compile parses
// it) or returns nil when it would reject nothing useful.
func newPrefilter(expr string) *prefilter {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	p := &prefilter{minLen: minLen(re)}
	// Even a condition most values meet is kept: checking it costs a
	// scan to its first hit, short for the values that meet it, and it
	// saves the regexp for those that do not (a 64 KB field of digits
	// against an alternation of SQL words and operators).
	p.conds = need(re)
	if len(p.conds) == 0 && p.minLen < 2 {
		return nil
	}
	return p
}

// may reports whether s can match: false only when it cannot.
func (p *prefilter) may(s string) bool {
	if len(s) < p.minLen {
		return false
	}
	for _, c := range p.conds {
		if !c.in(s) {
			return false
		}
	}
	return true
}

// in reports whether s meets c.
func (c *cond) in(s string) bool {
	if c.set != nil {
		if c.small != nil {
			for _, b := range c.small {
				if strings.IndexByte(s, b) >= 0 {
					return true
				}
			}
			return false
		}
		for i := 0; i < len(s); i++ {
			if c.set[s[i]] {
				return true
			}
		}
		return false
	}
	if c.foldAny && !isASCII(s) {
		return true
	}
	for _, l := range c.lits {
		if l.fold {
			if containsFold(s, l.s) {
				return true
			}
		} else if strings.Contains(s, l.s) {
			return true
		}
	}
	return false
}

// need returns conditions every match of re meets (all of them), the
// cheapest first, at most maxConds; none when it knows of none.
func need(re *syntax.Regexp) []*cond {
	switch re.Op {
	case syntax.OpLiteral:
		return []*cond{literalCond(re)}
	case syntax.OpCharClass:
		var set [256]bool
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
				set[r] = true
			}
			if hi >= utf8.RuneSelf {
				high(&set) // a multi-byte rune, or an invalid byte as U+FFFD
			}
		}
		return []*cond{setCond(&set)}
	case syntax.OpCapture, syntax.OpPlus:
		return need(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return need(re.Sub[0])
		}
		return nil
	case syntax.OpConcat:
		var all []*cond
		for _, sub := range re.Sub {
			all = append(all, need(sub)...)
		}
		slices.SortStableFunc(all, func(a, b *cond) int {
			switch {
			case a.cost < b.cost:
				return -1
			case a.cost > b.cost:
				return 1
			}
			return 0
		})
		return all[:min(len(all), maxConds)]
	case syntax.OpAlternate:
		// One branch matches: the union of each branch's best condition.
		var branches []*cond
		for _, sub := range re.Sub {
			n := need(sub)
			if len(n) == 0 {
				return nil
			}
			branches = append(branches, n[0])
		}
		return []*cond{union(branches)}
	default:
		// OpStar, OpQuest (may match nothing), OpAnyChar(NotNL) (any
		// byte), empty-width assertions and OpEmptyMatch: nothing known.
		// OpNoMatch never matches: nothing known is still safe.
		return nil
	}
}

// literalCond is the condition of a literal node: the literal itself,
// or, when it has a U+FFFD (which matches any invalid byte, not its own
// encoding), the bytes its first rune can start with.
func literalCond(re *syntax.Regexp) *cond {
	fold := re.Flags&syntax.FoldCase != 0
	s := string(re.Rune)
	if slices.Contains(re.Rune, utf8.RuneError) || fold && !isASCII(s) {
		var set [256]bool
		runeBytes(&set, re.Rune[0], fold)
		return setCond(&set)
	}
	if fold {
		s = strings.ToLower(s) // ASCII only here
	}
	l := lit{s: s, fold: fold}
	return &cond{lits: []lit{l}, foldAny: fold, cost: litCost(l)}
}

// runeBytes marks in set the bytes an occurrence of r (or, fold, of a
// rune in its case orbit) can start with.
func runeBytes(set *[256]bool, r rune, fold bool) {
	mark := func(r rune) {
		if r < utf8.RuneSelf {
			set[r] = true
		} else {
			high(set)
		}
	}
	mark(r)
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			mark(f)
		}
	}
}

// high marks every byte >= 0x80.
func high(set *[256]bool) {
	for b := utf8.RuneSelf; b < 256; b++ {
		set[b] = true
	}
}

// union is the condition "one of cs holds".
func union(cs []*cond) *cond {
	allLits, n := true, 0
	for _, c := range cs {
		if c.set != nil {
			allLits = false
		}
		n += len(c.lits)
	}
	if allLits && n <= maxLits {
		u := &cond{}
		for _, c := range cs {
			for _, l := range c.lits {
				if !slices.Contains(u.lits, l) {
					u.lits = append(u.lits, l)
					u.cost += litCost(l)
				}
			}
			u.foldAny = u.foldAny || c.foldAny
		}
		u.cost = min(u.cost, 1)
		return u
	}
	// A set of the bytes any of them starts with.
	var set [256]bool
	for _, c := range cs {
		if c.set != nil {
			for b, ok := range c.set {
				set[b] = set[b] || ok
			}
		}
		for _, l := range c.lits {
			r, _ := utf8.DecodeRuneInString(l.s)
			runeBytes(&set, r, l.fold)
		}
	}
	return setCond(&set)
}

// setCond makes a byte-set condition.
func setCond(set *[256]bool) *cond {
	c := &cond{set: set}
	for b, ok := range set {
		if ok {
			c.cost += byteFreq(byte(b))
			if len(c.small) <= 4 {
				c.small = append(c.small, byte(b))
			}
		}
	}
	if len(c.small) > 4 {
		c.small = nil
	}
	c.cost = min(c.cost, 1)
	return c
}

// byteFreq is a rough chance that a benign value of a few dozen bytes
// (a parameter, a header, a body field) contains b; it only ranks
// conditions, it decides nothing about safety.
func byteFreq(b byte) float64 {
	switch {
	case b >= 'a' && b <= 'z':
		return 0.25
	case b >= 'A' && b <= 'Z':
		return 0.08
	case b >= '0' && b <= '9':
		return 0.15
	case b == ' ':
		return 0.4
	case strings.IndexByte("-_.,:/=&%+", b) >= 0:
		return 0.1
	case b >= 0x80:
		return 0.001 // rare in API traffic; 128 of them cost 0.128
	case b < 0x20 || b == 0x7f:
		return 0.002
	default: // other punctuation: ; ' " < > ( ) | ` $ { } [ ] \ ! ? * # ^ ~ @
		return 0.02
	}
}

// litCost estimates the chance a value contains l.
func litCost(l lit) float64 {
	p := 4.0 // a few positions to start at
	for i := 0; i < len(l.s) && i < 4; i++ {
		f := byteFreq(l.s[i])
		if l.fold && l.s[i] >= 'a' && l.s[i] <= 'z' {
			f += byteFreq(l.s[i] - 'a' + 'A')
		}
		p *= f
	}
	return min(p, 1)
}

// minLen is a lower bound of the bytes any match of re consumes.
func minLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			return len(re.Rune) // a folded rune may be shorter (ſ, K): 1 each
		}
		n := 0
		for _, r := range re.Rune {
			if r == utf8.RuneError {
				n++ // matches one invalid byte
			} else {
				n += utf8.RuneLen(r)
			}
		}
		return n
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return 1
	case syntax.OpCapture, syntax.OpPlus:
		return minLen(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min * minLen(re.Sub[0])
	case syntax.OpConcat:
		n := 0
		for _, sub := range re.Sub {
			n += minLen(sub)
		}
		return n
	case syntax.OpAlternate:
		n := -1
		for _, sub := range re.Sub {
			if m := minLen(sub); n < 0 || m < n {
				n = m
			}
		}
		return max(n, 0)
	default:
		return 0
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// containsFold reports whether s contains needle (lowercase ASCII),
// ignoring ASCII case.
func containsFold(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	lo := needle[0]
	up := lo
	if lo >= 'a' && lo <= 'z' {
		up = lo - 'a' + 'A'
	}
	for i := 0; i+n <= len(s); {
		j := strings.IndexByte(s[i:len(s)-n+1], lo)
		if up != lo {
			if k := strings.IndexByte(s[i:len(s)-n+1], up); k >= 0 && (j < 0 || k < j) {
				j = k
			}
		}
		if j < 0 {
			return false
		}
		i += j
		if equalFold(s[i:i+n], needle) {
			return true
		}
		i++
	}
	return false
}

// equalFold compares a with b (lowercase ASCII) ignoring ASCII case.
func equalFold(a, b string) bool {
	for i := 0; i < len(b); i++ {
		c := a[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}
