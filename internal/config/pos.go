package config

import "fmt"

// Pos is a position in a config document. Line and Col are 1-based; zero
// means unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats p as FILE:LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }
