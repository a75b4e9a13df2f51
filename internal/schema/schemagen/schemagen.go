// Package schemagen writes the JSON Schema of the config file. The shape
// comes from the config types by reflection (their yaml keys, as Parse
// reads them), the enums from config.Vocabulary, the policies' keys from
// the Config structs compile registers, and the descriptions from the Go
// doc comments of each field, which state default and unit. Parse's
// leniencies are kept: every key may be null (as if absent), and a string
// key takes any scalar (port: 8080 is the string "8080").
//
// The schema only uses keywords that mean the same in draft-07, which
// editors' YAML support implements, and in draft 2020-12, which it
// declares.
package schemagen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/policy/jwt"
	"github.com/rampart-gw/rampart/internal/policy/ratelimit"
)

// Patterns of the scalar types Parse reads from text.
const (
	// DurationPattern is a Go duration that is not negative ("250ms",
	// "1h30m", "0").
	DurationPattern = `^\s*\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)\s*$`
	// RatePattern is N/s, N/m or N/h with N > 0.
	RatePattern = `^\s*\+?([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)([eE][-+]?[0-9]+)?\s*/\s*[smh]\s*$`
	// statusPattern is a status code 100-599 written as a string.
	statusPattern = `^\+?0*[1-5][0-9]{2}$`
)

var (
	durationType = reflect.TypeFor[config.Duration]()
	timeDurType  = reflect.TypeFor[time.Duration]()
	rateType     = reflect.TypeFor[config.Rate]()
	refreshType  = reflect.TypeFor[config.Refresh]()
	policyType   = reflect.TypeFor[config.Policy]()
	nodeType     = reflect.TypeFor[yaml.Node]()
)

// Generate returns the schema, indented, ending in a newline. root is the
// repository's root directory: the descriptions come from its Go sources.
func Generate(root string) ([]byte, error) {
	module := strings.TrimSuffix(reflect.TypeFor[config.Config]().PkgPath(), "/internal/config")
	g := &gen{
		docs:     newDocs(root, module),
		vocab:    config.Vocabulary(),
		reserved: map[string]string{},
		used:     map[string]bool{},
	}
	for _, r := range config.Reserved {
		path, value, ok := strings.Cut(r.Key, ": ")
		note := "Not available in this release."
		if ok {
			note = value + " is not available in this release."
		}
		g.reserved[path] += note
	}
	g.shapes = g.nodeShapes()

	s, err := g.structSchema(reflect.TypeFor[config.Config](), "", false)
	if err != nil {
		return nil, err
	}
	// Keywords of the document first.
	root0 := obj(
		"$schema", "https://json-schema.org/draft/2020-12/schema",
		"title", "Rampart configuration",
		"description", "The config file of the Rampart API gateway (rampart.yaml, or the same structure as JSON). "+
			"Print this schema with `rampart schema`; check a config with `rampart validate`, which also checks "+
			"what a schema cannot (references between keys, files, addresses).",
		"$comment", "Generated from the Go sources by `go generate ./internal/schema`; do not edit. "+
			"As the gateway's parser does, it takes null for any key (the same as leaving it out) and any scalar for a string.",
	)
	for _, k := range s.keys {
		if k != "type" {
			root0.set(k, s.get(k))
		}
	}
	root0.set("type", "object")

	for _, set := range []struct {
		what string
		keys []string
	}{{"vocabulary", slices.Collect(maps.Keys(g.vocab))}, {"reserved key", slices.Collect(maps.Keys(g.reserved))}, {"node shape", slices.Collect(maps.Keys(g.shapes))}} {
		for _, k := range set.keys {
			if !g.used[k] {
				return nil, fmt.Errorf("schemagen: %s %q names no key of the config", set.what, k)
			}
		}
	}

	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root0); err != nil {
		return nil, err
	}
	return scalarLists.ReplaceAllFunc(b.Bytes(), func(m []byte) []byte {
		items := strings.Fields(string(m[1 : len(m)-1]))
		return []byte("[" + strings.Join(items, " ") + "]")
	}), nil
}

// scalarLists are indented lists of scalars without spaces, which the
// schema has many of (["string", "null"]): one line each.
var scalarLists = regexp.MustCompile(`\[\n(\s+[^\s\[\]{}]+\n)+\s*\]`)

type gen struct {
	docs     *docs
	vocab    map[string][]string // key path -> choices
	reserved map[string]string   // key path -> note
	shapes   map[string]func() *object
	used     map[string]bool // key paths of vocab, reserved and shapes applied
}

