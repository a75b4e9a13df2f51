package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/rampart-gw/rampart/internal/compile"
	"github.com/rampart-gw/rampart/internal/config"
	"github.com/rampart-gw/rampart/internal/demo"
	"github.com/rampart-gw/rampart/internal/schema/schemagen"
)

const root = "../.."

// TestCommittedSchemaIsGenerated keeps the embedded schema and the copy in
// docs/ the ones the sources give today.
func TestCommittedSchemaIsGenerated(t *testing.T) {
	want, err := schemagen.Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(filepath.Join(root, "docs", "config.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"internal/schema/config.schema.json": JSON(), "docs/config.schema.json": docs} {
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what the sources generate: run `go generate ./internal/schema` and commit the result", name)
		}
	}
}

// drafts compiles the schema as it declares itself (2020-12) and as
// draft-07, which editors' YAML support implements: it must mean the same
// in both.
func drafts(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	out := map[string]*jsonschema.Schema{}
	for name, id := range map[string]string{
		"2020-12":  "https://json-schema.org/draft/2020-12/schema",
		"draft-07": "http://json-schema.org/draft-07/schema#",
	} {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSON()))
		if err != nil {
			t.Fatal(err)
		}
		doc.(map[string]any)["$schema"] = id
		c := jsonschema.NewCompiler()
		if err := c.AddResource("config.schema.json", doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile("config.schema.json")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = s
	}
	return out
}

