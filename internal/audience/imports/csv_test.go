package imports

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// TestSpoolCSV: what spooling accepts (copied byte for byte, rows counted) and refuses.
func TestSpoolCSV(t *testing.T) {
	t.Parallel()
	long := "email,note\na@x.com," + strings.Repeat("y", maxRecordBytes+10) + "\n"
	tests := []struct {
		name    string
		in      string
		maxRows int
		rows    int
		header  []string
		kind    Kind   // when refused
		msg     string // part of the refusal
	}{
		{name: "plain", in: "email,name\na@x.com,Ann\nb@x.com,Bob\n", rows: 2, header: []string{"email", "name"}},
		{name: "BOM and CRLF", in: "\ufeffemail,name\r\na@x.com,Ann\r\n", rows: 1, header: []string{"email", "name"}},
		{name: "quoted fields", in: "email,note\na@x.com,\"line one\nline \"\"two\"\", with comma\"\n", rows: 1, header: []string{"email", "note"}},
		{name: "no final newline", in: "email\na@x.com", rows: 1, header: []string{"email"}},
		{name: "header only", in: "email\n", rows: 0, header: []string{"email"}},
		{name: "short row kept (fails alone later)", in: "email,name\na@x.com\n", rows: 1, header: []string{"email", "name"}},
		{name: "at the row limit", in: "email\na@x.com\nb@x.com\n", maxRows: 2, rows: 2, header: []string{"email"}},
		{name: "over the row limit", in: "email\na@x.com\nb@x.com\nc@x.com\n", maxRows: 2, kind: KindTooLarge, msg: "more than 2 rows"},
		{name: "Latin-1", in: "email,name\na@x.com,Jos\xe9\n", kind: KindMalformed, msg: "row 2, column 2 is not valid UTF-8"},
		{name: "Latin-1 header", in: "email,pr\xe9nom\n", kind: KindMalformed, msg: "row 1, column 2 is not valid UTF-8"},
		{name: "bare quote", in: "email,name\na@x.com,An\"n\n", kind: KindMalformed, msg: "row 2"},
		{name: "unclosed quote", in: "email,name\na@x.com,\"Ann\n", kind: KindMalformed, msg: "row 2"},
		{name: "empty", in: "", kind: KindInvalid, msg: "empty"},
		{name: "record too long", in: long, kind: KindMalformed, msg: "row 2 is longer than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			sp, err := spoolCSV(strings.NewReader(tc.in), &out, tc.maxRows)
			if tc.msg != "" {
				var p *Problem
				if !errors.As(err, &p) || p.Kind != tc.kind || !strings.Contains(p.Message, tc.msg) {
					t.Fatalf("spoolCSV = %v; want a problem of kind %d saying %q", err, tc.kind, tc.msg)
				}
				if p.Field != "file" {
					t.Errorf("problem field %q, want file", p.Field)
				}
				return
			}
			if err != nil {
				t.Fatalf("spoolCSV: %v", err)
			}
			if out.String() != tc.in || sp.Bytes != int64(len(tc.in)) {
				t.Errorf("spooled %d bytes (%q), want the input", sp.Bytes, out.String())
			}
			if sp.Rows != tc.rows || !cmp.Equal(sp.Header, tc.header) {
				t.Errorf("spoolCSV = %d rows, header %q; want %d, %q", sp.Rows, sp.Header, tc.rows, tc.header)
			}
		})
	}
}