// nodeShapes are the schemas of the keys whose values the Go types do not
// say: yaml.Node fields, decoded by hand, and retry.on, whose strings may
// be numbers. Paths of policy keys are "policies.*{TYPE}.KEY".
func (g *gen) nodeShapes() map[string]func() *object {
	return map[string]func() *object{
		"routes[].retry.on": func() *object {
			return obj("type", []string{"array", "null"}, "items", obj("anyOf", []any{
				obj("enum", config.RetryConditionNames()),
				obj("type", "integer", "minimum", 100, "maximum", 599),
				obj("type", "string", "pattern", statusPattern),
			}))
		},
		"policies.*{rate_limit}.key": func() *object {
			part := obj("type", "string", "pattern", ratelimit.KeyPattern)
			return obj("anyOf", []any{
				part,
				obj("type", "array", "items", part, "minItems", 1, "uniqueItems", true),
				obj("type", "null"),
			})
		},
		"policies.*{jwt}.algorithms": func() *object {
			return obj("type", []string{"array", "null"}, "minItems", 1, "uniqueItems", true,
				"items", obj("enum", jwt.Algorithms()))
		},
		"policies.*{jwt}.keys": func() *object {
			return obj("type", []string{"array", "null"}, "minItems", 1, "maxItems", jwt.MaxKeys,
				"items", obj("anyOf", []any{
					obj("type", "string", "description", "A PEM PUBLIC KEY or CERTIFICATE block."),
					obj("type", "object", "description", "A JWK ({kty, n, e, ...}), or {pem, kid, alg}."),
				}))
		},
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyName is the yaml key of a struct field ("" for none), and whether it
// is inlined, as config's decoder reads them.
func keyName(sf reflect.StructField) (string, bool) {
	if !sf.IsExported() {
		return "", false
	}
	name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "-" {
		return "", false
	}
	if slices.Contains(strings.Split(opts, ","), "inline") && sf.Type.Kind() == reflect.Struct {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(sf.Name)
	}
	return name, false
}

// structSchema describes struct t at path; nullable lets null stand for it.
func (g *gen) structSchema(t reflect.Type, path string, nullable bool) (*object, error) {
	td, err := g.docs.lookup(t.PkgPath(), t.Name())
	if err != nil {
		return nil, err
	}
	keys := map[string]string{}
	for i := range t.NumField() {
		if k, _ := keyName(t.Field(i)); k != "" {
			keys[t.Field(i).Name] = k
		}
	}
	props := obj()
	if err := g.fields(t, path, td, keys, props); err != nil {
		return nil, err
	}
	typ := any("object")
	if nullable {
		typ = []string{"object", "null"}
	}
	return obj("type", typ, "properties", props, "additionalProperties", false), nil
}

func (g *gen) fields(t reflect.Type, path string, td *typeDoc, keys map[string]string, props *object) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		name, inline := keyName(sf)
		if inline {
			itd, err := g.docs.lookup(sf.Type.PkgPath(), sf.Type.Name())
			if err != nil {
				return err
			}
			if err := g.fields(sf.Type, path, itd, keys, props); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			continue
		}
		p := join(path, name)
		s, err := g.field(sf.Type, p)
		if err != nil {
			return err
		}
		desc := prose(td.fields[sf.Name], keys)
		if note, ok := g.reserved[p]; ok {
			g.used[p] = true
			desc = strings.TrimSpace(desc + "\n" + note)
		}
		if desc != "" {
			s = obj("description", desc).merge(s)
		}
		props.set(name, s)
	}
	return nil
}

// merge returns o with the keys of s after its own.
func (o *object) merge(s *object) *object {
	for _, k := range s.keys {
		o.set(k, s.get(k))
	}
	return o
}

// field describes the value of the key at path, of Go type t.
func (g *gen) field(t reflect.Type, path string) (*object, error) {
	if shape, ok := g.shapes[path]; ok {
		g.used[path] = true
		return shape(), nil
	}
	if choices, ok := g.vocab[path]; ok {
		g.used[path] = true
		if t.Kind() != reflect.String {
			return nil, fmt.Errorf("schemagen: vocabulary of %s, a %s, not a string", path, t)
		}
		return enum(choices), nil
	}
	return g.schema(t, path)
}

// enum lists choices, each also as the number or boolean YAML reads when
// it is written unquoted (min_version: 1.3 is the string "1.3" to Parse),
// and null.
func enum(choices []string) *object {
	var vals []any
	for _, c := range choices {
		vals = append(vals, c)
		var v any
		if yaml.Unmarshal([]byte(c), &v) != nil {
			continue
		}
		switch x := v.(type) {
		case int:
			if strconv.Itoa(x) == c {
				vals = append(vals, x)
			}
		case float64:
			if strconv.FormatFloat(x, 'f', -1, 64) == c {
				vals = append(vals, x)
			}
		case bool:
			if strconv.FormatBool(x) == c {
				vals = append(vals, x)
			}
		}
	}
	return obj("enum", append(vals, nil))
}

