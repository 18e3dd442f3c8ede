package mail

import (
	"strings"
	"testing"
	"time"
)

// List mail carries List-Id, List-Unsubscribe (each URI in angle brackets, the https one first)
// and List-Unsubscribe-Post exactly as RFC 2919, RFC 2369 and RFC 8058 §3.1 write them.
func TestBuildListHeaders(t *testing.T) {
	t.Parallel()
	m := Message{From: Address{Email: "news@shop.example"}, To: []Address{{Email: "ann@example.com"}},
		Subject: "News", Text: "Hi", MessageID: "1@shop.example", Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		List: &List{ID: "lst_01jd8x.shop.example", OneClick: true, Unsubscribe: []string{
			"https://u.example.com/u/" + strings.Repeat("A", 160), "mailto:unsub@shop.example?subject=unsubscribe"}}}
	raw, err := Build(m)
	if err != nil {
		t.Fatal(err)
	}
	unfolded := strings.ReplaceAll(string(raw), "\r\n ", " ")
	for _, want := range []string{
		"\r\nList-Id: <lst_01jd8x.shop.example>\r\n",
		"\r\nList-Unsubscribe: <https://u.example.com/u/" + strings.Repeat("A", 160) + ">, <mailto:unsub@shop.example?subject=unsubscribe>\r\n",
		"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
	} {
		if !strings.Contains(unfolded, want) {
			t.Errorf("missing %q in:\n%s", want, raw)
		}
	}
	for _, bad := range []*List{
		{ID: "not an id"},
		{Unsubscribe: []string{"https://x.example/u/a>b"}},
		{Unsubscribe: []string{"https://x.example/u/a b"}},
		{Unsubscribe: []string{"mailto:a@example.com"}, OneClick: true},
	} {
		m.List = bad
		if _, err := Build(m); err == nil {
			t.Errorf("Build accepted list %+v", bad)
		}
	}
}
