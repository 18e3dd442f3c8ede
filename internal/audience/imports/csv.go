package imports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
)

// The CSV side of imports: checking an upload while it is spooled, mapping its columns to
// contact fields, and turning rows into ContactUpserts. Nothing here does I/O beyond the readers
// and writers it is given.

// Contact fields a column can map to; any other target is attributes.NAME.
const (
	fieldEmail        = "email"
	fieldExternalID   = "external_id"
	fieldName         = "name"
	fieldLocale       = "locale"
	fieldTimezone     = "timezone"
	fieldLastActiveAt = "last_active_at"
	attrPrefix        = "attributes."
)

var importFields = []string{fieldEmail, fieldExternalID, fieldName, fieldLocale, fieldTimezone, fieldLastActiveAt}

// Limits of one row.
const (
	// maxRecordBytes bounds one CSV record (a row, quoted line breaks included), which the
	// parser holds whole: a contact's attributes are at most 64 KB, so a longer row cannot be
	// stored anyway, and the bound keeps the memory of an upload constant whatever it holds.
	maxRecordBytes  = 1 << 20
	maxAttributes   = 64 << 10
	maxShortField   = 255 // external_id, locale, timezone
	maxNameField    = 1000
	maxAttrNameSize = 200
)

var bom = []byte("\ufeff")

// errRecordTooLong is a record over maxRecordBytes.
var errRecordTooLong = errors.New("record too long")

// recordGuard passes a CSV upload through, failing once more than maxRecordBytes have been read
// since the end of the last complete record (mark): it is what bounds the parser's memory.
type recordGuard struct {
	r    io.Reader
	read int64 // bytes handed out
	mark int64 // input offset of the end of the last record
}

func (g *recordGuard) Read(p []byte) (int, error) {
	if g.read-g.mark > maxRecordBytes {
		return 0, errRecordTooLong
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	return n, err
}

// skipBOM skips a leading UTF-8 byte order mark and returns its length (0 when none).
func skipBOM(br *bufio.Reader) int64 {
	if head, _ := br.Peek(len(bom)); bytes.Equal(head, bom) {
		_, _ = br.Discard(len(bom))
		return int64(len(bom))
	}
	return 0
}

// newCSVReader is the one CSV dialect of imports: RFC 4180 with commas, strict quotes
// (LazyQuotes off).
func newCSVReader(r io.Reader) *csv.Reader {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // a row of another length fails alone (rowPlan.contact), the file goes on
	return cr
}

// Spooled is what checking an upload found: its header and how many data rows follow.
type Spooled struct {
	Header []string
	Rows   int
	Bytes  int64
}

// spoolCSV copies an upload from r to w while checking it as CSV: UTF-8 (a leading BOM is
// allowed), well-formed quoting, no record over maxRecordBytes, at most maxRows data rows. It
// holds one record at a time. Rows whose field count differs from the header's are let through:
// they fail one by one when applied. The first problem stops the copy with a *Problem.
func spoolCSV(r io.Reader, w io.Writer, maxRows int) (Spooled, error) {
	var sp Spooled
	counted := &countWriter{w: w}
	g := &recordGuard{r: io.TeeReader(r, counted)}
	br := bufio.NewReaderSize(g, 64<<10)
	base := skipBOM(br)
	cr := newCSVReader(br)
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		switch {
		case errors.Is(err, errRecordTooLong):
			return sp, problem(KindMalformed, "file", "row %d is longer than %d bytes", row, maxRecordBytes)
		case errors.As(err, &pe):
			return sp, problem(KindMalformed, "file", "row %d (line %d, column %d): %v", row, pe.Line, pe.Column, pe.Err)
		case err != nil:
			return sp, err
		}
		for col, v := range rec {
			if !utf8.ValidString(v) {
				return sp, problem(KindMalformed, "file",
					"row %d, column %d is not valid UTF-8: the file must be UTF-8 (re-export it as \"CSV UTF-8\")", row, col+1)
			}
		}
		end := base + cr.InputOffset()
		if end-g.mark > maxRecordBytes {
			// The guard stops a longer record within a buffer's length; this catches the rest.
			return sp, problem(KindMalformed, "file", "row %d is longer than %d bytes", row, maxRecordBytes)
		}
		g.mark = end
		if row == 1 {
			sp.Header = append([]string(nil), rec...)
			continue
		}
		if sp.Rows++; maxRows > 0 && sp.Rows > maxRows {
			return sp, problem(KindTooLarge, "file", "more than %d rows (POSTIE_IMPORT_MAX_ROWS)", maxRows)
		}
	}
	if sp.Header == nil {
		return sp, problem(KindInvalid, "file", "the file is empty: it needs a header row naming its columns")
	}
	sp.Bytes = counted.n
	return sp, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// column is what one CSV column becomes.
type column struct {
	field string // one of importFields, or "" for an attribute (or ignored when attr is "" too)
	attr  string // the attribute's name
	typ   string // its declared type, "" when none (kept as a string)
}

// ResolveMapping maps every column of header to a target: the column's entry in mapping when
// there is one ("" ignores the column), otherwise its name when that is a contact field (any
// case), otherwise attributes.NAME; a column without a name is ignored. It returns the mapping
// as applied (column → target, ignored columns left out) or a *Problem naming the mapping entry
// or column at fault. The header must map a column to email.
func ResolveMapping(header []string, mapping map[string]string) (map[string]string, error) {
	seen := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if prev, dup := seen[h]; dup && h != "" {
			return nil, problem(KindInvalid, "file", "columns %d and %d are both named %q: rename one", prev+1, i+1, h)
		}
		seen[h] = i
	}
	for col, target := range mapping {
		if _, ok := seen[col]; !ok || col == "" {
			return nil, problem(KindInvalid, "mapping."+col, "the header has no column %q", col)
		}
		if target == "" {
			continue
		}
		if err := checkTarget(target); err != nil {
			return nil, problem(KindInvalid, "mapping."+col, "%v", err)
		}
	}
	out := map[string]string{}
	by := map[string]string{} // target → column
	for _, h := range header {
		h = strings.TrimSpace(h)
		target, mapped := mapping[h]
		if !mapped {
			switch {
			case h == "":
				continue
			case isField(strings.ToLower(h)):
				target = strings.ToLower(h)
			default:
				target = attrPrefix + h
				if err := checkTarget(target); err != nil {
					return nil, problem(KindInvalid, "mapping."+h, "column %q cannot be an attribute (%v): map it", h, err)
				}
			}
		}
		if target == "" {
			continue
		}
		if prev, dup := by[target]; dup {
			return nil, problem(KindInvalid, "mapping."+h, "columns %q and %q both map to %s", prev, h, target)
		}
		by[target] = h
		out[h] = target
	}
	if _, ok := by[fieldEmail]; !ok {
		return nil, problem(KindInvalid, "mapping", "no column maps to email: name a column email or map one with mapping {\"COLUMN\": \"email\"}")
	}
	return out, nil
}

