package httpapi

// encoding/json accepts two things in a request body that the API refuses: text that is not
// valid UTF-8 or holds a lone surrogate escape ("\ud800"), which it replaces with U+FFFD, and a
// member given twice in one object, of which it keeps the last (and it matches struct fields
// case-insensitively, so "Subject" beside "subject" is the same field twice). checkJSON finds
// both in a body encoding/json has already accepted as well-formed, and the decoders turn what it
// finds into a 422 naming the field.

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// jsonShape says how checkJSON compares the keys of an object and of what is inside it.
type jsonShape struct {
	fold   bool                  // keys are struct fields: compared as encoding/json matches them, case-insensitively
	fields map[string]*jsonShape // the shapes of members, by folded key (structs)
	elem   *jsonShape            // the shape of array elements and of map values
	skip   bool                  // not looked into (checked on its own later)
}

// shapeOf returns the shape of values decoded into t: structs fold their keys; maps, arrays and
// everything else (json.RawMessage included) compare keys exactly at every depth.
func shapeOf(t reflect.Type) *jsonShape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[json.RawMessage]():
		return nil
	case t.Kind() == reflect.Struct && t != reflect.TypeFor[struct{}]():
		s := &jsonShape{fold: true, fields: map[string]*jsonShape{}}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			if fs := shapeOf(f.Type); fs != nil {
				s.fields[foldKey(name)] = fs
			}
		}
		return s
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map:
		if es := shapeOf(t.Elem()); es != nil {
			return &jsonShape{elem: es}
		}
	}
	return nil
}

// foldKey maps every rune of s to one rune of its Unicode simple case folds (the ASCII lower
// case letter when there is one, else the smallest), so that foldKey(a) == foldKey(b) exactly
// when strings.EqualFold(a, b), as encoding/json compares a key with a struct field's name (it
// matches "SUBJECT", and "ſubject" with a long s, to subject). A key already in that form, as
// the API's field names are, is returned without copying.
func foldKey(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || r < 'A' {
			return r
		}
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if 'a' <= f && f <= 'z' {
				return f
			}
			m = min(m, f)
		}
		return m
	}, s)
}

// jsonPath is where checkJSON is, built into a location only when something is found there.
type jsonPath struct {
	parent *jsonPath
	key    string // a member's key, or
	index  int    // an element's index when key is ""
	isElem bool
}

func (p *jsonPath) location(prefix string) string {
	var parts []string
	for ; p != nil; p = p.parent {
		if p.isElem {
			parts = append(parts, "["+strconv.Itoa(p.index)+"]")
		} else {
			parts = append(parts, "."+p.key)
		}
	}
	var b strings.Builder
	b.WriteString(prefix)
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
	}
	return b.String()
}

// jsonIssue is what checkJSON found, and where.
type jsonIssue struct {
	path *jsonPath
	msg  string
}

// detail is the issue as a field error of a body at prefix ("body", "body.messages[3]").
func (i *jsonIssue) detail(prefix string) *huma.ErrorDetail {
	return &huma.ErrorDetail{Location: i.path.location(prefix), Message: i.msg}
}

// checkJSON returns the first string of raw that is not valid UTF-8 or holds a lone surrogate,
// or the first member given twice in an object (keys compared as shape says), or nil. raw must
// be well-formed JSON (decode it first): on anything else it returns nil or a nonsense issue.
func checkJSON(raw []byte, shape *jsonShape) *jsonIssue {
	c := jsonChecker{raw: raw}
	c.value(skipSpace(raw, 0), shape, nil)
	return c.issue
}

type jsonChecker struct {
	raw   []byte
	issue *jsonIssue
}

