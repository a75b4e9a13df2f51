package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestSchemaCommand: `rampart schema` prints the schema in docs/, as JSON,
// and takes no arguments.
func TestSchemaCommand(t *testing.T) {
	want, err := os.ReadFile("../../docs/config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		code   int
		stdout []byte
		stderr string
	}{
		{args: []string{"schema"}, code: 0, stdout: want},
		{args: []string{"schema", "extra"}, code: 2, stderr: `unexpected argument "extra"`},
		{args: []string{"schema", "-x"}, code: 2, stderr: "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		code := run(tc.args, &out, &errb)
		if code != tc.code || !bytes.Equal(out.Bytes(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("%v: exit %d, %d bytes out, stderr %q; want exit %d, %d bytes, stderr with %q",
				tc.args, code, out.Len(), errb.String(), tc.code, len(tc.stdout), tc.stderr)
		}
		if tc.code == 0 && !json.Valid(out.Bytes()) {
			t.Errorf("%v: the output is not JSON", tc.args)
		}
	}
	var usage bytes.Buffer
	run([]string{"help"}, &usage, &usage)
	if !strings.Contains(usage.String(), "rampart schema") {
		t.Errorf("the usage text does not name rampart schema")
	}
}
