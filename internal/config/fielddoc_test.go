package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

// The doc comment of a config field states its default (or that it has
// none, or is required), and a duration's or size's comment names its
// unit (STYLE.md habit 10; issue 16).
var (
	statesDefault = regexp.MustCompile(`\bDefault\b|\(default\)|\b[Nn]o\s+default\b|\b[Rr]equired\b`)
	durationUnit  = regexp.MustCompile(`\b\d+(\.\d+)?\s?(ns|µs|us|ms|s|m|h)\b`)
	sizeUnit      = regexp.MustCompile(`\b(bytes?|KiB|MiB|GiB)\b`)
)

func TestFieldsStateDefaultAndUnit(t *testing.T) {
	fset := token.NewFileSet()
	checked := 0
	for _, file := range []string{"types.go", "trip.go"} {
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok || !ts.Name.IsExported() {
				return false
			}
			for _, fl := range st.Fields.List {
				for _, name := range fl.Names {
					if !name.IsExported() {
						continue
					}
					checked++
					where := fset.Position(name.Pos()).String() + ": " + ts.Name.Name + "." + name.Name
					doc := ""
					if fl.Doc != nil {
						doc = fl.Doc.Text()
					}
					if doc == "" {
						t.Errorf("%s has no doc comment", where)
						continue
					}
					if !strings.HasPrefix(doc, name.Name+" ") && !strings.HasPrefix(doc, name.Name+",") {
						t.Errorf("%s: the comment does not start with the field's name", where)
					}
					if !statesDefault.MatchString(doc) {
						t.Errorf("%s: the comment states no default (want \"Default ...\", \"no default\" or \"required\")", where)
					}
					typ := types(fl.Type)
					if typ == "Duration" && !durationUnit.MatchString(doc) {
						t.Errorf("%s: a duration's comment names no unit (want e.g. \"Default 10s\")", where)
					}
					if strings.HasSuffix(name.Name, "Bytes") && !sizeUnit.MatchString(doc) {
						t.Errorf("%s: a size's comment names no unit (bytes, KiB, MiB)", where)
					}
				}
			}
			return false
		})
	}
	// Guard the walk itself: it must see the config's fields.
	if checked < 140 {
		t.Fatalf("checked %d fields, want the config's 140 or more", checked)
	}
	t.Logf("%d fields checked", checked)
}

// types names a field's type without pointers, slices and maps.
func types(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ArrayType:
			e = x.Elt
		case *ast.MapType:
			e = x.Value
		case *ast.Ident:
			return x.Name
		case *ast.SelectorExpr:
			return x.Sel.Name
		default:
			return ""
		}
	}
}
