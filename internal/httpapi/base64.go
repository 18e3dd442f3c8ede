package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"
)

// Base64 is the content of an attachment, which JSON carries as standard base64. It is decoded
// once, as the request is decoded, straight from the request body into its octets: neither the
// base64 text nor a JSON-unescaped copy of it is kept.
type Base64 struct {
	data  []byte
	given bool  // present, not null and not empty
	err   error // why the text is not valid standard base64
}

// Bytes returns the decoded octets.
func (c Base64) Bytes() []byte { return c.data }

// UnmarshalJSON decodes a JSON string of base64. A string that is not valid base64 is not an
// error of the JSON: it is kept (Err) for the validation that names the field.
func (c *Base64) UnmarshalJSON(tok []byte) error {
	if string(tok) == "null" {
		*c = Base64{}
		return nil
	}
	if len(tok) < 2 || tok[0] != '"' {
		return &json.UnmarshalTypeError{Value: jsonKind(tok), Type: reflect.TypeFor[string]()}
	}
	text := tok[1 : len(tok)-1]
	if bytes.IndexByte(text, '\\') >= 0 { // escapes, e.g. \/ or \n: rare in base64
		var s string
		if err := json.Unmarshal(tok, &s); err != nil {
			return err
		}
		text = []byte(s)
	}
	c.decode(text)
	return nil
}

// decode sets c from base64 text, which it does not keep.
func (c *Base64) decode(text []byte) {
	*c = Base64{given: len(text) > 0}
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(buf, text)
	if err != nil {
		c.err = err
		return
	}
	c.data = buf[:n]
}

// MarshalJSON writes the content as a base64 string.
func (c Base64) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(c.data))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, c.data)
	return append(out, '"'), nil
}

// Schema documents the content as what it is in JSON: a base64 string.
func (Base64) Schema(huma.Registry) *huma.Schema {
	return &huma.Schema{Type: huma.TypeString, ContentEncoding: "base64"}
}

// jsonKind names the kind of a JSON value by its first byte, as encoding/json's type errors do.
func jsonKind(tok []byte) string {
	switch {
	case len(tok) == 0:
		return "nothing"
	case tok[0] == '{':
		return "object"
	case tok[0] == '[':
		return "array"
	case tok[0] == 't', tok[0] == 'f':
		return "bool"
	}
	return "number"
}

// strSpan is where the contents of a JSON string are in a body, without its quotes.
type strSpan struct{ start, end int }

// attachmentContent is the content string of attachments[index].
type attachmentContent struct {
	index int
	strSpan
}

// attachmentContents is decodeItemFast's scan of the attachments array starting at raw[p] ('['):
// it returns where the content string of each attachment is, so that decodeItemFast can cut
// them out before the strict decoder (which would copy the whole body into its buffer and
// unquote each into a string) and decode each straight into octets. It returns ok=false for
// what it leaves to encoding/json: an element that is not an object, a content member written
// with escapes or in another case, or given twice.
func attachmentContents(raw []byte, p int) (contents []attachmentContent, end int, ok bool) {
	p = skipSpace(raw, p+1)
	if p < len(raw) && raw[p] == ']' {
		return nil, p + 1, true
	}
	for index := 0; ; index++ {
		if p >= len(raw) || raw[p] != '{' {
			return nil, 0, false
		}
		given := false
		p = skipSpace(raw, p+1)
		for p < len(raw) && raw[p] != '}' {
			if raw[p] != '"' {
				return nil, 0, false
			}
			keyEnd, ok := stringEnd(raw, p)
			if !ok {
				return nil, 0, false
			}
			key := raw[p+1 : keyEnd-1]
			content := string(key) == "content"
			if !content && (bytes.EqualFold(key, []byte("content")) || bytes.IndexByte(key, '\\') >= 0) {
				return nil, 0, false
			}
			p = skipSpace(raw, keyEnd)
			if p >= len(raw) || raw[p] != ':' {
				return nil, 0, false
			}
			p = skipSpace(raw, p+1)
			end, ok := valueEnd(raw, p)
			if !ok {
				return nil, 0, false
			}
			if content && raw[p] == '"' {
				if given {
					return nil, 0, false
				}
				given = true
				contents = append(contents, attachmentContent{index, strSpan{p + 1, end - 1}})
			}
			p = skipSpace(raw, end)
			if p < len(raw) && raw[p] == ',' {
				p = skipSpace(raw, p+1)
			}
		}
		if p >= len(raw) {
			return nil, 0, false
		}
		p = skipSpace(raw, p+1) // past the '}'
		if p >= len(raw) {
			return nil, 0, false
		}
		switch raw[p] {
		case ']':
			return contents, p + 1, true
		case ',':
			p = skipSpace(raw, p+1)
		default:
			return nil, 0, false
		}
	}
}

// valueEnd returns the offset just past the JSON value starting at raw[p]; a number, true,
// false or null ends at the next delimiter (it is not validated here).
func valueEnd(raw []byte, p int) (int, bool) {
	if p >= len(raw) {
		return 0, false
	}
	switch raw[p] {
	case '"':
		return stringEnd(raw, p)
	case '{', '[':
		return containerEnd(raw, p)
	}
	end := p
	for end < len(raw) && strings.IndexByte(",}] \t\r\n", raw[end]) < 0 {
		end++
	}
	return end, end > p
}