// value checks the value at p and returns the offset just past it.
func (c *jsonChecker) value(p int, shape *jsonShape, path *jsonPath) int {
	if p >= len(c.raw) || c.issue != nil {
		return len(c.raw)
	}
	if shape != nil && shape.skip {
		switch c.raw[p] {
		case '{', '[':
			end, _ := containerEnd(c.raw, p)
			return end
		}
	}
	switch c.raw[p] {
	case '{':
		return c.object(p, shape, path)
	case '[':
		var elem *jsonShape
		if shape != nil {
			elem = shape.elem
		}
		p = skipSpace(c.raw, p+1)
		for i := 0; p < len(c.raw) && c.raw[p] != ']'; i++ {
			p = skipSpace(c.raw, c.value(p, elem, &jsonPath{parent: path, index: i, isElem: true}))
			if p < len(c.raw) && c.raw[p] == ',' {
				p = skipSpace(c.raw, p+1)
			}
		}
		return p + 1
	case '"':
		end := c.strEnd(p)
		if msg := stringProblem(c.raw[p+1 : max(p+1, end-1)]); msg != "" {
			c.issue = &jsonIssue{path: path, msg: msg}
		}
		return end
	}
	for p < len(c.raw) && strings.IndexByte(",}] \t\r\n", c.raw[p]) < 0 {
		p++
	}
	return p
}

// strEnd returns the offset just past the string whose opening quote is at p.
func (c *jsonChecker) strEnd(p int) int {
	end, ok := stringEnd(c.raw, p)
	if !ok {
		return len(c.raw)
	}
	return end
}

func (c *jsonChecker) object(p int, shape *jsonShape, path *jsonPath) int {
	var seen seenKeys
	p = skipSpace(c.raw, p+1)
	for p < len(c.raw) && c.raw[p] == '"' && c.issue == nil {
		end := c.strEnd(p)
		rawKey := c.raw[p+1 : max(p+1, end-1)]
		key, ok := unquote(rawKey)
		member := &jsonPath{parent: path, key: key}
		if !ok {
			member.key = strings.ToValidUTF8(string(rawKey), "\uFFFD")
			c.issue = &jsonIssue{path: member, msg: "the member name " + stringProblem(rawKey)}
			return len(c.raw)
		}
		cmp := key
		var sub *jsonShape
		if shape != nil {
			if shape.fold {
				cmp = foldKey(key)
			}
			if shape.fields != nil {
				sub = shape.fields[cmp]
			} else {
				sub = shape.elem
			}
		}
		if first, dup := seen.add(cmp, key); dup {
			msg := "given twice in one object"
			if first != key {
				msg = "given twice: " + strconv.Quote(first) + " and " + strconv.Quote(key) + " name the same field (names are case-insensitive)"
			}
			c.issue = &jsonIssue{path: member, msg: msg}
			return len(c.raw)
		}
		p = skipSpace(c.raw, end)
		if p < len(c.raw) && c.raw[p] == ':' {
			p = skipSpace(c.raw, p+1)
		}
		p = skipSpace(c.raw, c.value(p, sub, member))
		if p < len(c.raw) && c.raw[p] == ',' {
			p = skipSpace(c.raw, p+1)
		}
	}
	return p + 1
}

// seenKeys are the keys of one object so far: a list while it is short (most objects are), a
// map beyond.
type seenKeys struct {
	list []seenKey
	m    map[string]string
}

type seenKey struct{ cmp, key string }

// add notes key (cmp as compared) and returns the key first seen as cmp, if any.
func (s *seenKeys) add(cmp, key string) (first string, dup bool) {
	if s.m != nil {
		if first, dup = s.m[cmp]; !dup {
			s.m[cmp] = key
		}
		return first, dup
	}
	for _, k := range s.list {
		if k.cmp == cmp {
			return k.key, true
		}
	}
	if len(s.list) < 16 {
		s.list = append(s.list, seenKey{cmp, key})
		return "", false
	}
	s.m = make(map[string]string, 2*len(s.list))
	for _, k := range s.list {
		s.m[k.cmp] = k.key
	}
	s.m[cmp] = key
	return "", false
}