// schema describes a value of Go type t at path.
func (g *gen) schema(t reflect.Type, path string) (*object, error) {
	switch t {
	case durationType, timeDurType:
		// "0" is also written as the number 0.
		return obj("type", []string{"string", "integer", "null"}, "pattern", DurationPattern, "minimum", 0, "maximum", 0), nil
	case rateType:
		return obj("type", []string{"string", "null"}, "pattern", RatePattern), nil
	case refreshType:
		// A duration, or "ttl" (config.Refresh.UnmarshalText).
		return obj("type", []string{"string", "integer", "null"}, "pattern", `^(?:\s*ttl\s*|`+strings.TrimSuffix(strings.TrimPrefix(DurationPattern, "^"), "$")+`)$`, "minimum", 0, "maximum", 0), nil
	case policyType:
		return g.policySchema(path)
	case nodeType:
		return nil, fmt.Errorf("schemagen: %s is a yaml.Node: give its shape in nodeShapes", path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem(), path)
	case reflect.Struct:
		return g.structSchema(t, path, true)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("schemagen: %s: map keys of %s", path, t.Key())
		}
		v, err := g.element(t.Elem(), path+".*")
		if err != nil {
			return nil, err
		}
		return obj("type", []string{"object", "null"}, "additionalProperties", v), nil
	case reflect.Slice:
		v, err := g.element(t.Elem(), path+"[]")
		if err != nil {
			return nil, err
		}
		return obj("type", []string{"array", "null"}, "items", v), nil
	case reflect.String:
		return obj("type", []string{"string", "number", "boolean", "null"}), nil
	case reflect.Bool:
		return obj("type", []string{"boolean", "null"}), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return obj("type", []string{"integer", "null"}), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return obj("type", []string{"integer", "null"}, "minimum", 0), nil
	case reflect.Float32, reflect.Float64:
		return obj("type", []string{"number", "null"}), nil
	}
	return nil, fmt.Errorf("schemagen: %s: no schema for %s", path, t)
}

// element describes a list item or map value: a struct gets its type's
// description.
func (g *gen) element(t reflect.Type, path string) (*object, error) {
	s, err := g.field(t, path)
	if err != nil {
		return nil, err
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct && t != policyType && t != rateType && t != refreshType {
		td, err := g.docs.lookup(t.PkgPath(), t.Name())
		if err != nil {
			return nil, err
		}
		if d := typeProse(t.Name(), td.doc); d != "" {
			s = obj("description", d).merge(s)
		}
	}
	return s, nil
}

// policySchema describes one entry of policies: its type, and for each type
// this build has, that type's keys (if type is T then only T's keys).
// Types without a build (none today) take any keys: Parse keeps them
// as they are, and compile refuses the type.
func (g *gen) policySchema(path string) (*object, error) {
	tp := path + ".type"
	types, ok := g.vocab[tp]
	if !ok {
		return nil, fmt.Errorf("schemagen: no vocabulary for %s", tp)
	}
	g.used[tp] = true
	configs := compile.PolicyConfigs()
	var built, notBuilt []string
	var branches []any
	for _, name := range types {
		ct, ok := configs[name]
		if !ok {
			notBuilt = append(notBuilt, name)
			continue
		}
		built = append(built, name)
		then, err := g.structSchema(ct, path+"{"+name+"}", true)
		if err != nil {
			return nil, err
		}
		props := obj("type", true).merge(then.get("properties").(*object))
		then.set("properties", props)
		td, _ := g.docs.lookup(ct.PkgPath(), ct.Name())
		if d := typeProse(ct.Name(), td.doc); d != "" {
			then = obj("description", d).merge(then)
		}
		branches = append(branches, obj(
			"if", obj("properties", obj("type", obj("const", name)), "required", []string{"type"}),
			"then", then))
	}
	for name := range configs {
		if !slices.Contains(types, name) {
			return nil, fmt.Errorf("schemagen: compile builds policy type %q, which config.PolicyTypes lacks", name)
		}
	}
	desc := "The policy's type; the other keys are its settings. Required. One of " + strings.Join(built, ", ") + "."
	if len(notBuilt) > 0 {
		desc += " " + strings.Join(notBuilt, " and ") + " are not available in this release."
	}
	typeSchema := obj("description", desc).merge(enum(types))
	return obj(
		"description", "A named request policy: type selects what it does, the other keys are its settings.",
		"type", []string{"object", "null"},
		"properties", obj("type", typeSchema),
		"allOf", branches,
	), nil
}
