package render

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// renderText compiles src as a text template and renders it with data (decoded from JSON when
// a string) and c.
func renderText(t *testing.T, src string, data any, c Context) (string, error) {
	t.Helper()
	tpl, err := Compile(Source{Name: "t", Text: src}, nil)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	if s, ok := data.(string); ok {
		if data, err = tpl.DecodeData(json.RawMessage(s)); err != nil {
			t.Fatalf("DecodeData: %v", err)
		}
	}
	c.Data = data
	out, err := tpl.Render(context.Background(), c, Limits{})
	return out.Text, err
}

func TestFuncs(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	data := `{
		"name": "ada lovelace", "empty": "", "none": null, "zero": 0, "list": [], "tags": ["a", "b", 3],
		"big": 1234567.891, "neg": -0.004, "huge": 1e21, "int": 1000000, "text": "  spaced  ",
		"at": "2026-03-29T00:30:00Z", "day": "2026-12-24", "unix": 1767225600, "price": "1234.5",
		"jpy": 123456.7, "wide": "日本語のテキスト"
	}`
	tests := []struct {
		src, want string
		c         Context
	}{
		// printing
		{src: `{{.data.none}}|{{index .data "absent"}}`, want: "|"},
		{src: `{{.data.int}} {{.data.big}} {{.data.huge}}`, want: "1000000 1234567.891 1000000000000000000000"},
		// default
		{src: `{{default "friend" .data.empty}} {{default "x" .data.none}} {{default "x" .data.list}} {{default 5 .data.zero}} {{.data.name | default "x"}}`,
			want: "friend x x 0 ada lovelace"},
		{src: `{{default "there" (index .contact "first_name")}}`, want: "there"},
		{src: `{{default "there" (index .contact "first_name")}}`, want: "Ada", c: Context{Contact: map[string]any{"first_name": "Ada"}}},
		// strings
		{src: `{{upper .data.name}} {{lower "ÀB"}} {{title .data.name}} {{title "o'neil-smith"}} [{{trim .data.text}}]`,
			want: "ADA LOVELACE àb Ada Lovelace O'neil-Smith [spaced]"},
		{src: `{{truncate 5 .data.name}} {{truncate 3 .data.wide}} {{truncate 50 .data.name}}`, want: "ada l… 日本語… ada lovelace"},
		{src: `{{join ", " .data.tags}}|{{join "-" .data.list}}`, want: "a, b, 3|"},
		// numbers
		{src: `{{number .data.big}} {{number .data.big 2}} {{number .data.big 0}} {{number .data.neg 2}} {{number "999.995" 2}} {{number .data.int}}`,
			want: "1,234,567.891 1,234,567.89 1,234,568 0.00 1,000.00 1,000,000"},
		{src: `{{number 12}} {{number -1234.5 1}} {{number "0.5" 0}}`, want: "12 -1,234.5 1"},
		// currency
		{src: `{{currency .data.price "EUR"}} {{.data.price | currency "USD"}} {{currency .data.jpy "JPY"}} {{currency -5 "GBP"}} {{currency 1.5 "SEK"}} {{currency 2 "KWD"}}`,
			want: "€1,234.50 $1,234.50 ¥123,457 -£5.00 SEK 1.50 KWD 2.000"},
		// dates
		{src: `{{date "long" .data.at}} {{date "datetime" .data.at "Europe/Paris"}} {{date "2006-01-02 15:04 MST" .data.at "+05:30"}}`,
			want: "March 29, 2026 2026-03-29 01:30 2026-03-29 06:00 +05:30"},
		{src: `{{date "full" .data.day}} {{.data.at | date "kitchen"}} {{date "rfc3339" .data.unix}}`,
			want: "Thursday, December 24, 2026 12:30 AM 2026-01-01T00:00:00Z"},
		{src: `{{date "datetime" .data.at}}`, want: "2026-03-29 01:30", c: Context{TimeZone: paris}},
		{src: `{{date "datetime" .data.at "UTC"}}`, want: "2026-03-29 00:30", c: Context{TimeZone: paris}},
		// links
		{src: `{{unsubscribe_url}} {{preferences_url}}`, want: PlaceholderUnsubscribeURL + " " + PlaceholderPreferencesURL},
		{src: `{{unsubscribe_url}} {{preferences_url}}`, want: "https://u.example/u/t1 https://u.example/p/t1",
			c: Context{Links: Links{UnsubscribeURL: "https://u.example/u/t1", PreferencesURL: "https://u.example/p/t1"}}},
		// message
		{src: `{{.message.id}} {{.message.stream}}`, want: "msg_1 broadcast", c: Context{Message: MessageInfo{ID: "msg_1", Stream: "broadcast"}}},
	}
	for _, tt := range tests {
		got, err := renderText(t, tt.src, data, tt.c)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s\n got %q\nwant %q", tt.src, got, tt.want)
		}
	}
}

func TestFuncErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, want string }{
		{`{{number "abc"}}`, `number: "abc" is not a number`},
		{`{{number 1 2 3}}`, "at most one count of decimals"},
		{`{{number 1 30}}`, "out of range"},
		{`{{currency 1 "euro"}}`, "three-letter ISO 4217 code"},
		{`{{currency "EUR" "x"}}`, `"x" is not a number`},
		{`{{date "long" "yesterday"}}`, `"yesterday" is not an RFC 3339 time or a date`},
		{`{{date "long" true}}`, "cannot use bool as a time"},
		{`{{join ", " 5}}`, "int is not a list"},
	}
	for _, tt := range tests {
		_, err := renderText(t, tt.src, `{}`, Context{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want %q", tt.src, err, tt.want)
		}
	}
}

func TestGroupDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		places int
		want   string
	}{
		{"0", -1, "0"}, {"999", -1, "999"}, {"1000", -1, "1,000"}, {"-1234567", -1, "-1,234,567"},
		{"9.995", 2, "10.00"}, {"0.005", 2, "0.01"}, {"-0.004", 2, "0.00"}, {"99999.5", 0, "100,000"},
		{"1.5", 3, "1.500"}, {"007", -1, "7"},
	}
	for _, tt := range tests {
		if got := groupDecimal(tt.in, tt.places); got != tt.want {
			t.Errorf("groupDecimal(%q, %d) = %q, want %q", tt.in, tt.places, got, tt.want)
		}
	}
}
