package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work one decode may do, so that a small document
// full of aliases ("billion laughs") cannot make the decoder run away.
const maxNodes = 1_000_000

// decoder turns a yaml.Node tree into Go values strictly, recording the
// position of every value it decodes and collecting every problem.
type decoder struct {
	file   string
	pos    map[string]Pos  // path -> position; nil when not wanted
	bad    map[string]bool // paths whose value failed to decode
	errs   Errors
	budget int
	spent  bool // the budget error has been reported
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, bad: map[string]bool{}, budget: maxNodes}
}

// DecodeNode decodes the mapping n strictly into the struct that v points
// to, with the same rules as Parse: unknown keys, duplicate keys and values
// of the wrong type are errors positioned in file. path is the prefix of
// the paths in the errors (for example "policies.auth"); skip names keys
// of n to ignore (for example "type"). Policy packages use it to decode
// Policy.Spec.
func DecodeNode(file string, n *yaml.Node, path string, v any, skip ...string) Errors {
	d := newDecoder(file)
	rv := reflect.ValueOf(v)
	if n == nil {
		return nil
	}
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return Errors{{Pos: d.at(n), Path: path, Msg: fmt.Sprintf("cannot decode into %T (want a non-nil pointer)", v)}}
	}
	d.decodeStruct(n, path, rv.Elem(), skip)
	d.errs.sort()
	return d.errs
}

func (d *decoder) at(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file, Line: 1, Col: 1}
	}
	return Pos{File: d.file, Line: n.Line, Col: n.Column}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.at(n), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fail reports a value that could not be decoded and remembers its path so
// that validation does not pile consequential errors on top.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errorf(n, path, format, args...)
	d.bad[path] = true
}

func (d *decoder) record(path string, n *yaml.Node) {
	if d.pos != nil {
		d.pos[path] = d.at(n)
	}
}

// spend charges one node against the budget; it reports false (once with
// an error) when the document is too big to decode.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.budget <= 0 {
		if !d.spent {
			d.spent = true
			d.fail(n, path, "document too complex (too many nodes or alias expansions)")
		}
		return false
	}
	d.budget--
	return true
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!int", "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	}
	return "string " + strconv.Quote(n.Value)
}

var (
	durationType  = reflect.TypeFor[Duration]()
	timeDurType   = reflect.TypeFor[time.Duration]()
	rateType      = reflect.TypeFor[Rate]()
	policyType    = reflect.TypeFor[Policy]()
	nodeType      = reflect.TypeFor[yaml.Node]()
	unmarshalType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// want names what a Go type expects, for "expected X, got Y" messages.
func want(t reflect.Type) string {
	switch t {
	case durationType, timeDurType:
		return "a duration (e.g. 250ms, 10s, 5m)"
	case rateType:
		return "a rate (N/s, N/m or N/h)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return want(t.Elem())
	}
	return "a value"
}

// decode decodes n into v, which must be settable. A null value is treated
// like an absent key: v keeps its zero value and no position is recorded,
// so that defaults apply.
func (d *decoder) decode(n *yaml.Node, path string, v reflect.Value) {
	n = resolve(n)
	if isNull(n) || !d.spend(n, path) {
		return
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(*n))
		d.record(path, n)
		return
	case t.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		if t.Elem() == nodeType {
			v.Set(reflect.ValueOf(n))
			d.record(path, n)
			return
		}
		d.decode(n, path, v.Elem())
		return
	case t == policyType:
		d.decodePolicy(n, path, v.Addr().Interface().(*Policy))
		return
	}
	d.record(path, n)

	if t == durationType || t == timeDurType || t == rateType || reflect.PointerTo(t).Implements(unmarshalType) {
		if n.Kind != yaml.ScalarNode || (t != rateType && n.ShortTag() == "!!bool") {
			d.fail(n, path, "expected %s, got %s", want(t), describe(n))
			return
		}
		if t == timeDurType {
			dur, err := ParseDuration(n.Value)
			if err != nil {
				d.fail(n, path, "%v", err)
				return
			}
			v.SetInt(int64(dur))
			return
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.fail(n, path, "%v", err)
		}
		return
	}

	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || err != nil {
			d.fail(n, path, "expected a boolean (true or false), got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := d.integer(n, path)
		if !ok {
			return
		}
		if v.OverflowInt(i) {
			d.fail(n, path, "integer %s out of range", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := d.integer(n, path)
		if !ok {
			return
		}
		if i < 0 || v.OverflowUint(uint64(i)) {
			d.fail(n, path, "integer %s out of range", n.Value)
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") {
			d.fail(n, path, "expected a number, got %s", describe(n))
			return
		}
		f, err := parseFloat(n.Value)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || v.OverflowFloat(f) {
			d.fail(n, path, "expected a finite number, got %s", n.Value)
			return
		}
		v.SetFloat(f)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, path+"["+strconv.Itoa(i)+"]", s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, path, v)
	case reflect.Struct:
		d.decodeStruct(n, path, v, nil)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.fail(n, path, "cannot decode into %s", t)
			return
		}
		pv := plain(n, &d.budget, 0)
		if pv != nil {
			v.Set(reflect.ValueOf(pv))
		}
	default:
		d.fail(n, path, "cannot decode into %s", t)
	}
}

var allDigits = regexp.MustCompile(`^[-+]?[0-9]+$`)

// integer reads an integer scalar; floats, strings and other kinds are
// errors.
func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" && allDigits.MatchString(n.Value) {
		d.fail(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(n, path, "expected an integer, got %s", describe(n))
		return 0, false
	}
	i, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil {
		i, err = strconv.ParseInt(n.Value, 0, 64)
	}
	if err != nil {
		d.fail(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return i, true
}

func parseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case ".inf", ".nan":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 0, 64); ierr == nil {
			return float64(i), nil
		}
	}
	return f, err
}

