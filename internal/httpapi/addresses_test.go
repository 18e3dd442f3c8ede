package httpapi_test

import (
	"strings"
	"testing"
)

// TestDisplayNamesDecoded: the API shows the mailboxes of a message with their display names in
// Unicode, as the client wrote them, not as the RFC 2047 encoded words of the MIME header.
func TestDisplayNamesDecoded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.do("POST", "/v1/messages", with(
		"from", "Jürgen Müller <j@example.de>",
		"to", []string{`"Doe, Jürgen" <doe@example.de>`, "plain@example.com", "Ada Lovelace <ada@example.com>"},
		"cc", []string{"Zoë <zoe@example.fr>"},
		"bcc", []string{"山田 太郎 <taro@example.jp>"},
		"reply_to", `"Søren \"Support\"" <help@example.dk>`,
	))
	if r.status != 202 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	id := r.json(t)["id"].(string)
	raw := string(b.do("GET", "/v1/messages/"+id+"/raw", nil).body)
	if !strings.Contains(raw, "From: =?utf-8?") {
		t.Fatalf("the MIME header is not RFC 2047-encoded (the test expects it to be):\n%s", raw)
	}
	got := b.do("GET", "/v1/messages/"+id, nil).json(t)
	listed := b.do("GET", "/v1/messages", nil).json(t)["data"].([]any)[0].(map[string]any)
	for _, m := range []map[string]any{got, listed} {
		for _, tc := range []struct {
			field string
			want  any
		}{
			{"from", "Jürgen Müller <j@example.de>"},
			{"to", []any{`"Doe, Jürgen" <doe@example.de>`, "<plain@example.com>", "Ada Lovelace <ada@example.com>"}},
			{"cc", []any{"Zoë <zoe@example.fr>"}},
			{"bcc", []any{"山田 太郎 <taro@example.jp>"}},
			{"reply_to", `"Søren \"Support\"" <help@example.dk>`},
		} {
			if g := m[tc.field]; !equalJSON(g, tc.want) {
				t.Errorf("%s = %#v, want %#v", tc.field, g, tc.want)
			}
		}
	}
}

func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	return a == b
}
