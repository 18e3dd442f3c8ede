package render

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// layoutsOf is a Layouts function over a map, failing with ErrNotFound for absent names.
func layoutsOf(m map[string]Source) Layouts {
	return func(name string) (Source, error) {
		s, ok := m[name]
		if !ok {
			return Source{}, fmt.Errorf("layout %q: %w", name, ErrNotFound)
		}
		return s, nil
	}
}

// wantError is what a test expects of the first *Error in an error.
type wantError struct {
	Field, Path, Template string
	Line, Column          int
	Message               string // a substring of Message
}

func checkError(t *testing.T, err error, want wantError) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %+v", want)
	}
	es := List(err)
	if len(es) == 0 {
		t.Fatalf("error %v (%T) holds no *Error", err, err)
	}
	got := es[0]
	if got.Field != want.Field || got.Path != want.Path || got.Template != want.Template ||
		got.Line != want.Line || got.Column != want.Column || !strings.Contains(got.Message, want.Message) {
		t.Errorf("got  %#v\nwant %+v", got, want)
	}
	return got
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	layouts := map[string]Source{
		"base":      {HTML: "<main>{{template \"content\" .}}</main>"},
		"selfish":   {HTML: "{{template \"content\" .}}", Layout: "selfish"},
		"ping":      {HTML: "{{template \"content\" .}}", Layout: "pong"},
		"pong":      {HTML: "{{template \"content\" .}}", Layout: "ping"},
		"dangling":  {HTML: "{{template \"content\" .}}", Layout: "nowhere"},
		"forgetful": {HTML: "<main>no content here</main>"},
		"broken":    {HTML: "<main>\n\n{{template \"content\" .}\n</main>"},
		"subject":   {Subject: "{{template \"content\" .}} | {{.data.shop", HTML: "{{template \"content\" .}}"},
	}
	big := strings.Repeat("x", MaxSourceSize+1)
	tests := []struct {
		name string
		src  Source
		want wantError
	}{
		{"html syntax error", Source{HTML: "<p>\n{{if}}</p>"},
			wantError{Field: "html", Template: "t", Line: 2, Message: "missing value for if"}},
		{"unclosed action", Source{HTML: "<p>\n\n{{.data.x</p>"},
			wantError{Field: "html", Template: "t", Line: 3, Message: "bad character U+003C '<'"}},
		{"unknown function", Source{HTML: "<p>{{shout .data.x}}</p>"},
			wantError{Field: "html", Template: "t", Line: 1, Message: `function "shout" not defined`}},
		{"subject syntax error", Source{Subject: "Hi {{.data.name", HTML: "x"},
			wantError{Field: "subject", Template: "t", Line: 1, Message: "unclosed action"}},
		{"text syntax error", Source{HTML: "x", Text: "a\nb\n{{end}}"},
			wantError{Field: "text", Template: "t", Line: 3, Message: "unexpected {{end}}"}},
		{"undefined template", Source{HTML: "<p>\n  {{template \"footer\" .}}</p>"},
			wantError{Field: "html", Template: "t", Line: 2, Column: 14, Message: `template "footer" is not defined`}},
		{"recursion", Source{HTML: "{{define \"a\"}}{{template \"b\" .}}{{end}}{{define \"b\"}}{{template \"a\" .}}{{end}}{{template \"a\" .}}"},
			wantError{Field: "html", Template: "t", Line: 1, Column: 65, Message: `template "a" calls itself`}},
		{"defines content", Source{HTML: "{{define \"content\"}}x{{end}}"},
			wantError{Field: "html", Template: "t", Line: 1, Column: 21, Message: `"content" is the name of the template a layout wraps`}},
		{"ambiguous URL context", Source{HTML: `<a href="{{if .data.x}}/search?q={{else}}/search/{{end}}{{.data.y}}">x</a>`},
			wantError{Field: "html", Template: "t", Line: 1, Column: 59, Message: "appears in an ambiguous context within a URL"}},
		{"ends inside a tag", Source{HTML: `<a href="{{.data.url}}`},
			wantError{Field: "html", Template: "t", Message: "ends in a non-text context"}},
		{"branches end in different contexts", Source{HTML: `{{if .data.x}}<a href="{{end}}">`},
			wantError{Field: "html", Template: "t", Line: 1, Column: 6, Message: "branches end in different contexts"}},
		{"unknown time zone", Source{HTML: "<p>{{date \"long\" .data.at \"Mars/Olympus\"}}</p>"},
			wantError{Field: "html", Template: "t", Line: 1, Column: 27, Message: `unknown time zone "Mars/Olympus"`}},
		{"no body", Source{Subject: "Hi"},
			wantError{Field: "html", Message: "a template needs html, text or both"}},
		{"html too large", Source{HTML: big},
			wantError{Field: "html", Message: "the limit is 1 MB"}},
		{"missing layout", Source{HTML: "x", Layout: "nowhere"},
			wantError{Field: "layout", Template: "t", Message: `layout "nowhere" does not exist`}},
		{"missing layout further up", Source{HTML: "x", Layout: "dangling"},
			wantError{Field: "layout", Template: "dangling", Message: `layout "nowhere" does not exist`}},
		{"layout includes itself", Source{HTML: "x", Layout: "selfish"},
			wantError{Field: "layout", Template: "selfish", Message: `layout "selfish" includes itself (t → selfish → selfish)`}},
		{"layout cycle", Source{HTML: "x", Layout: "ping"},
			wantError{Field: "layout", Template: "pong", Message: `(t → ping → pong → ping)`}},
		{"template is its own layout", Source{Name: "t", HTML: "x", Layout: "t"},
			wantError{Field: "layout", Template: "t", Message: `layout "t" includes itself`}},
		{"layout without content", Source{HTML: "x", Layout: "forgetful"},
			wantError{Field: "layout", Template: "forgetful", Message: `html: the layout does not include {{template "content" .}}`}},
		{"layout syntax error", Source{HTML: "x", Layout: "broken"},
			wantError{Field: "layout", Template: "broken", Line: 3, Message: "html: bad character U+007D '}'"}},
		{"layout subject syntax error", Source{Subject: "Hi", HTML: "x", Layout: "subject"},
			wantError{Field: "layout", Template: "subject", Line: 1, Message: "subject: unclosed action"}},
		{"schema is not JSON", Source{HTML: "x", Schema: json.RawMessage("{\n  \"type\": \"object\",\n}")},
			wantError{Field: "schema", Line: 3, Column: 1, Message: "schema is not valid JSON: invalid character '}'"}},
		{"schema is not JSON Schema", Source{HTML: "x", Schema: json.RawMessage(`{"properties": {"order": {"type": "objekt"}}}`)},
			wantError{Field: "schema", Path: "/properties/order/type", Message: "not valid JSON Schema: value must be one of"}},
		{"schema with a bad pattern", Source{HTML: "x", Schema: json.RawMessage(`{"properties": {"id": {"type": "string", "pattern": "("}}}`)},
			wantError{Field: "schema", Path: "/properties/id/pattern", Message: "not valid regex"}},
		{"schema with an external reference", Source{HTML: "x", Schema: json.RawMessage(`{"$ref": "file:///etc/passwd"}`)},
			wantError{Field: "schema", Message: "external schema references are not allowed"}},
		{"schema with a missing local reference", Source{HTML: "x", Schema: json.RawMessage(`{"$ref": "#/$defs/nope"}`)},
			wantError{Field: "schema", Message: "not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.src.Name == "" {
				tt.src.Name = "t"
			}
			_, err := Compile(tt.src, layoutsOf(layouts))
			checkError(t, err, tt.want)
		})
	}
}