// instance reads a config document as the schema sees it: JSON as JSON,
// YAML with every scalar typed as YAML 1.2 types it and mapping keys as
// text (as Parse reads them).
func instance(file string, data []byte) (any, error) {
	if strings.HasSuffix(file, ".json") {
		return jsonschema.UnmarshalJSON(bytes.NewReader(data))
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	return plain(&n, 0)
}

func plain(n *yaml.Node, depth int) (any, error) {
	if depth > 100 {
		return nil, errors.New("too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return plain(n.Content[0], depth+1)
	case yaml.AliasNode:
		return plain(n.Alias, depth+1)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			v, err := plain(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[n.Content[i].Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := []any{}
		for _, item := range n.Content {
			v, err := plain(item, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	if _, ok := v.(time.Time); ok {
		return n.Value, nil
	}
	return v, nil
}

// goodConfigs are the configs the project ships or tests with: examples,
// every testdata config that Parse accepts, the demo's and the Kubernetes
// ConfigMap's. must says which of them Parse has to accept.
func goodConfigs(t *testing.T) (docs map[string][]byte, must map[string]bool) {
	t.Helper()
	docs, must = map[string][]byte{}, map[string]bool{}
	examples, err := filepath.Glob(filepath.Join(root, "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, f := range examples {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[f], must[f] = data, true
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !slices.Contains(strings.Split(filepath.ToSlash(path), "/"), "testdata") {
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			docs[path] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	d, err := demo.Start(demo.Config{Listen: "127.0.0.1:0", Admin: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	docs["demo.yaml"], must["demo.yaml"] = []byte(d.GatewayYAML), true

	cm, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(cm, &m); err != nil || m.Data["rampart.yaml"] == "" {
		t.Fatalf("configmap.yaml has no data.rampart.yaml (%v)", err)
	}
	docs["configmap.yaml:rampart.yaml"], must["configmap.yaml:rampart.yaml"] = []byte(m.Data["rampart.yaml"]), true
	return docs, must
}

// TestShippedConfigsMatchSchema: what Parse accepts, the schema accepts.
func TestShippedConfigsMatchSchema(t *testing.T) {
	schemas := drafts(t)
	docs, must := goodConfigs(t)
	checked := 0
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		if _, err := config.Parse(name, docs[name]); err != nil {
			if must[name] {
				t.Errorf("%s: Parse refuses it: %v", name, err)
			}
			continue
		}
		v, err := instance(name, docs[name])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		checked++
		for draft, s := range schemas {
			if err := s.Validate(v); err != nil {
				t.Errorf("%s: Parse accepts it, the schema (%s) does not:\n%v", name, draft, err)
			}
		}
	}
	// Examples, testdata (full.yaml has every key), demo and ConfigMap.
	if checked < 8 {
		t.Errorf("checked %d configs, want at least 8", checked)
	}
	t.Logf("%d configs checked", checked)
}

// skeleton is a valid config for the documents the drift tests build.
func skeleton() map[string]any {
	return map[string]any{
		"listeners": []any{map[string]any{"name": "public", "address": "127.0.0.1:0"}},
		"upstreams": map[string]any{"app": map[string]any{"targets": []any{map[string]any{"address": "127.0.0.1:9"}}}},
		"routes":    []any{map[string]any{"name": "all", "upstream": "app"}},
	}
}

// keyPath is one key the schema knows, as a path written like
// config.Vocabulary's ("listeners[].protocol", "upstreams.*.balancer";
// policy keys "policies.*{jwt}.keys"), with a document that sets it.
type keyPath struct {
	path   string
	doc    func(leaf any) any
	policy string // the policy type the key belongs to
}

// schemaKeys lists every key the schema knows, and every closed mapping
// (additionalProperties false) with a document that puts an unknown key
// in it.
func schemaKeys(t *testing.T) (keys, closed []keyPath) {
	t.Helper()
	var s map[string]any
	if err := json.Unmarshal(JSON(), &s); err != nil {
		t.Fatal(err)
	}
	var walk func(s map[string]any, path string, wrap func(any) any, policy string, depth int)
	walk = func(s map[string]any, path string, wrap func(any) any, policy string, depth int) {
		if depth > 50 {
			t.Fatalf("schema nested deeper than 50 at %s", path)
		}
		if props, ok := s["properties"].(map[string]any); ok {
			for _, k := range slices.Sorted(maps.Keys(props)) {
				if k == "type" && policy != "" {
					continue // the branch's own condition
				}
				w := func(v any) any { return wrap(map[string]any{k: v}) }
				if policy != "" && strings.HasSuffix(path, "{"+policy+"}") {
					w = func(v any) any { return wrap(map[string]any{"type": policy, k: v}) }
				}
				p := path + "." + k
				if path == "" {
					p = k
				}
				keys = append(keys, keyPath{p, w, policy})
				if sub, ok := props[k].(map[string]any); ok {
					walk(sub, p, w, policy, depth+1)
				}
			}
		}
		if s["additionalProperties"] == false {
			w := func(v any) any { return wrap(map[string]any{"zz_not_a_key": v}) }
			if policy != "" && strings.HasSuffix(path, "{"+policy+"}") {
				w = func(v any) any { return wrap(map[string]any{"type": policy, "zz_not_a_key": v}) }
			}
			closed = append(closed, keyPath{path, w, policy})
		}
		if sub, ok := s["additionalProperties"].(map[string]any); ok {
			walk(sub, path+".*", func(v any) any { return wrap(map[string]any{"x": v}) }, policy, depth+1)
		}
		if sub, ok := s["items"].(map[string]any); ok {
			walk(sub, path+"[]", func(v any) any { return wrap([]any{v}) }, policy, depth+1)
		}
		for _, kw := range []string{"anyOf", "oneOf"} {
			opts, _ := s[kw].([]any)
			for _, o := range opts {
				walk(o.(map[string]any), path, wrap, policy, depth+1)
			}
		}
		branches, _ := s["allOf"].([]any)
		for _, b := range branches {
			b := b.(map[string]any)
			name := b["if"].(map[string]any)["properties"].(map[string]any)["type"].(map[string]any)["const"].(string)
			walk(b["then"].(map[string]any), path+"{"+name+"}", wrap, name, depth+1)
		}
	}
	walk(s, "", func(v any) any { return v }, "", 0)
	return keys, closed
}

// gatewayErr is what `rampart validate` says of doc: Load, then for
// policies compile.Build (which decodes their keys).
func gatewayErr(doc any, policy bool) error {
	if policy {
		m := skeleton()
		for k, v := range doc.(map[string]any) {
			m[k] = v
		}
		doc = m
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	if !policy {
		_, err := config.Parse("drift.json", data)
		return err
	}
	cfg, err := config.LoadBytes("drift.json", data)
	if err != nil {
		return err
	}
	_, err = compile.Build(cfg, compile.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return err
}

// TestSchemaKeysAreKnown: every key the schema knows, Parse (or the
// policy's decoder) knows; every mapping the schema closes, they close.
func TestSchemaKeysAreKnown(t *testing.T) {
	keys, closed := schemaKeys(t)
	policies := 0
	for _, k := range keys {
		if k.policy != "" {
			policies++
		}
		if err := gatewayErr(k.doc(nil), k.policy != ""); err != nil && strings.Contains(err.Error(), "unknown key") {
			t.Errorf("the schema knows %s, the gateway does not: %v", k.path, err)
		}
	}
	for _, k := range closed {
		err := gatewayErr(k.doc(nil), k.policy != "")
		if err == nil || !strings.Contains(err.Error(), `unknown key "zz_not_a_key"`) {
			t.Errorf("the schema closes %s, the gateway takes an unknown key in it (%v)", k.path, err)
		}
	}
	if len(keys) < 200 || policies < 40 || len(closed) < 40 {
		t.Errorf("walked %d keys (%d of policies) and %d mappings, want the config's 200, 40 and 40 or more", len(keys), policies, len(closed))
	}
	t.Logf("%d keys (%d of policies), %d closed mappings", len(keys), policies, len(closed))
}

// goKeys lists the keys of the config and policy types, by reflection, in
// the notation of keyPath, and where their structs stand.
func goKeys() (out, structs []string) {
	stop := map[reflect.Type]bool{
		reflect.TypeFor[config.Duration](): true, reflect.TypeFor[config.Rate](): true, reflect.TypeFor[config.Refresh](): true,
		reflect.TypeFor[yaml.Node](): true, reflect.TypeFor[time.Duration](): true,
	}
	var walk func(t reflect.Type, path string, depth int)
	walk = func(t reflect.Type, path string, depth int) {
		if depth > 50 || stop[t] {
			return
		}
		switch t.Kind() {
		case reflect.Pointer:
			walk(t.Elem(), path, depth+1)
		case reflect.Slice:
			walk(t.Elem(), path+"[]", depth+1)
		case reflect.Map:
			walk(t.Elem(), path+".*", depth+1)
		case reflect.Struct:
			if t == reflect.TypeFor[config.Policy]() {
				out = append(out, path+".type")
				for name, ct := range compile.PolicyConfigs() {
					walk(ct, path+"{"+name+"}", depth+1)
				}
				return
			}
			structs = append(structs, path)
			for i := range t.NumField() {
				f := t.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				if name == "" {
					name = strings.ToLower(f.Name)
				}
				p := path + "." + name
				if path == "" {
					p = name
				}
				out = append(out, p)
				walk(f.Type, p, depth+1)
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "", 0)
	return out, structs
}

// TestGoKeysInSchema: every key of the config types and of every policy's
// Config is in the schema, and every struct is a closed mapping there.
func TestGoKeysInSchema(t *testing.T) {
	keys, closed := schemaKeys(t)
	known, isClosed := map[string]bool{}, map[string]bool{}
	for _, k := range keys {
		known[k.path] = true
	}
	for _, k := range closed {
		isClosed[k.path] = true
	}
	gk, structs := goKeys()
	for _, p := range structs {
		if !isClosed[p] {
			t.Errorf("the schema takes unknown keys at %q, the gateway does not", p)
		}
	}
	for _, k := range gk {
		if !known[k] {
			t.Errorf("key %s is not in the schema", k)
		}
	}
	if len(gk) != len(keys) {
		t.Errorf("the Go types have %d keys, the schema %d", len(gk), len(keys))
	}
}

// TestVocabularyInSchema: every choice Validate takes, the schema takes;
// a choice it refuses, the schema refuses.
func TestVocabularyInSchema(t *testing.T) {
	schemas := drafts(t)
	keys, _ := schemaKeys(t)
	byPath := map[string]keyPath{}
	for _, k := range keys {
		byPath[k.path] = k
	}
	vocab := config.Vocabulary()
	vocab["routes[].retry.on[]"] = config.RetryConditionNames()
	byPath["routes[].retry.on[]"] = keyPath{doc: func(v any) any { return byPath["routes[].retry.on"].doc([]any{v}) }}
	for _, path := range slices.Sorted(maps.Keys(vocab)) {
		k, ok := byPath[path]
		if !ok {
			t.Errorf("vocabulary of %s: no such key in the schema", path)
			continue
		}
		for _, choice := range vocab[path] {
			for draft, s := range schemas {
				if err := s.Validate(k.doc(choice)); err != nil {
					t.Errorf("%s: %s: the schema (%s) refuses %q: %v", path, choice, draft, choice, err)
				}
			}
		}
		bad := k.doc("zz-bogus")
		for draft, s := range schemas {
			if s.Validate(bad) == nil {
				t.Errorf("%s: the schema (%s) takes zz-bogus", path, draft)
			}
		}
	}
}

// base is a valid config the bad configs below change.
const base = `
listeners: [{name: public, address: "127.0.0.1:0"}]
upstreams: {app: {targets: [{address: "127.0.0.1:9"}]}}
routes: [{name: all, upstream: app}]
`

// TestBadConfigs: configs that both the schema and the gateway refuse.
func TestBadConfigs(t *testing.T) {
	schemas := drafts(t)
	ok := base + "policies:\n  rl: {type: rate_limit, rate: 10/s, key: [ip, \"header:X-Tenant\"]}\n" +
		"  j: {type: jwt, secret: 0123456789abcdef0123456789abcdef, algorithms: [HS256]}\n"
	for _, tc := range []struct{ name, doc, at string }{
		{"unknown top-level key", base + "listner: []\n", "listner"},
		{"unknown nested key", "listeners: [{name: public, adress: \"127.0.0.1:0\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "adress"},
		{"unknown key in a map value", base + "cluster: {redis: {address: \"127.0.0.1:6379\", timeoutt: 1s}}\n", "timeoutt"},
		{"list where a mapping goes", base + "admin: [127.0.0.1:9901]\n", "admin"},
		{"mapping where a list goes", "listeners: {public: {address: \"127.0.0.1:0\"}}\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "listeners"},
		{"boolean duration", base + "drain_timeout: true\n", "drain_timeout"},
		{"duration without unit", base + "drain_timeout: 30\n", "drain_timeout"},
		{"negative duration", base + "drain_timeout: -1s\n", "drain_timeout"},
		{"string integer", "listeners: [{address: \"127.0.0.1:0\", limits: {max_connections: many}}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "max_connections"},
		{"float integer", "listeners: [{address: \"127.0.0.1:0\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\", weight: 1.5}]}}\n", "weight"},
		{"string boolean", "listeners: [{address: \"127.0.0.1:0\", reuse_port: \"yes\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "reuse_port"},
		{"list as a string", base + "observability: {request_id_header: [a, b]}\n", "request_id_header"},
		{"bad balancer", "listeners: [{address: \"127.0.0.1:0\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {balancer: fastest, targets: [{address: \"127.0.0.1:9\"}]}}\n", "balancer"},
		{"bad listener protocol", "listeners: [{address: \"127.0.0.1:0\", protocol: udp}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "protocol"},
		{"bad TLS version", "listeners: [{address: \"127.0.0.1:0\", tls: {min_version: 1.1, certificates: [{cert_file: a, key_file: b}]}}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "min_version"},
		{"bad request_buffering", "listeners: [{address: \"127.0.0.1:0\"}]\nroutes: [{upstream: app, request_buffering: maybe}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "request_buffering"},
		{"bad retry condition", "listeners: [{address: \"127.0.0.1:0\"}]\nroutes: [{upstream: app, retry: {on: [sometimes]}}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "retry.on"},
		{"retry status out of range", "listeners: [{address: \"127.0.0.1:0\"}]\nroutes: [{upstream: app, retry: {on: [600]}}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n", "retry.on"},
		{"bad access log format", base + "observability: {access_log: {format: text}}\n", "format"},
		{"bad policy type", base + "policies: {p: {type: firewall}}\n", "policies.p.type"},
		{"unknown policy key", base + "policies: {p: {type: cors, allow_origins: [\"*\"], allow_origin: [\"*\"]}}\n", "allow_origin\""},
		{"key of another policy type", base + "policies: {p: {type: api_key, any_of: [admin]}}\n", "any_of"},
		{"bad rate", base + "policies: {p: {type: rate_limit, rate: 100 per second}}\n", "rate"},
		{"zero rate", base + "policies: {p: {type: rate_limit, rate: 0/s}}\n", "rate"},
		{"bad rate-limit key", base + "policies: {p: {type: rate_limit, rate: 10/s, key: tenant}}\n", "key"},
		{"rate-limit key as a mapping", base + "policies: {p: {type: rate_limit, rate: 10/s, key: {header: X-A}}}\n", "key"},
		{"empty rate-limit key list", base + "policies: {p: {type: rate_limit, rate: 10/s, key: []}}\n", "key"},
		{"rate-limit key twice", base + "policies: {p: {type: rate_limit, rate: 10/s, key: [ip, ip]}}\n", "key"},
		{"bad by_role rate", base + "policies: {p: {type: rate_limit, rate: 10/s, by_role: {free: lots}}}\n", "by_role"},
		{"unknown jwt algorithm", base + "policies: {p: {type: jwt, secret: 0123456789abcdef0123456789abcdef, algorithms: [HS257]}}\n", "algorithms[0]"},
		{"jwt algorithm twice", base + "policies: {p: {type: jwt, secret: 0123456789abcdef0123456789abcdef, algorithms: [HS256, HS256]}}\n", "algorithms[1]"},
		{"jwt key as a number", base + "policies: {p: {type: jwt, keys: [42]}}\n", "keys[0]"},
		{"jwt empty keys", base + "policies: {p: {type: jwt, keys: []}}\n", "keys"},
		{"unknown headers key", base + "policies: {p: {type: headers, request: {sett: {X-A: b}}}}\n", "sett"},
		{"policy duration", base + "policies: {p: {type: concurrency_limit, max_in_flight: 1, max_queue: 1, queue_timeout: soon}}\n", "queue_timeout"},
		{"policy integer", base + "policies: {p: {type: concurrency_limit, max_in_flight: lots}}\n", "max_in_flight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := instance("bad.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			for draft, s := range schemas {
				if s.Validate(v) == nil {
					t.Errorf("the schema (%s) accepts it", draft)
				}
			}
			cfg, err := config.LoadBytes("bad.yaml", []byte(tc.doc))
			if err == nil {
				_, err = compile.Build(cfg, compile.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			}
			if err == nil || !strings.Contains(err.Error(), tc.at) {
				t.Errorf("the gateway does not refuse %s: %v", tc.at, err)
			}
		})
	}
	// The table's documents are bad only where they say: the base, with
	// policies that use the shapes above well, passes both.
	v, err := instance("ok.yaml", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	for draft, s := range schemas {
		if err := s.Validate(v); err != nil {
			t.Errorf("the schema (%s) refuses the good config: %v", draft, err)
		}
	}
	cfg, err := config.LoadBytes("ok.yaml", []byte(ok))
	if err == nil {
		_, err = compile.Build(cfg, compile.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	if err != nil {
		t.Errorf("the gateway refuses the good config: %v", err)
	}
}

// TestLenientConfigs: what Parse takes beyond the obvious, the schema takes
// too: null for a key (as if absent), numbers and booleans for strings,
// 0 for a duration, status codes as numbers or strings, the scalar and
// list forms of a rate-limit key, PEM and JWK keys.
func TestLenientConfigs(t *testing.T) {
	schemas := drafts(t)
	for _, tc := range []struct{ name, doc string }{
		{"null keys", base + "admin:\nobservability: {tracing: null, access_log: {path: ~}}\n"},
		{"null entries", base + "consumers: [null]\npolicies: {p: null}\n"},
		{"null in a policy", base + "policies: {p: {type: cors, allow_origins: [\"*\"], max_age: null}}\n"},
		{"numbers and booleans as strings", "listeners: [{name: 8080, address: \"127.0.0.1:0\", tls: {min_version: 1.3, certificates: [{cert_file: 1, key_file: true}]}}]\n" +
			"upstreams: {app: {targets: [{address: \"127.0.0.1:9\", zone: 1}]}}\nroutes: [{upstream: app, match: {headers: {X-N: 1}, query: {a: true}}}]\n"},
		{"zero duration", base + "drain_timeout: 0\nupgrade: {timeout: \"0\"}\n"},
		{"durations", base + "drain_timeout: 1h2m3.5s\ndrain_delay: 250ms\nupgrade: {timeout: 1.5m}\n"},
		{"retry statuses", "listeners: [{address: \"127.0.0.1:0\"}]\nupstreams: {app: {targets: [{address: \"127.0.0.1:9\"}]}}\n" +
			"routes: [{upstream: app, retry: {on: [502, \"503\", 5xx, gateway_error]}}]\n"},
		{"rate-limit key scalar", base + "policies: {p: {type: rate_limit, rate: 1.5/s, key: \"claim:sub\"}}\n"},
		{"rate-limit key list", base + "policies: {p: {type: rate_limit, rate: 100/m, key: [ip, \"header:X-Tenant\"], by_role: {free: 10/h}}}\n"},
		{"jwt keys", base + "policies: {p: {type: jwt, keys: [{kty: RSA, n: abc, e: AQAB}, \"-----BEGIN PUBLIC KEY-----\"]}}\n"},
		{"types not built take any key", base + "policies: {w: {type: waf, paranoia_level: 1, mode: block}}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := config.Parse("lenient.yaml", []byte(tc.doc)); err != nil {
				t.Fatalf("Parse refuses it (fix the table): %v", err)
			}
			v, err := instance("lenient.yaml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			for draft, s := range schemas {
				if err := s.Validate(v); err != nil {
					t.Errorf("Parse takes it, the schema (%s) does not: %v", draft, err)
				}
			}
		})
	}
}
