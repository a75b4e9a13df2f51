package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parse decodes a YAML or JSON config document strictly and applies the
// defaults for keys that are absent. file is the name used in error
// positions. Unknown keys, duplicate keys, values of the wrong type and
// malformed durations or rates are errors; every one is reported, as
// Errors sorted by position. Parse does not validate references between
// values; call Validate for that (Load does both).
func Parse(file string, data []byte) (*Config, error) {
	c, errs := parse(file, data)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	return c, nil
}

// Load reads the config file at path, parses and validates it, and returns
// every problem found by either step as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return LoadBytes(path, data)
}

// LoadBytes parses and validates a config document held in memory (from
// the admin API or etcd, say); file names it in error positions.
func LoadBytes(file string, data []byte) (*Config, error) {
	c, errs := parse(file, data)
	if c != nil {
		if verr, ok := c.Validate().(Errors); ok {
			errs = append(errs, verr...)
		}
	}
	if len(errs) > 0 {
		return nil, errs.err()
	}
	return c, nil
}

// parse decodes data and returns the config, as complete as it could be
// made, with the decode errors. c.bad holds the paths that failed, so that
// Validate stays quiet about them.
func parse(file string, data []byte) (c *Config, errs Errors) {
	c = &Config{file: file, pos: map[string]Pos{}, bad: map[string]bool{}}
	root, perr := document(file, data)
	if perr != nil {
		c.bad[""] = true
		return c, Errors{perr}
	}
	d := newDecoder(file)
	d.pos, d.bad = c.pos, c.bad
	d.budget = min(maxNodes, 20_000+16*len(data))
	d.decodeStruct(root, "", reflect.ValueOf(c).Elem(), nil)
	c.ApplyDefaults()
	return c, d.errs
}

// document parses data into the root node of its single document. A file
// named *.json is read as JSON; anything else as YAML, except that a
// document that looks like JSON but that YAML rejects (JSON is nearly, but
// not entirely, a subset of YAML) is read as JSON. Both keep the line and
// column of every value.
func document(file string, data []byte) (root *yaml.Node, perr *Error) {
	start := Pos{File: file, Line: 1, Col: 1}
	if len(bytes.TrimSpace(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))) == 0 {
		return nil, &Error{Pos: start, Msg: "empty document"}
	}
	if strings.HasSuffix(strings.ToLower(file), ".json") {
		// A .json file is read as strict JSON: YAML would accept things
		// JSON users do not expect (trailing commas, bare words).
		root, perr = jsonDocument(file, data)
		if perr != nil {
			return nil, perr
		}
		return root, nil
	}
	root, yerr := yamlDocument(file, data)
	if yerr != nil {
		trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
		if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
			jroot, jerr := jsonDocument(file, data)
			if jerr == nil {
				root, yerr = jroot, nil
			}
		}
	}
	if yerr != nil {
		return nil, yerr
	}
	if isNull(root) {
		return nil, &Error{Pos: start, Msg: "empty document"}
	}
	return root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError positions an error from the YAML parser, which gives a line
// but no column.
func yamlError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Pos: Pos{File: file, Line: line, Col: 1}, Msg: "invalid yaml: " + m[2]}
	}
	return &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "invalid yaml: " + strings.TrimPrefix(msg, "yaml: ")}
}

func yamlDocument(file string, data []byte) (root *yaml.Node, perr *Error) {
	defer func() {
		// The YAML parser is third-party code fed untrusted input; a bug
		// in it must become an error, not a crash of the gateway.
		if r := recover(); r != nil {
			root, perr = nil, &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: fmt.Sprintf("invalid yaml: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "empty document"}
		}
		return nil, yamlError(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{Pos: Pos{File: file, Line: max(next.Line, 1), Col: max(next.Column, 1)}, Msg: "multiple documents in one file are not supported"}
	case !errors.Is(err, io.EOF):
		return nil, yamlError(file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}