func TestCompileReportsEveryPart(t *testing.T) {
	t.Parallel()
	_, err := Compile(Source{Name: "t", Subject: "{{.x", HTML: "{{if}}", Schema: json.RawMessage(`{"type": 1}`)}, nil)
	var fields []string
	for _, e := range List(err) {
		fields = append(fields, e.Field)
	}
	if got := strings.Join(fields, ","); got != "schema,subject,html" {
		t.Errorf("fields %s, want schema,subject,html (err %v)", got, err)
	}
}

func TestCompileLayoutsFailure(t *testing.T) {
	t.Parallel()
	dbDown := errors.New("database is down")
	_, err := Compile(Source{Name: "t", HTML: "x", Layout: "base"}, func(string) (Source, error) { return Source{}, dbDown })
	if !errors.Is(err, dbDown) {
		t.Fatalf("err %v, want it to wrap %v", err, dbDown)
	}
	if es := List(err); es != nil {
		t.Errorf("a Layouts failure is not the template's fault, got *Error %v", es)
	}
	_, err = Compile(Source{Name: "t", HTML: "x", Layout: "base"}, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("with no Layouts: err %v, want ErrNotFound", err)
	}
}

func TestValidateErrors(t *testing.T) {
	t.Parallel()
	schema := json.RawMessage(`{
		"type": "object",
		"required": ["order"],
		"properties": {
			"order": {
				"type": "object",
				"required": ["id", "total"],
				"properties": {
					"id": {"type": "string", "pattern": "^A-"},
					"total": {"type": "number"},
					"email": {"type": "string", "format": "email"}
				}
			}
		}
	}`)
	tpl, err := Compile(Source{Name: "t", HTML: "x", Schema: schema}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		data  string
		want  wantError
		count int
	}{
		{"missing required field", `{"order": {"total": 1}}`,
			wantError{Field: "data", Path: "/data/order/id", Message: "is required"}, 1},
		{"missing object", `{}`,
			wantError{Field: "data", Path: "/data/order", Message: "is required"}, 1},
		{"wrong type", `{"order": {"id": "A-1", "total": "12"}}`,
			wantError{Field: "data", Path: "/data/order/total", Message: "got string, want number"}, 1},
		{"pattern", `{"order": {"id": "B-1", "total": 1}}`,
			wantError{Field: "data", Path: "/data/order/id", Message: "does not match pattern"}, 1},
		{"format", `{"order": {"id": "A-1", "total": 1, "email": "not an address"}}`,
			wantError{Field: "data", Path: "/data/order/email", Message: "not valid email"}, 1},
		{"every violation", `{"order": {"id": 7}}`,
			wantError{Field: "data", Path: "/data/order/id", Message: "got number, want string"}, 2},
		{"not JSON", "{\n\"order\": }",
			wantError{Field: "data", Path: "/data", Line: 2, Column: 10, Message: "data is not valid JSON: invalid character '}'"}, 1},
		{"trailing data", `{"order": {"id": "A-1", "total": 1}} {}`,
			wantError{Field: "data", Path: "/data", Line: 1, Column: 38, Message: "data is not valid JSON: unexpected data after the JSON value"}, 1},
		{"not an object", `[1, 2]`,
			wantError{Field: "data", Path: "/data", Message: "data must be a JSON object"}, 1},
		{"too large", `{"order": "` + strings.Repeat("x", MaxDataSize) + `"}`,
			wantError{Field: "data", Path: "/data", Message: "the limit is 1 MB"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tpl.Validate(json.RawMessage(tt.data))
			checkError(t, err, tt.want)
			if n := len(List(err)); n != tt.count {
				t.Errorf("%d errors, want %d: %v", n, tt.count, err)
			}
		})
	}
	if err := tpl.Validate(json.RawMessage(`{"order": {"id": "A-1", "total": 12.5}}`)); err != nil {
		t.Errorf("valid data: %v", err)
	}
}