// pairs walks the key/value pairs of mapping n, reporting keys that are not
// strings, merge keys and duplicates; fn is called for the others.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "mapping keys must be strings, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k, path, "merge keys (<<) are not supported; repeat the keys instead")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, path, "duplicate key %q (first at line %d, column %d)", k.Value, first.Line, first.Column)
			continue
		}
		seen[k.Value] = k
		fn(k.Value, k, val)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeMap decodes a mapping into a map with string keys. The position
// recorded for "path.key" is that of the key.
func (d *decoder) decodeMap(n *yaml.Node, path string, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	if t.Key().Kind() != reflect.String {
		d.fail(n, path, "cannot decode into %s", t)
		return
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	d.pairs(n, path, func(key string, k, val *yaml.Node) {
		p := join(path, key)
		e := reflect.New(t.Elem()).Elem()
		if e.Kind() == reflect.Pointer {
			// An entry written without a value ("users:") still exists;
			// validation then says what it lacks.
			e.Set(reflect.New(t.Elem().Elem()))
		}
		d.decode(val, p, e)
		d.record(p, k)
		m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
	})
	v.Set(m)
}

// field is one decodable struct field.
type field struct {
	name  string
	index []int
}

var fieldCache sync.Map // reflect.Type -> []field

// fields lists the decodable fields of a struct type by their yaml names,
// flattening ",inline" structs.
func fields(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && sf.Type.Kind() == reflect.Struct {
			for _, f := range fields(sf.Type) {
				fs = append(fs, field{name: f.name, index: append([]int{i}, f.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		fs = append(fs, field{name: name, index: []int{i}})
	}
	fieldCache.Store(t, fs)
	return fs
}

func (d *decoder) decodeStruct(n *yaml.Node, path string, v reflect.Value, skip []string) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	d.record(path, n)
	fs := fields(v.Type())
	d.pairs(n, path, func(key string, k, val *yaml.Node) {
		if slices.Contains(skip, key) {
			return
		}
		i := slices.IndexFunc(fs, func(f field) bool { return f.name == key })
		if i < 0 {
			names := make([]string, 0, len(fs))
			for _, f := range fs {
				names = append(names, f.name)
			}
			d.errorf(k, path, "unknown key %q%s", key, suggest(key, names))
			return
		}
		d.decode(val, join(path, key), v.FieldByIndex(fs[i].index))
	})
}

// decodePolicy keeps the whole mapping in Spec and decodes only its type;
// the policy's package decodes the rest. The positions of the other keys
// are recorded all the same, so that later errors can point at them.
func (d *decoder) decodePolicy(n *yaml.Node, path string, p *Policy) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	p.Spec = n
	d.record(path, n)
	d.walk(n, path, 0)
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == "type" {
			d.decode(n.Content[i+1], join(path, "type"), reflect.ValueOf(&p.Type).Elem())
		}
	}
}

// walk records the positions of everything under n without decoding it.
func (d *decoder) walk(n *yaml.Node, path string, depth int) {
	n = resolve(n)
	if n == nil || depth > 100 || !d.spend(n, path) {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode {
				p := join(path, k.Value)
				d.record(p, n.Content[i+1])
				d.walk(n.Content[i+1], p, depth+1)
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			d.record(p, item)
			d.walk(item, p, depth+1)
		}
	}
}

// plain converts a node into plain Go values (map[string]any, []any,
// string, int64, float64, bool, nil) as encoding/json would produce them.
// budget bounds the work across aliases.
func plain(n *yaml.Node, budget *int, depth int) any {
	n = resolve(n)
	if n == nil || depth > 100 || *budget <= 0 {
		return nil
	}
	*budget--
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := resolve(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode {
				m[k.Value] = plain(n.Content[i+1], budget, depth+1)
			}
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = plain(item, budget, depth+1)
		}
		return s
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			if b, err := strconv.ParseBool(n.Value); err == nil {
				return b
			}
		case "!!int":
			if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
				return i
			}
			if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return i
			}
		case "!!float":
			if f, err := parseFloat(n.Value); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f
			}
		}
		return n.Value
	}
	return nil
}

// suggest returns ` (did you mean "x"?)` when one of names is close to s.
func suggest(s string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		dist := levenshtein(strings.ToLower(s), strings.ToLower(n))
		if dist == 0 && s != n {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
		if dist > 0 && (best == "" || dist < bestD) {
			best, bestD = n, dist
		}
	}
	if best == "" || bestD > max(1, min(len(s), len(best))/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
