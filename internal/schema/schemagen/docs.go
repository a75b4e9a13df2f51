package schemagen

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// docs reads the doc comments of the structs of Go packages, from their
// sources below root (the repository). The binary has no sources, which is
// why the schema is generated, committed and embedded.
type docs struct {
	root   string
	module string
	pkgs   map[string]map[string]*typeDoc // package path -> type name -> docs
}

// typeDoc is what one struct type's comments say.
type typeDoc struct {
	doc    string
	fields map[string]string // Go field name -> its comment
}

func newDocs(root, module string) *docs {
	return &docs{root: root, module: module, pkgs: map[string]map[string]*typeDoc{}}
}

// lookup returns the docs of type name in package pkg, parsing the package
// on first use.
func (d *docs) lookup(pkg, name string) (*typeDoc, error) {
	types, ok := d.pkgs[pkg]
	if !ok {
		rel, found := strings.CutPrefix(pkg, d.module+"/")
		if !found {
			return nil, fmt.Errorf("package %s is outside module %s", pkg, d.module)
		}
		var err error
		if types, err = parseDir(filepath.Join(d.root, filepath.FromSlash(rel))); err != nil {
			return nil, err
		}
		d.pkgs[pkg] = types
	}
	td := types[name]
	if td == nil {
		return nil, fmt.Errorf("no struct %s in the sources of %s", name, pkg)
	}
	return td, nil
}

// parseDir parses the non-test Go files of one directory.
func parseDir(dir string) (map[string]*typeDoc, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	out := map[string]*typeDoc{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				td := &typeDoc{fields: map[string]string{}}
				switch {
				case ts.Doc != nil:
					td.doc = ts.Doc.Text()
				case gd.Doc != nil && len(gd.Specs) == 1:
					td.doc = gd.Doc.Text()
				}
				for _, fl := range st.Fields.List {
					if fl.Doc == nil {
						continue
					}
					for _, n := range fl.Names {
						td.fields[n.Name] = fl.Doc.Text()
					}
				}
				out[ts.Name.Name] = td
			}
		}
	}
	return out, nil
}

// Pointers to Go code, for Go readers: "(DefaultIdleTimeout)",
// ", DefaultBodyBufferBytes)", "(ParseHost's grammar)", "(RetryConditions)",
// "(http1.Idempotent)", "; see CircuitTrip.".
var (
	goAlone  = regexp.MustCompile(` \(([A-Z][a-z]+[A-Z][A-Za-z0-9]*('s grammar| reads them)?|[a-z0-9]+\.[A-Z][A-Za-z0-9]*)\)`)
	goAfter  = regexp.MustCompile(`, Default[A-Z][A-Za-z0-9]*\)`)
	goSeeEnd = regexp.MustCompile(`; see [A-Z][a-z]+[A-Z][A-Za-z0-9]*\.`)
)

// prose turns a doc comment into a description: lines of a paragraph
// joined, paragraphs apart, indented blocks kept as lines, the Go names of
// the struct's fields replaced by their keys and Go constant names of
// defaults dropped.
func prose(doc string, keys map[string]string) string {
	var paras []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paras = append(paras, strings.Join(cur, " "))
			cur = nil
		}
	}
	for line := range strings.SplitSeq(strings.TrimSpace(doc), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "  "):
			flush()
			paras = append(paras, strings.TrimSpace(line))
		default:
			cur = append(cur, strings.TrimSpace(line))
		}
	}
	flush()
	s := strings.Join(paras, "\n")
	s = goAlone.ReplaceAllString(s, "")
	s = goAfter.ReplaceAllString(s, ")")
	s = goSeeEnd.ReplaceAllString(s, ".")
	if len(keys) > 0 {
		var b strings.Builder
		last := 0
		for _, m := range goNames.FindAllStringIndex(s, -1) {
			k, ok := keys[s[m[0]:m[1]]]
			// "Cluster.Zone" names another struct's field, and past
			// the first word an acronym or "Default" is likely the word
			// itself ("TLS terminates TLS", "Default: none"): keep those.
			w := s[m[0]:m[1]]
			if !ok || (m[0] > 0 && (s[m[0]-1] == '.' || strings.ToUpper(w) == w || w == "Default")) {
				continue
			}
			b.WriteString(s[last:m[0]])
			b.WriteString(k)
			last = m[1]
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s
}

var goNames = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

// typeProse describes a struct type: "Listener is one accepting socket."
// becomes "One accepting socket."
func typeProse(name, doc string) string {
	s := prose(doc, nil)
	for _, verb := range []string{" is ", " are "} {
		if rest, ok := strings.CutPrefix(s, name+verb); ok {
			r, size := utf8.DecodeRuneInString(rest)
			return string(unicode.ToUpper(r)) + rest[size:]
		}
	}
	return s
}
