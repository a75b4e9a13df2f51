package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestReservedRefused sets every reserved key in a valid config and asserts
// that validation refuses it, positioned at the key's value, with "not
// available in this release". It also asserts that the table below covers
// every entry of Reserved, so that a key added there needs a case here.
func TestReservedRefused(t *testing.T) {
	tests := []struct {
		key  string // a Reserved key
		name string
		doc  string
		want string // one of the error lines, without "t.yaml:"
	}{
		// Every key of the format is built (issue 13 built the last,
		// observability.tracing); a key reserved again gets a case here.
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.key] = true
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadBytes("t.yaml", []byte(tt.doc))
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("LoadBytes = %v, want Errors with %q", err, tt.want)
			}
			want := "t.yaml:" + tt.want
			for _, e := range errs {
				if e.Error() == want {
					return
				}
			}
			t.Errorf("missing error line\nwant: %s\ngot:\n%v", want, err)
		})
	}
	for _, k := range Reserved {
		if !covered[k.Key] {
			t.Errorf("reserved key %q has no case in TestReservedRefused", k.Key)
		}
		delete(covered, k.Key)
	}
	for k := range covered {
		t.Errorf("case for %q, which is not in Reserved", k)
	}
}

// TestReservedNotSet checks that what is built stays accepted: discovery
// type static (the targets list), and the keys' absence or null values.
func TestReservedNotSet(t *testing.T) {
	for _, doc := range []string{
		base,
		strings.Replace(base, `targets: [{address: "127.0.0.1:9001"}]`, "targets: [{address: \"127.0.0.1:9001\"}]\n    discovery: {type: static}", 1),
		strings.Replace(base, `- address: "127.0.0.1:8080"`, `- {address: "127.0.0.1:8080", protocol: http}`, 1),
		base + "observability:\n  tracing:\ncluster:\n  redis: ~\n",
	} {
		if _, err := LoadBytes("t.yaml", []byte(doc)); err != nil {
			t.Errorf("LoadBytes(%q) = %v, want valid", doc, err)
		}
	}
}

// TestFullUsesEveryReserved loads testdata/full.yaml, every key of the
// format, and asserts that its only problems are the reserved keys, each
// of them at least once.
func TestFullUsesEveryReserved(t *testing.T) {
	_, err := Load("testdata/full.yaml")
	if len(Reserved) == 0 {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load(full.yaml) = %v, want the reserved keys refused", err)
	}
	for _, e := range errs {
		if !strings.Contains(e.Msg, "is not available in this release") {
			t.Errorf("unexpected problem: %v", e)
		}
	}
	c, err := Parse("testdata/full.yaml", mustRead(t, "testdata/full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Reserved {
		if len(k.find(c)) == 0 {
			t.Errorf("testdata/full.yaml does not set reserved key %q", k.Key)
		}
	}
}

// TestReservedDocumented checks that docs/configuration.md lists every
// reserved key under "Not available in this release", with its issue.
func TestReservedDocumented(t *testing.T) {
	doc := string(mustRead(t, "../../docs/configuration.md"))
	_, section, ok := strings.Cut(doc, "\n## Not available in this release\n")
	if !ok {
		t.Fatal(`docs/configuration.md has no "## Not available in this release" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, k := range Reserved {
		if !strings.Contains(section, "`"+k.Key+"`") {
			t.Errorf("docs/configuration.md does not list reserved key `%s`", k.Key)
		}
	}
}

// loadContract loads testdata/full.yaml, which sets every key of the
// format, tolerating only the refusal of reserved keys: tests of positions,
// decoding and the JSON form use the config as parsed.
func loadContract(t *testing.T) *Config {
	t.Helper()
	const f = "testdata/full.yaml"
	c, err := Load(f)
	if err == nil {
		return c
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatal(err)
	}
	for _, e := range errs {
		if !strings.Contains(e.Msg, "is not available in this release") {
			t.Fatalf("Load(%s): %v", f, e)
		}
	}
	c, err = Parse(f, mustRead(t, f))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
