package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// jsonDocument parses a JSON document into a yaml.Node tree with the line
// and column (1-based, counted in characters) of every value, so that the
// strict decoder treats JSON exactly like YAML.
func jsonDocument(file string, data []byte) (*yaml.Node, *Error) {
	p := &jsonParser{file: file, data: data, line: 1, col: 1}
	if strings.HasPrefix(string(data), "\xef\xbb\xbf") {
		p.i = 3
	}
	p.space()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.data) {
		return nil, p.errorf("invalid json: unexpected %q after the document", p.data[p.i])
	}
	return n, nil
}

type jsonParser struct {
	file      string
	data      []byte
	i         int
	line, col int
}

func (p *jsonParser) errorf(format string, args ...any) *Error {
	return &Error{Pos: Pos{File: p.file, Line: p.line, Col: p.col}, Msg: fmt.Sprintf(format, args...)}
}

// advance moves past n bytes, keeping line and column.
func (p *jsonParser) advance(n int) {
	end := min(p.i+n, len(p.data))
	for p.i < end {
		r, size := utf8.DecodeRune(p.data[p.i:])
		p.i += size
		if r == '\n' {
			p.line, p.col = p.line+1, 1
		} else {
			p.col++
		}
	}
}

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\r', '\n':
			p.advance(1)
		default:
			return
		}
	}
}

func (p *jsonParser) node(kind yaml.Kind, tag, value string) *yaml.Node {
	return &yaml.Node{Kind: kind, Tag: tag, Value: value, Line: p.line, Column: p.col}
}

func (p *jsonParser) value(depth int) (*yaml.Node, *Error) {
	if depth > 1000 {
		return nil, p.errorf("invalid json: nested too deeply")
	}
	if p.i >= len(p.data) {
		return nil, p.errorf("invalid json: unexpected end of input")
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		n := p.node(yaml.ScalarNode, "!!str", "")
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		n.Value = s
		return n, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		for _, lit := range []struct{ word, tag string }{{"true", "!!bool"}, {"false", "!!bool"}, {"null", "!!null"}} {
			if strings.HasPrefix(string(p.data[p.i:min(len(p.data), p.i+5)]), lit.word) {
				n := p.node(yaml.ScalarNode, lit.tag, lit.word)
				p.advance(len(lit.word))
				return n, nil
			}
		}
		return nil, p.errorf("invalid json: unexpected %q", rune(c))
	}
}

func (p *jsonParser) object(depth int) (*yaml.Node, *Error) {
	n := p.node(yaml.MappingNode, "!!map", "")
	n.Style = yaml.FlowStyle
	p.advance(1)
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.advance(1)
		return n, nil
	}
	for {
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, p.errorf("invalid json: expected a string key")
		}
		k := p.node(yaml.ScalarNode, "!!str", "")
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		k.Value = s
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, p.errorf("invalid json: expected ':' after key")
		}
		p.advance(1)
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, k, v)
		p.space()
		if p.i < len(p.data) && p.data[p.i] == ',' {
			p.advance(1)
			continue
		}
		if p.i < len(p.data) && p.data[p.i] == '}' {
			p.advance(1)
			return n, nil
		}
		return nil, p.errorf("invalid json: expected ',' or '}'")
	}
}

func (p *jsonParser) array(depth int) (*yaml.Node, *Error) {
	n := p.node(yaml.SequenceNode, "!!seq", "")
	n.Style = yaml.FlowStyle
	p.advance(1)
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.advance(1)
		return n, nil
	}
	for {
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, v)
		p.space()
		if p.i < len(p.data) && p.data[p.i] == ',' {
			p.advance(1)
			continue
		}
		if p.i < len(p.data) && p.data[p.i] == ']' {
			p.advance(1)
			return n, nil
		}
		return nil, p.errorf("invalid json: expected ',' or ']'")
	}
}

// str reads a string literal, leaving the position after it.
func (p *jsonParser) str() (string, *Error) {
	end := p.i + 1
	for end < len(p.data) && p.data[end] != '"' {
		if p.data[end] == '\\' {
			end++
		}
		end++
	}
	if end >= len(p.data) {
		return "", p.errorf("invalid json: unterminated string")
	}
	var s string
	if err := json.Unmarshal(p.data[p.i:end+1], &s); err != nil {
		return "", p.errorf("invalid json: invalid string: %v", err)
	}
	p.advance(end + 1 - p.i)
	return s, nil
}

func (p *jsonParser) number() (*yaml.Node, *Error) {
	end := p.i
	isFloat := false
	for end < len(p.data) && strings.IndexByte("+-0123456789.eE", p.data[end]) >= 0 {
		if strings.IndexByte(".eE", p.data[end]) >= 0 {
			isFloat = true
		}
		end++
	}
	lit := string(p.data[p.i:end])
	if !json.Valid([]byte(lit)) {
		return nil, p.errorf("invalid json: invalid number %q", lit)
	}
	tag := "!!int"
	if isFloat {
		tag = "!!float"
	}
	n := p.node(yaml.ScalarNode, tag, lit)
	p.advance(end - p.i)
	return n, nil
}
