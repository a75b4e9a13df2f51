// Command gen writes the config's JSON Schema to internal/schema and docs/:
// run it with `go generate ./internal/schema` after changing a config type,
// a field's doc comment, a vocabulary or a policy's Config.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rampart-gw/rampart/internal/schema/schemagen"
)

func main() {
	root := flag.String("root", "../..", "the repository's root")
	flag.Parse()
	b, err := schemagen.Generate(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, f := range []string{"internal/schema/config.schema.json", "docs/config.schema.json"} {
		if err := os.WriteFile(filepath.Join(*root, f), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
