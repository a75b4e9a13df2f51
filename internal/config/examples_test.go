package config

import (
	"path/filepath"
	"testing"
)

// TestExamples keeps the shipped examples valid.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Errorf("example does not validate:\n%v", err)
			}
		})
	}
}
