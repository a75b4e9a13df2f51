package http1

// MaxChunkLine bounds a chunk-size line with its extensions, CRLF not
// counted. net/http reads the line whole, CRLF included, into its
// 4096-byte bufio.Reader, so 4094 is the longest line it takes.
const MaxChunkLine = 4094

// IsHex reports whether c is a hexadecimal digit (HEXDIG).
func IsHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Unhex returns the value of the hexadecimal digit c; c must be one
// (IsHex).
func Unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// ParseChunkSize parses one chunk-size line (RFC 9112 §7.1), CRLF included:
// chunk-size [ chunk-ext ] CRLF. As net/http's chunked reader it refuses a
// bare LF and control bytes, ignores the extensions (after ';') and the
// whitespace before them, and refuses a size of more than 16 digits or
// above 1<<62.
func ParseChunkSize[T Text](line T) (int64, bool) {
	n := len(line)
	if n < 3 || line[n-2] != '\r' || line[n-1] != '\n' {
		return 0, false
	}
	line = line[:n-2]
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' && c != '\t' || c == 0x7f {
			return 0, false
		}
	}
	for i := 0; i < len(line); i++ {
		if line[i] == ';' {
			line = line[:i]
			break
		}
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if len(line) == 0 || len(line) > 16 {
		return 0, false
	}
	var size uint64
	for i := 0; i < len(line); i++ {
		c := line[i]
		if !IsHex(c) {
			return 0, false
		}
		size = size<<4 | uint64(Unhex(c))
	}
	if size > 1<<62 {
		return 0, false
	}
	return int64(size), true
}
