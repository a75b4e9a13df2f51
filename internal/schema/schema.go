// Package schema holds the JSON Schema of the config file, generated from
// the Go sources (see package schemagen) and embedded, for `rampart
// schema`. docs/config.schema.json is the same file.
package schema

import _ "embed"

//go:generate go run ./gen

//go:embed config.schema.json
var schemaJSON []byte

// JSON returns the schema (a copy).
func JSON() []byte { return append([]byte(nil), schemaJSON...) }