func TestValidateWithoutSchema(t *testing.T) {
	t.Parallel()
	tpl, err := Compile(Source{Name: "t", HTML: "x"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{``, `null`, `{}`, `{"a": [1, {"b": null}]}`} {
		if err := tpl.Validate(json.RawMessage(ok)); err != nil {
			t.Errorf("Validate(%q): %v", ok, err)
		}
	}
	if err := tpl.Validate(json.RawMessage(`"text"`)); err == nil {
		t.Error(`Validate("text"): no error, want data must be an object`)
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	many := make([]any, 2000)
	tests := []struct {
		name string
		src  Source
		data any
		ctx  func() (context.Context, context.CancelFunc)
		lim  Limits
		want wantError
		is   error
	}{
		{name: "missing key in html", src: Source{HTML: "<p>\n  Hello {{.data.nope}}</p>"},
			want: wantError{Field: "html", Path: "/data/nope", Template: "t", Line: 2, Column: 16, Message: `map has no entry for key "nope"`}},
		{name: "missing nested key", src: Source{HTML: "{{.data.order.id}}"}, data: map[string]any{"order": map[string]any{}},
			want: wantError{Field: "html", Path: "/data/order/id", Template: "t", Line: 1, Column: 8, Message: `map has no entry for key "id"`}},
		{name: "missing key inside range", src: Source{HTML: "{{range .data.items}}{{.sku}}{{end}}"}, data: map[string]any{"items": []any{map[string]any{}}},
			want: wantError{Field: "html", Template: "t", Line: 1, Column: 24, Message: `map has no entry for key "sku"`}},
		{name: "missing key in subject", src: Source{Subject: "Order {{.data.id}}", HTML: "x"},
			want: wantError{Field: "subject", Path: "/data/id", Template: "t", Line: 1, Column: 14, Message: `map has no entry for key "id"`}},
		{name: "missing key in text", src: Source{HTML: "x", Text: "{{.message.nope}}"},
			want: wantError{Field: "text", Path: "/message/nope", Template: "t", Line: 1, Column: 11, Message: `map has no entry for key "nope"`}},
		{name: "unknown contact", src: Source{HTML: "Hi {{.contact.name}}"},
			want: wantError{Field: "html", Path: "/contact/name", Template: "t", Line: 1, Column: 14, Message: `map has no entry for key "name"`}},
		{name: "missing key in layout", src: Source{HTML: "x", Layout: "shop"},
			want: wantError{Field: "html", Path: "/data/shop", Template: "shop", Line: 1, Column: 8, Message: `map has no entry for key "shop"`}},
		{name: "subject with a line break", src: Source{Subject: "Hi {{.data.name}}", HTML: "x"}, data: map[string]any{"name": "Bo\r\nBcc: x@example.com"},
			want: wantError{Field: "subject", Message: `one line without control characters; it has '\r'`}},
		{name: "subject with NUL", src: Source{Subject: "Hi {{.data.name}}", HTML: "x"}, data: map[string]any{"name": "Bo\x00"},
			want: wantError{Field: "subject", Message: `'\x00'`}},
		{name: "function error", src: Source{HTML: "{{currency .data.total \"EUR\"}}"}, data: map[string]any{"total": "lots"},
			want: wantError{Field: "html", Template: "t", Line: 1, Column: 3, Message: `error calling currency: currency: "lots" is not a number`}},
		{name: "zone not named in the template", src: Source{HTML: "{{date \"long\" .data.at .data.tz}}"}, data: map[string]any{"at": "2026-01-02", "tz": "Europe/Paris"},
			want: wantError{Field: "html", Template: "t", Line: 1, Column: 3, Message: `time zone "Europe/Paris" is not known here`}},
		{name: "output over the limit", src: Source{HTML: "{{range .data.items}}<p>a line of text</p>{{end}}"}, data: map[string]any{"items": many},
			lim: Limits{MaxOutput: 10 << 10}, is: ErrOutputLimit,
			want: wantError{Field: "html", Message: "the rendered html is larger than 10 KB"}},
		{name: "subject over the limit", src: Source{Subject: "{{range .data.items}}abc{{end}}", HTML: "x"}, data: map[string]any{"items": many},
			lim: Limits{MaxOutput: 1000}, is: ErrOutputLimit,
			want: wantError{Field: "subject", Message: "the rendered subject is larger than 1000 bytes"}},
		{name: "loop that prints nothing", src: Source{HTML: "{{range .data.items}}{{range $.data.items}}{{range $.data.items}}{{end}}{{end}}{{end}}"},
			data: map[string]any{"items": many}, lim: Limits{Timeout: 20 * time.Millisecond}, is: ErrTimeout,
			want: wantError{Field: "html", Message: "rendering took longer than 20ms"}},
		{name: "cancelled", src: Source{HTML: "x"}, is: context.Canceled,
			ctx: func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx, cancel
			},
			want: wantError{Field: "subject", Message: "rendering stopped: context canceled"}},
	}
	layouts := layoutsOf(map[string]Source{"shop": {HTML: "{{.data.shop}}{{template \"content\" .}}"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.src.Name = "t"
			tpl, err := Compile(tt.src, layouts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			data := tt.data
			if data == nil {
				data = map[string]any{}
			}
			_, err = tpl.Render(ctx, Context{Data: data}, tt.lim)
			e := checkError(t, err, tt.want)
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			if e != nil && tt.is == nil && e.Err != nil {
				t.Errorf("Err = %v, want nil", e.Err)
			}
		})
	}
}

func TestErrorStrings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{&Error{Field: "data", Path: "/data/order/id", Message: "is required"}, "data /data/order/id: is required"},
		{&Error{Field: "html", Template: "order", Line: 3, Column: 7, Message: `map has no entry for key "id"`},
			`html (order line 3, column 7): map has no entry for key "id"`},
		{&Error{Field: "layout", Template: "base", Message: "html: the layout does not include it"}, "layout (base): html: the layout does not include it"},
		{&Error{Field: "schema", Line: 2, Message: "bad"}, "schema (line 2): bad"},
		{Errors{{Field: "data", Path: "/data/a", Message: "x"}, {Field: "data", Path: "/data/b", Message: "y"}}, "data /data/a: x; data /data/b: y"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
	es := Errors{{Field: "data", Message: "x"}, {Field: "html", Message: "y", Err: ErrTimeout}}
	var e *Error
	if !errors.As(error(es), &e) || e.Field != "data" {
		t.Errorf("errors.As on Errors found %v", e)
	}
	if !errors.Is(error(es), ErrTimeout) {
		t.Error("errors.Is does not see through Errors")
	}
	if List(errors.New("x")) != nil {
		t.Error("List of a plain error is not nil")
	}
}
