package httpapi

// Fast paths for decoding message requests. encoding/json runs its byte-at-a-time state machine
// over every byte of a value at least twice (once to find or validate it, once to decode it),
// which weighs most on the two large strings, html and text, and on finding the items of a
// batch. These functions
// handle only the common, well-formed shapes and return ok=false for anything else, which the
// callers then decode with encoding/json as before, so errors are worded as they always were.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// splitBatch is the fast path of decoding a batch body: it returns the items of a body of exactly
// the shape {"messages": [{…}, {…}, …]} (any white space between tokens), each item an object,
// without decoding them, or ok=false for anything else, which the caller then decodes with
// encoding/json for its exact errors.
//
// encoding/json spends two full scans of its state machine on the whole body to do the same
// (Decoder.Decode validates the value, then skips over every json.RawMessage), which costs as
// much as decoding the items themselves. Here an item is delimited by
// counting brackets outside strings and jumping from quote to quote with bytes.IndexByte; it is
// not validated: every item goes through decodeItem, which rejects a malformed one as a syntax
// error, and the caller then falls back to encoding/json for the whole body (a body whose glue
// between items is valid JSON and whose every item is a valid object is valid JSON).
func splitBatch(body []byte) (items []json.RawMessage, ok bool) {
	p := skipSpace(body, 0)
	if p >= len(body) || body[p] != '{' {
		return nil, false
	}
	p = skipSpace(body, p+1)
	const key = `"messages"`
	if !bytes.HasPrefix(body[p:], []byte(key)) {
		return nil, false
	}
	p = skipSpace(body, p+len(key))
	if p >= len(body) || body[p] != ':' {
		return nil, false
	}
	p = skipSpace(body, p+1)
	if p >= len(body) || body[p] != '[' {
		return nil, false
	}
	p = skipSpace(body, p+1)
	if p < len(body) && body[p] == ']' {
		p++
	} else {
		for {
			end, ok := objectEnd(body, p)
			if !ok {
				return nil, false
			}
			items = append(items, json.RawMessage(body[p:end]))
			p = skipSpace(body, end)
			if p >= len(body) {
				return nil, false
			}
			if body[p] == ']' {
				p++
				break
			}
			if body[p] != ',' {
				return nil, false
			}
			p = skipSpace(body, p+1)
		}
	}
	p = skipSpace(body, p)
	if p >= len(body) || body[p] != '}' {
		return nil, false
	}
	if skipSpace(body, p+1) != len(body) {
		return nil, false
	}
	if items == nil {
		items = []json.RawMessage{} // present but empty, as encoding/json decodes []
	}
	return items, true
}

// objectEnd returns the offset just past the object starting at body[p], which must be '{'.
func objectEnd(body []byte, p int) (int, bool) {
	if p >= len(body) || body[p] != '{' {
		return 0, false
	}
	return containerEnd(body, p)
}

// containerEnd returns the offset just past the object or array starting at body[p], counting
// brackets outside strings (not matching them: a malformed value is caught by whoever decodes it).
func containerEnd(body []byte, p int) (int, bool) {
	depth := 0
	for p < len(body) {
		switch body[p] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return p + 1, true
			}
		case '"':
			end, ok := stringEnd(body, p)
			if !ok {
				return 0, false
			}
			p = end
			continue
		}
		p++
	}
	return 0, false
}

// stringEnd returns the offset just past the string whose opening quote is body[p]. It jumps
// from quote to quote (bytes.IndexByte) and counts the backslashes before each: an odd number
// escapes it.
func stringEnd(body []byte, p int) (int, bool) {
	start := p + 1
	for p = start; ; {
		i := bytes.IndexByte(body[p:], '"')
		if i < 0 {
			return 0, false
		}
		q := p + i
		n := 0
		for k := q - 1; k >= start && body[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, true
		}
		p = q + 1
	}
}

// skipSpace returns the offset of the first byte from p on that is not JSON white space.
func skipSpace(b []byte, p int) int {
	for p < len(b) {
		switch b[p] {
		case ' ', '\t', '\n', '\r':
			p++
		default:
			return p
		}
	}
	return p
}

