package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaURL names the template's schema inside the compiler. References to anything else
// ("$ref": "https://…" or "file:…") are refused: the compiler reads nothing from the network
// or the disk.
const schemaURL = "https://postie.invalid/schema.json"

// noLoader refuses every external reference.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema references are not allowed")
}

// compileSchema compiles a template's JSON Schema (draft 2020-12 unless "$schema" says
// otherwise, with "format" asserted). An empty or null schema accepts any JSON object.
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, error) {
	var doc any
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || string(trimmed) == "null" {
		doc = map[string]any{"type": "object"}
	} else {
		var err error
		doc, err = decodeJSON(raw)
		if err != nil {
			e := jsonError("schema", raw, err)
			e.Message = "schema is not valid JSON: " + e.Message
			return nil, e
		}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, &Error{Field: "schema", Message: err.Error()}
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, schemaError(err)
	}
	return sch, nil
}

// schemaError turns a compile failure into errors whose Path is the location in the schema.
func schemaError(err error) error {
	var sve *jsonschema.SchemaValidationError
	if errors.As(err, &sve) {
		var ve *jsonschema.ValidationError
		if errors.As(sve.Err, &ve) {
			// One error per schema location: the alternatives of a failed oneOf in the
			// meta-schema are noise.
			var es Errors
			seen := map[string]bool{}
			for _, e := range validationErrors(ve, "schema", "") {
				if !seen[e.Path] {
					seen[e.Path] = true
					e.Message = "not valid JSON Schema: " + e.Message
					es = append(es, e)
				}
			}
			return errorsOrNil(es)
		}
	}
	e := &Error{Field: "schema", Message: err.Error()}
	var le *jsonschema.LoadURLError
	if errors.As(err, &le) {
		e.Message = fmt.Sprintf("cannot load %q: external schema references are not allowed", le.URL)
	} else {
		e.Message = strings.ReplaceAll(e.Message, schemaURL, "schema")
	}
	return e
}

// validationErrors flattens a validation error tree into one *Error per leaf, with Path the
// instance location under prefix. A missing required property is reported at the property's
// own path ("/data/order/id"), one error each.
func validationErrors(ve *jsonschema.ValidationError, field, prefix string) Errors {
	var es Errors
	p := message.NewPrinter(language.English)
	var walk func(*jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		path := prefix + pointer(v.InstanceLocation)
		if req, ok := v.ErrorKind.(*kind.Required); ok {
			for _, name := range req.Missing {
				es = append(es, &Error{Field: field, Path: path + "/" + escapePointer(name), Message: "is required"})
			}
			return
		}
		es = append(es, &Error{Field: field, Path: path, Message: v.ErrorKind.LocalizedString(p)})
	}
	walk(ve)
	sort.SliceStable(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	return es
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

// escapePointer escapes a JSON pointer token (RFC 6901 §3).
func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// decodeJSON decodes one JSON value with numbers as json.Number (exact decimals for currency
// and no 1e+06 in output), refusing trailing data.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		for end < len(raw) && strings.IndexByte(" \t\r\n", raw[end]) >= 0 {
			end++
		}
		return nil, trailingDataError{offset: end}
	}
	return v, nil
}

// trailingDataError is a JSON document with something after its value.
type trailingDataError struct{ offset int }

func (e trailingDataError) Error() string { return "unexpected data after the JSON value" }

// jsonError describes a JSON decoding error with the line and column of the fault.
func jsonError(field string, raw []byte, err error) *Error {
	e := &Error{Field: field, Message: err.Error()}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var td trailingDataError
	offset := int64(-1)
	switch {
	case errors.As(err, &se):
		offset = se.Offset - 1 // Offset counts the offending byte
	case errors.As(err, &td):
		offset = int64(td.offset)
	case errors.As(err, &te):
		offset = te.Offset
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		offset = int64(len(raw))
		e.Message = "unexpected end of JSON"
	}
	if offset >= 0 {
		e.Line, e.Column = lineColumn(string(raw), int(offset))
	}
	return e
}

// Validate checks a message's data against the template's schema: it must be at most
// MaxDataSize bytes of JSON, an object (empty or null data counts as {}), and valid against
// the schema. Failures are *Error (or Errors, one per violation) on Field "data" with Path the
// JSON pointer of the fault in the request ("/data/order/id").
func (t *Template) Validate(data json.RawMessage) error {
	_, err := t.DecodeData(data)
	return err
}

// DecodeData validates data like Validate and returns it decoded for Context.Data, with
// numbers as json.Number so that amounts keep their exact decimals.
func (t *Template) DecodeData(data json.RawMessage) (any, error) {
	if len(data) > MaxDataSize {
		return nil, &Error{Field: "data", Path: "/data",
			Message: fmt.Sprintf("data is %s; the limit is %s", size(len(data)), size(MaxDataSize))}
	}
	var v any = map[string]any{}
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && string(trimmed) != "null" {
		var err error
		if v, err = decodeJSON(data); err != nil {
			e := jsonError("data", data, err)
			e.Path = "/data"
			e.Message = "data is not valid JSON: " + e.Message
			return nil, e
		}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, &Error{Field: "data", Path: "/data", Message: "data must be a JSON object"}
	}
	if err := t.schema.Validate(v); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return nil, errorsOrNil(validationErrors(ve, "data", "/data"))
		}
		return nil, &Error{Field: "data", Path: "/data", Message: err.Error()}
	}
	return v, nil
}

// size formats a byte count for messages: "1 MB", "123 KB", "512 bytes".
func size(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MB"
	case n >= 1<<10:
		return strconv.Itoa((n+1<<10-1)>>10) + " KB"
	}
	return strconv.Itoa(n) + " bytes"
}