// TestSpoolCSVConstantMemory: a large upload is copied through one record at a time.
func TestSpoolCSVConstantMemory(t *testing.T) {
	t.Parallel()
	const rows = 200_000
	r := &generated{rows: rows}
	sp, err := spoolCSV(r, io.Discard, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Rows != rows {
		t.Errorf("rows = %d, want %d", sp.Rows, rows)
	}
}

// generated is a CSV of n rows made as it is read.
type generated struct {
	rows, i int
	buf     []byte
}

func (g *generated) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) && g.i <= g.rows {
		if g.i == 0 {
			g.buf = append(g.buf, "email,name,plan\n"...)
		} else {
			g.buf = append(g.buf, "user"...)
			g.buf = append(g.buf, []byte(strings.Repeat("x", g.i%7))...)
			g.buf = append(g.buf, "@example.com,A Name,pro\n"...)
		}
		g.i++
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

func TestResolveMapping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  []string
		mapping map[string]string
		want    map[string]string
		field   string // of the problem, when refused
	}{
		{name: "by name", header: []string{"Email", "name", "External_ID", "plan", ""},
			want: map[string]string{"Email": "email", "name": "name", "External_ID": "external_id", "plan": "attributes.plan"}},
		{name: "mapped", header: []string{"E-mail address", "Full name", "Plan", "junk"},
			mapping: map[string]string{"E-mail address": "email", "Full name": "name", "Plan": "attributes.tier", "junk": ""},
			want:    map[string]string{"E-mail address": "email", "Full name": "name", "Plan": "attributes.tier"}},
		{name: "no email column", header: []string{"mail", "name"}, field: "mapping"},
		{name: "email column ignored", header: []string{"email"}, mapping: map[string]string{"email": ""}, field: "mapping"},
		{name: "mapping names no column", header: []string{"email"}, mapping: map[string]string{"Plan": "attributes.plan"}, field: "mapping.Plan"},
		{name: "unknown field", header: []string{"email", "phone"}, mapping: map[string]string{"phone": "phone"}, field: "mapping.phone"},
		{name: "empty attribute", header: []string{"email", "x"}, mapping: map[string]string{"x": "attributes."}, field: "mapping.x"},
		{name: "two columns to email", header: []string{"email", "mail"}, mapping: map[string]string{"mail": "email"}, field: "mapping.mail"},
		{name: "duplicate header", header: []string{"email", "plan", "plan"}, field: "file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ResolveMapping(tc.header, tc.mapping)
			if tc.field != "" {
				var p *Problem
				if !errors.As(err, &p) || p.Field != tc.field || p.Kind != KindInvalid {
					t.Fatalf("ResolveMapping = %v, %v; want a problem at %s", got, err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ResolveMapping (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRowPlanContact(t *testing.T) {
	t.Parallel()
	header := []string{"email", "external_id", "name", "locale", "timezone", "last_active_at", "plan", "seats", "trial", "since", "note"}
	applied, err := ResolveMapping(header, nil)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{"seats": store.AttrNumber, "trial": store.AttrBool, "since": store.AttrTime}
	plan, err := newRowPlan(header, applied, types, []string{"lst_a"}, store.ImportUpsert)
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name  string
		row   []string
		want  store.ContactUpsert
		attrs string
		field string // of the bad row
	}{
		{name: "full", row: []string{" Ann@Example.COM ", "u-1", "Ann Example", "pt-br", "Europe/Lisbon", "2026-02-01T10:00:00+01:00",
			"pro", "12.5", "yes", "2026-01-01", "says \"hi\"\n\t"},
			want: store.ContactUpsert{Email: "Ann@Example.COM", EmailKey: "ann@example.com", ExternalID: "u-1", Name: str("Ann Example"),
				Locale: str("pt-BR"), Timezone: str("Europe/Lisbon"), LastActiveAt: time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)},
			attrs: `{"plan":"pro","seats":12.5,"trial":true,"since":"2026-01-01T00:00:00Z","note":"says \"hi\""}`},
		{name: "empty cells leave fields as they are", row: []string{"b@x.com", "", "", "", "", "", "", "", "", "", ""},
			want: store.ContactUpsert{Email: "b@x.com", EmailKey: "b@x.com"}},
		{name: "postcode stays a string", row: []string{"b@x.com", "", "", "", "", "", "01234", "", "", "", ""},
			want: store.ContactUpsert{Email: "b@x.com", EmailKey: "b@x.com"}, attrs: `{"plan":"01234"}`},
		{name: "no email", row: []string{"", "u-2", "", "", "", "", "", "", "", "", ""}, field: "email"},
		{name: "bad email", row: []string{"not an address", "", "", "", "", "", "", "", "", "", ""}, field: "email"},
		{name: "display name", row: []string{"Ann <a@x.com>", "", "", "", "", "", "", "", "", "", ""}, field: "email"},
		{name: "bad locale", row: []string{"a@x.com", "", "", "not a tag!", "", "", "", "", "", "", ""}, field: "locale"},
		{name: "bad timezone", row: []string{"a@x.com", "", "", "", "Mars/Olympus", "", "", "", "", "", ""}, field: "timezone"},
		{name: "bad time", row: []string{"a@x.com", "", "", "", "", "yesterday", "", "", "", "", ""}, field: "last_active_at"},
		{name: "not a number", row: []string{"a@x.com", "", "", "", "", "", "", "twelve", "", "", ""}, field: "attributes.seats"},
		{name: "not a bool", row: []string{"a@x.com", "", "", "", "", "", "", "", "maybe", "", ""}, field: "attributes.trial"},
		{name: "NUL", row: []string{"a@x.com", "", "A\x00B", "", "", "", "", "", "", "", ""}, field: "name"},
		{name: "short row", row: []string{"a@x.com", "u"}, field: ""},
		{name: "attributes too large", row: []string{"a@x.com", "", "", "", "", "", strings.Repeat("z", 70<<10), "", "", "", ""}, field: "attributes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, _, bad := plan.contact(tc.row, nil)
			if tc.field != "" || tc.want.Email == "" {
				if bad == nil || bad.field != tc.field {
					t.Fatalf("contact(%q) = %+v, %v; want a bad row at %q", tc.row, got, bad, tc.field)
				}
				return
			}
			if bad != nil {
				t.Fatalf("contact: %v", bad)
			}
			tc.want.Lists = []string{"lst_a"}
			tc.want.Consent = store.Consent{Source: "import"}
			if tc.attrs != "" {
				if !json.Valid(got.Attributes) {
					t.Fatalf("attributes %s are not JSON", got.Attributes)
				}
				if diff := cmp.Diff(tc.attrs, string(got.Attributes)); diff != "" {
					t.Errorf("attributes (-want +got):\n%s", diff)
				}
			}
			got.Attributes = nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("contact (-want +got):\n%s", diff)
			}
		})
	}
}
