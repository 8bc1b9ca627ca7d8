package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Every request carries a JSON header, so requests have a hand-written
// decoder for the shapes clients send: decoding them with encoding/json made
// each send through the broker about a fifth slower end to end
// (docs/benchmarks.md). Anything unusual (unknown keys, numbers with
// fractions, UTF-16 surrogate escapes) falls back to encoding/json, which
// stays the reference: the fast path must decode exactly what it would.
// Response headers are written by encoding/json.

// decodeHeaderFast parses a header of the keys a client sends. ok is false
// when the input needs the general decoder.
func decodeHeaderFast(data []byte, cmd *Command) (ok bool) {
	p := &scanner{b: data}
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.consume(':') {
			return false
		}
		switch key {
		case "code":
			cmd.Code, ok = p.int32()
		case "version":
			cmd.Version, ok = p.int32()
		case "opaque":
			cmd.Opaque, ok = p.int32()
		case "flag":
			cmd.Flag, ok = p.int32()
		case "language":
			var s string
			if s, ok = p.str(); ok {
				cmd.Language = s
			}
		case "remark":
			if p.null() {
				break
			}
			cmd.Remark, ok = p.str()
		case "extFields":
			if p.null() {
				cmd.ExtFields = nil // as encoding/json does
				break
			}
			ok = p.stringMap(cmd)
		default:
			return false
		}
		if !ok {
			return false
		}
		if p.consume(',') {
			continue
		}
		return p.consume('}') && p.end()
	}
}

type scanner struct {
	b []byte
	i int
}

func (p *scanner) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scanner) consume(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *scanner) end() bool {
	p.ws()
	return p.i == len(p.b)
}

func (p *scanner) null() bool {
	p.ws()
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// plainJSON marks the bytes a JSON string holds as they are: printable ASCII
// except the quote and the backslash.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// plainRun returns the end of the run of plain bytes of b starting at i.
func plainRun(b []byte, i int) int {
	for i < len(b) && plainJSON[b[i]] {
		i++
	}
	return i
}

// textRun returns the end of the run of b starting at i that holds no quote,
// backslash or control byte, and whether the run is valid UTF-8.
func textRun(b []byte, i int) (int, bool) {
	start := i
	i = plainRun(b, i)
	if i == len(b) || b[i] < 0x80 {
		return i, true
	}
	// Non-ASCII: the rest of the run is checked as UTF-8 as a whole.
	for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
		i++
	}
	return i, utf8.Valid(b[start:i])
}

// str reads a string in valid UTF-8. Escapes are decoded, except UTF-16
// surrogates, which are left to encoding/json with its replacement rules.
// The client escapes the \x01 and \x02 of every properties string.
func (p *scanner) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	start := p.i
	end, ok := textRun(p.b, p.i)
	if !ok || end == len(p.b) {
		return "", false
	}
	p.i = end
	switch p.b[end] {
	case '"':
		p.i++
		return string(p.b[start:end]), true
	case '\\':
		return p.strEscaped(start)
	}
	return "", false // a control byte
}

// strEscaped decodes the rest of a string from its first backslash at p.i;
// b[start:p.i] is valid text already.
func (p *scanner) strEscaped(start int) (string, bool) {
	// The decoded string is no longer than its encoding, which runs at least
	// to the next quote.
	var out strings.Builder
	if q := bytes.IndexByte(p.b[p.i:], '"'); q >= 0 {
		out.Grow(p.i - start + q)
	}
	out.Write(p.b[start:p.i])
	for p.i < len(p.b) {
		// Escapes are ASCII, so no UTF-8 sequence crosses a run's end and
		// each run is validated on its own.
		run := p.i
		end, ok := textRun(p.b, run)
		if !ok {
			return "", false
		}
		out.Write(p.b[run:end])
		p.i = end
		if end == len(p.b) || p.b[end] < 0x20 {
			return "", false
		}
		if p.b[end] == '"' {
			p.i++
			return out.String(), true
		}
		if end+1 >= len(p.b) {
			return "", false
		}
		e := p.b[end+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			out.WriteByte(e)
		case 'b':
			out.WriteByte('\b')
		case 'f':
			out.WriteByte('\f')
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case 'u':
			v, ok := hex4(p.b[p.i:])
			if !ok || (v >= 0xD800 && v < 0xE000) {
				return "", false
			}
			p.i += 4
			out.WriteRune(rune(v))
		default:
			return "", false
		}
	}
	return "", false
}

// hex4 decodes the four hexadecimal digits b starts with.
func hex4(b []byte) (uint16, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint16(c)
	}
	return v, true
}

func (p *scanner) int32() (int32, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || n > 10 || (n > 1 && p.b[digits] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	v, err := strconv.ParseInt(string(p.b[start:p.i]), 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(v), true
}

func (p *scanner) stringMap(cmd *Command) bool {
	if !p.consume('{') {
		return false
	}
	if cmd.ExtFields == nil {
		cmd.ExtFields = make(map[string]string, 16)
	}
	if p.consume('}') {
		return true
	}
	for {
		k, ok := p.str()
		if !ok || !p.consume(':') {
			return false
		}
		v, ok := p.str()
		if !ok {
			return false
		}
		cmd.ExtFields[k] = v
		if p.consume(',') {
			continue
		}
		return p.consume('}')
	}
}

// encodeHeader returns the JSON header of c; the language defaults to JAVA,
// as the Apache broker's.
func encodeHeader(c *Command) ([]byte, error) {
	h := *c
	if h.Language == "" {
		h.Language = "JAVA"
	}
	b, err := json.Marshal(&h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFrame, err)
	}
	return b, nil
}