// CheckMapping checks a mapping's targets before the header is known.
func CheckMapping(mapping map[string]string) error {
	for col, target := range mapping {
		if target == "" {
			continue
		}
		if err := checkTarget(target); err != nil {
			return problem(KindInvalid, "mapping."+col, "%v", err)
		}
	}
	return nil
}

func isField(s string) bool {
	for _, f := range importFields {
		if s == f {
			return true
		}
	}
	return false
}

func checkTarget(target string) error {
	if isField(target) {
		return nil
	}
	name, ok := strings.CutPrefix(target, attrPrefix)
	switch {
	case !ok:
		return fmt.Errorf("%q is not a contact field (%s) or attributes.NAME", target, strings.Join(importFields, ", "))
	case name == "" || len(name) > maxAttrNameSize || !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return fmt.Errorf("%q: an attribute name is 1 to %d bytes of UTF-8", target, maxAttrNameSize)
	}
	return nil
}

// rowPlan turns the records of one file into ContactUpserts.
type rowPlan struct {
	cols    []column // by column index
	email   int      // the email column's index
	lists   []string
	mode    string
	tz      map[string]bool   // time zones known to be valid
	locales map[string]string // language tags seen → canonical form
}

// newRowPlan builds the plan of a file from its header and the mapping as applied; types are
// the declared attribute types (nil: none).
func newRowPlan(header []string, applied map[string]string, types map[string]string, lists []string, mode string) (*rowPlan, error) {
	p := &rowPlan{cols: make([]column, len(header)), email: -1, lists: lists, mode: mode, tz: map[string]bool{}, locales: map[string]string{}}
	for i, h := range header {
		target, ok := applied[strings.TrimSpace(h)]
		if !ok {
			continue
		}
		if name, isAttr := strings.CutPrefix(target, attrPrefix); isAttr {
			p.cols[i] = column{attr: name, typ: types[name]}
			continue
		}
		p.cols[i] = column{field: target}
		if target == fieldEmail {
			p.email = i
		}
	}
	if p.email < 0 {
		return nil, errors.New("the mapping maps no column to email")
	}
	return p, nil
}

// rowError is why one row is not applied.
type rowError struct {
	field, reason string
}

func (e *rowError) Error() string { return e.field + ": " + e.reason }