// decodeItemFast decodes a message object whose html and text members are strings by cutting
// those two strings out, decoding the rest with the strict decoder (decodeStrict) and unquoting
// the two strings itself; the content strings of its attachments are cut out likewise and
// decoded straight into octets (attachmentContents). It returns ok=false, having decoded
// nothing, for any object it does not handle: no html, text or attachment content string, a
// member name written with escapes or in another case (encoding/json matches names
// case-insensitively), a name given twice, invalid UTF-8 or a lone surrogate in the strings, or
// anything the strict decoder refuses.
//
// rest is raw with the strings it decoded itself emptied: what remains for checkJSON, since
// those strings were already checked here (UTF-8 and surrogates by unquote, attachment contents
// by their base64 decoding) and the members keep their places, so an issue found in rest names
// the same location as in raw.
//
// A message without html, text and attachments (one sent with a template) is scanned here for
// nothing and then decoded by encoding/json alone: the scan counts brackets and jumps from quote
// to quote, little beside what encoding/json then spends on the same bytes, and there is nothing
// decoded to hand over (the other members, data included, are always decoded by encoding/json).
func decodeItemFast(raw []byte) (req *SendMessage, rest []byte, ok bool) {
	type span struct{ start, end int } // of a string's contents, without its quotes
	var html, text *span
	var contents []attachmentContent // cut out of attachments[].content, see attachmentContents
	attachments := false
	p := skipSpace(raw, 0)
	if p >= len(raw) || raw[p] != '{' {
		return nil, nil, false
	}
	p = skipSpace(raw, p+1)
	if p < len(raw) && raw[p] == '}' {
		return nil, nil, false
	}
	for {
		if p >= len(raw) || raw[p] != '"' {
			return nil, nil, false
		}
		keyEnd, ok := stringEnd(raw, p)
		if !ok {
			return nil, nil, false
		}
		key := raw[p+1 : keyEnd-1]
		var dst **span
		switch {
		case string(key) == "html":
			dst = &html
		case string(key) == "text":
			dst = &text
		case bytes.EqualFold(key, []byte("html")), bytes.EqualFold(key, []byte("text")),
			bytes.IndexByte(key, '\\') >= 0:
			return nil, nil, false
		}
		p = skipSpace(raw, keyEnd)
		if p >= len(raw) || raw[p] != ':' {
			return nil, nil, false
		}
		p = skipSpace(raw, p+1)
		if p >= len(raw) {
			return nil, nil, false
		}
		var end int
		switch raw[p] {
		case '"':
			end, ok = stringEnd(raw, p)
			if ok && dst != nil {
				if *dst != nil {
					return nil, nil, false // given twice
				}
				*dst = &span{p + 1, end - 1}
			}
		case '{', '[':
			if string(key) == "attachments" && raw[p] == '[' {
				if attachments {
					return nil, nil, false // given twice
				}
				attachments = true
				contents, end, ok = attachmentContents(raw, p)
			} else {
				end, ok = containerEnd(raw, p)
			}
		default: // a number, true, false or null: up to the next delimiter
			end = p
			for end < len(raw) && strings.IndexByte(",}] \t\r\n", raw[end]) < 0 {
				end++
			}
			ok = end > p
		}
		if !ok {
			return nil, nil, false
		}
		p = skipSpace(raw, end)
		if p >= len(raw) {
			return nil, nil, false
		}
		if raw[p] == '}' {
			if skipSpace(raw, p+1) != len(raw) {
				return nil, nil, false
			}
			break
		}
		if raw[p] != ',' {
			return nil, nil, false
		}
		p = skipSpace(raw, p+1)
	}
	if html == nil && text == nil && len(contents) == 0 {
		return nil, nil, false
	}

	// The object with every string cut out emptied, for the strict decoder.
	spans := make([]span, 0, 2+len(contents))
	for _, sp := range []*span{html, text} {
		if sp != nil {
			spans = append(spans, *sp)
		}
	}
	for _, c := range contents {
		spans = append(spans, span(c.strSpan))
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	cut := 0
	for _, sp := range spans {
		cut += sp.end - sp.start
	}
	rest = make([]byte, 0, len(raw)-cut)
	at := 0
	for _, sp := range spans {
		rest = append(rest, raw[at:sp.start]...)
		at = sp.end
	}
	rest = append(rest, raw[at:]...)
	req, err := decodeStrict(rest)
	if err != nil {
		return nil, nil, false
	}
	if html != nil {
		if req.HTML, ok = unquote(raw[html.start:html.end]); !ok {
			return nil, nil, false
		}
	}
	if text != nil {
		if req.Text, ok = unquote(raw[text.start:text.end]); !ok {
			return nil, nil, false
		}
	}
	for _, c := range contents {
		if c.index >= len(req.Attachments) {
			return nil, nil, false
		}
		// The string with its quotes: decoded from the body, straight into octets.
		if err := req.Attachments[c.index].Content.UnmarshalJSON(raw[c.start-1 : c.end+1]); err != nil {
			return nil, nil, false
		}
	}
	return req, rest, true
}

// unquote decodes the contents of a JSON string (RFC 8259 §7), or returns ok=false for what it
// leaves to encoding/json: a control character or a bad escape (syntax errors), invalid UTF-8
// or a lone surrogate (which encoding/json replaces with U+FFFD). Runs of printable ASCII are
// found eight bytes at a time (plainRun) and copied whole: HTML sent by Go clients has an escape
// every few bytes (json.Marshal writes < and > as \u003c and \u003e).
func unquote(s []byte) (string, bool) {
	var b []byte
	start, i := 0, 0 // s[start:i] is unescaped text not yet copied to b
	for {
		i += plainRun(s[i:])
		if i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "", false
			}
			i += size
			continue
		}
		if c != '\\' {
			return "", false // a control character
		}
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[start:i]...)
		if i+1 >= len(s) {
			return "", false
		}
		n := 2 // the length of the escape
		switch c := s[i+1]; c {
		case '"', '\\', '/':
			b = append(b, c)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return "", false
			}
			n = 6
			if utf16.IsSurrogate(r) {
				rest := s[i+6:]
				if len(rest) < 6 || rest[0] != '\\' || rest[1] != 'u' {
					return "", false
				}
				r2, ok := hex4(rest[2:])
				if !ok {
					return "", false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return "", false
				}
				n = 12
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", false
		}
		i += n
		start = i
	}
	if b == nil {
		return string(s), true
	}
	b = append(b, s[start:]...)
	// b is this function's own and never changes again: the string may share its bytes.
	return unsafe.String(unsafe.SliceData(b), len(b)), true
}

// plainRun returns the length of the prefix of s made of printable ASCII (0x20–0x7f) other than
// the backslash: what a JSON string holds as it is.
func plainRun(s []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		bs := w ^ (ones * '\\')
		// A byte >= 0x80; else a byte < 0x20; a zero byte of bs is a backslash (the usual
		// has-less-than and has-zero tricks, exact as to whether there is one in the word).
		if (w|(w-ones*0x20)&^w|(bs-ones)&^bs)&highs != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '\\' {
			break
		}
	}
	return i
}

// hex4 reads the four hex digits of a \u escape.
func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