// stringProblem says what is wrong with the contents of a JSON string (without its quotes), or
// "" when nothing is: bytes that are not UTF-8, or a \u escape of a surrogate that is not a
// high one followed by a low one (RFC 8259 §8.2: such a string cannot be text).
func stringProblem(s []byte) string {
	if !utf8.Valid(s) {
		return "is not valid UTF-8"
	}
	for i := bytes.IndexByte(s, '\\'); i >= 0 && i+1 < len(s); {
		n := 2
		if s[i+1] == 'u' {
			r, ok := hex4(s[i+2:])
			n = 6
			if ok && utf16.IsSurrogate(r) {
				rest := s[i+6:]
				r2, ok2 := rune(0), false
				if len(rest) >= 6 && rest[0] == '\\' && rest[1] == 'u' {
					r2, ok2 = hex4(rest[2:])
				}
				if !ok2 || utf16.DecodeRune(r, r2) == utf8.RuneError {
					return "holds a lone UTF-16 surrogate (" + string(s[i:i+6]) + "), which is not text"
				}
				n = 12
			}
		}
		i += n
		j := bytes.IndexByte(s[i:], '\\')
		if j < 0 {
			break
		}
		i += j
	}
	return ""
}

// jsonProblem is the 422 of an issue checkJSON found in a body at prefix.
func jsonProblem(is *jsonIssue, prefix string) error {
	d := is.detail(prefix)
	return huma.Error422UnprocessableEntity(d.Location+": "+d.Message, d)
}

// messageShape is the shape of a message object; batchShape of a batch body, whose items are
// checked one by one (decodeItem) so that a bad item is refused alone.
var (
	messageShape = shapeOf(reflect.TypeFor[SendMessage]())
	batchShape   = &jsonShape{fold: true, fields: map[string]*jsonShape{"messages": {skip: true}}}
)

// checkedItem returns req decoded from raw, or the 422 of what checkJSON finds in raw.
func checkedItem(req *SendMessage, raw []byte, prefix string) (*SendMessage, error) {
	if is := checkJSON(raw, messageShape); is != nil {
		return nil, jsonProblem(is, prefix)
	}
	return req, nil
}

// strictBody is what checkJSON found in a body huma decoded (through the body type's
// UnmarshalJSON, which sees the bytes as sent); the body type's Resolve, which huma calls after
// decoding, reports it as a 422.
type strictBody struct{ issue *jsonIssue }

func (b strictBody) errors() []error {
	if b.issue == nil {
		return nil
	}
	return []error{b.issue.detail("body")}
}

// The shapes of the bodies huma decodes.
var (
	templateBodyShape     = shapeOf(reflect.TypeFor[TemplateBody]())
	renderBodyShape       = shapeOf(reflect.TypeFor[RenderBody]())
	suppressionBodyShape  = shapeOf(reflect.TypeFor[SuppressionBody]())
	retryFilterShape      = shapeOf(reflect.TypeFor[RetryFilter]())
	listBodyShape         = shapeOf(reflect.TypeFor[ListBody]())
	subscriptionBodyShape = shapeOf(reflect.TypeFor[SubscriptionBody]())
)

// decode decodes data into v (the body as a type without this UnmarshalJSON) and notes what
// checkJSON finds in it with shape, when it decodes.
func (s *strictBody) decode(data []byte, v any, shape *jsonShape) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		s.issue = checkJSON(data, shape)
	}
	return err
}

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *TemplateBody) UnmarshalJSON(data []byte) error {
	type plain TemplateBody
	return b.strict.decode(data, (*plain)(b), templateBodyShape)
}

func (b *TemplateBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *RenderBody) UnmarshalJSON(data []byte) error {
	type plain RenderBody
	return b.strict.decode(data, (*plain)(b), renderBodyShape)
}

func (b *RenderBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *SuppressionBody) UnmarshalJSON(data []byte) error {
	type plain SuppressionBody
	return b.strict.decode(data, (*plain)(b), suppressionBodyShape)
}

func (b *SuppressionBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *RetryFilter) UnmarshalJSON(data []byte) error {
	type plain RetryFilter
	return b.strict.decode(data, (*plain)(b), retryFilterShape)
}

// Resolve reports what UnmarshalJSON found, and applies zero times as listings do.
func (b *RetryFilter) Resolve(huma.Context) []error {
	if b.CreatedAfter != nil {
		*b.CreatedAfter = applyZero(*b.CreatedAfter, true)
	}
	if b.CreatedBefore != nil {
		*b.CreatedBefore = applyZero(*b.CreatedBefore, true)
	}
	return b.strict.errors()
}