func badRow(field, format string, args ...any) *rowError {
	return &rowError{field: field, reason: fmt.Sprintf(format, args...)}
}

// contact turns one record into an upsert, or says why the row is bad. An empty cell leaves
// its field (or attribute) as it is.
func (p *rowPlan) contact(rec []string, buf []byte) (store.ContactUpsert, []byte, *rowError) {
	if len(rec) != len(p.cols) {
		return store.ContactUpsert{}, buf, badRow("", "%d fields, the header has %d", len(rec), len(p.cols))
	}
	u := store.ContactUpsert{Lists: p.lists, CreateOnly: p.mode == store.ImportCreateOnly,
		Consent: store.Consent{Source: "import"}}
	buf = append(buf[:0], '{')
	for i, c := range p.cols {
		v := strings.TrimSpace(rec[i])
		if v == "" || (c.field == "" && c.attr == "") {
			continue
		}
		if strings.ContainsRune(v, 0) {
			return u, buf, badRow(c.name(), "contains U+0000 (NUL)")
		}
		switch c.field {
		case fieldEmail:
			addr, err := mail.ParseAddress(v)
			if err != nil || addr.Name != "" {
				return u, buf, badRow(fieldEmail, "%q is not an email address", v)
			}
			key, err := audience.EmailKey(addr.Email)
			if err != nil {
				return u, buf, badRow(fieldEmail, "%q is not an email address", v)
			}
			u.Email, u.EmailKey = addr.Email, key
		case fieldExternalID:
			if len(v) > maxShortField {
				return u, buf, badRow(c.field, "longer than %d bytes", maxShortField)
			}
			u.ExternalID = v
		case fieldName:
			if utf8.RuneCountInString(v) > maxNameField {
				return u, buf, badRow(c.field, "longer than %d characters", maxNameField)
			}
			u.Name = &v
		case fieldLocale:
			s, ok := p.locales[v]
			if !ok {
				tag, err := language.Parse(v)
				if err != nil || len(v) > maxShortField {
					return u, buf, badRow(c.field, "%q is not a language tag (en, pt-BR, …)", v)
				}
				s = tag.String()
				if len(p.locales) < 1000 {
					p.locales[v] = s
				}
			}
			u.Locale = &s
		case fieldTimezone:
			if !p.tz[v] {
				if _, err := time.LoadLocation(v); err != nil || len(v) > maxShortField || v == "Local" {
					return u, buf, badRow(c.field, "%q is not an IANA time zone (Europe/Paris, …)", v)
				}
				if len(p.tz) < 1000 {
					p.tz[v] = true
				}
			}
			u.Timezone = &v
		case fieldLastActiveAt:
			t, err := parseTime(v)
			if err != nil {
				return u, buf, badRow(c.field, "%q is not a time (RFC 3339, e.g. 2026-03-01T12:00:00Z, or a date 2026-03-01)", v)
			}
			u.LastActiveAt = t
		case "":
			if len(buf) > 1 {
				buf = append(buf, ',')
			}
			buf = appendJSONString(buf, c.attr)
			buf = append(buf, ':')
			var err error
			if buf, err = castAttribute(buf, c.typ, v); err != nil {
				return u, buf, badRow(c.name(), "%v", err)
			}
		}
	}
	if u.Email == "" {
		return u, buf, badRow(fieldEmail, "empty")
	}
	if len(buf) > 1 {
		buf = append(buf, '}')
		if len(buf) > maxAttributes {
			return u, buf, badRow("attributes", "larger than 64 KB")
		}
		u.Attributes = append([]byte(nil), buf...)
	}
	return u, buf, nil
}

func (c column) name() string {
	if c.field != "" {
		return c.field
	}
	return attrPrefix + c.attr
}

// parseTime reads an RFC 3339 time or a date (midnight UTC).
func parseTime(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Truncate(time.Microsecond), nil
	}
	return time.Parse(time.DateOnly, v)
}

// castAttribute appends v as the JSON value of an attribute of declared type typ, cast by
// audience.CastAttribute: a string when none is declared (a CSV holds text; guessing would turn
// a postcode such as 01234 into a number). A value that is not of the declared type is an error.
func castAttribute(buf []byte, typ, v string) ([]byte, error) {
	if typ == "" || typ == store.AttrString {
		return appendJSONString(buf, v), nil
	}
	x, err := audience.CastAttribute(typ, v)
	if err != nil {
		return buf, err
	}
	b, err := json.Marshal(x)
	if err != nil {
		return buf, err
	}
	return append(buf, b...), nil
}

// appendJSONString appends s, valid UTF-8, as a JSON string.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			buf = append(buf, c)
		}
	}
	return append(buf, '"')
}
