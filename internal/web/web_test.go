package web_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
	"github.com/postie/postie/internal/web"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type bundle struct {
	srv   *httptest.Server
	store store.Store
	links *audience.Links
}

func setup(t *testing.T) *bundle {
	t.Helper()
	st := sqlitetest.Open(t)
	keys, err := audience.NewKeys([]audience.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	links := audience.NewLinks(keys, "https://u.example.com")
	h := web.New(web.Config{Links: links, Unsubscriber: &audience.Unsubscriber{Store: st}, Now: func() time.Time { return now }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &bundle{srv: srv, store: st, links: links}
}

func (b *bundle) path(tok audience.Token) string {
	return strings.TrimPrefix(b.links.URL(tok), "https://u.example.com")
}

func (b *bundle) do(t *testing.T, method, path, ctype, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, b.srv.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (b *bundle) scopes(t *testing.T, email string) []string {
	t.Helper()
	page, _, err := b.store.SuppressionList(t.Context(), store.SuppressionListParams{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range page {
		out = append(out, s.Scope)
	}
	return out
}

// RFC 8058 one-click: form-encoded, multipart or empty body; 200, no redirect; from the
// message's list, or from all broadcast mail when it has none.
func TestOneClick(t *testing.T) {
	t.Parallel()
	b := setup(t)
	listed := b.path(audience.Token{Purpose: audience.PurposeUnsubscribe, Address: "ann@example.com", ListID: "lst_news", MessageID: "msg_1"})
	if code, _ := b.do(t, "POST", listed, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); code != 200 {
		t.Fatalf("one-click: %d", code)
	}
	if got := b.scopes(t, "ann@example.com"); len(got) != 1 || got[0] != "lst_news" {
		t.Errorf("ann's suppressions %v, want lst_news", got)
	}
	var mp bytes.Buffer
	w := multipart.NewWriter(&mp)
	_ = w.WriteField("List-Unsubscribe", "One-Click")
	w.Close()
	plain := b.path(audience.Token{Purpose: audience.PurposeUnsubscribe, Address: "bob@example.com", MessageID: "msg_2"})
	if code, _ := b.do(t, "POST", plain, w.FormDataContentType(), mp.String()); code != 200 {
		t.Fatalf("multipart one-click: %d", code)
	}
	if code, _ := b.do(t, "POST", plain, "", ""); code != 200 {
		t.Fatalf("empty one-click (idempotent): %d", code)
	}
	if got := b.scopes(t, "bob@example.com"); len(got) != 1 || got[0] != "broadcast" {
		t.Errorf("bob's suppressions %v, want broadcast", got)
	}
}

// A GET shows the choices and changes nothing; its buttons POST; German by Accept-Language.
func TestPageAndButtons(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.path(audience.Token{Purpose: audience.PurposeUnsubscribe, Address: "cy@example.com", ListID: "lst_news"})
	code, page := b.do(t, "GET", p, "", "")
	if code != 200 || !strings.Contains(page, `value="list"`) || !strings.Contains(page, `value="all"`) || strings.Contains(page, "<script") {
		t.Fatalf("GET: %d %s", code, page)
	}
	if got := b.scopes(t, "cy@example.com"); len(got) != 0 {
		t.Fatalf("the GET suppressed %v", got)
	}
	if _, page := b.do(t, "GET", p, "", "", "Accept-Language", "de-DE,de;q=0.9"); !strings.Contains(page, `lang="de"`) || !strings.Contains(page, "Abmelden") {
		t.Errorf("German page: %s", page)
	}
	if code, _ := b.do(t, "POST", p, "application/x-www-form-urlencoded", "action=all"); code != 200 {
		t.Fatalf("action=all: %d", code)
	}
	if got := b.scopes(t, "cy@example.com"); len(got) != 1 || got[0] != "broadcast" {
		t.Errorf("cy's suppressions %v, want broadcast", got)
	}
}

// A tampered, truncated or foreign token gets a 400 page that names no one, and changes nothing.
func TestBadTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	good := b.path(audience.Token{Purpose: audience.PurposeUnsubscribe, Address: "dee@example.com", ListID: "lst_news"})
	flip := []byte(good)
	flip[len(flip)-3] ^= 1
	if flip[len(flip)-3] == '/' || flip[len(flip)-3] > 'z' {
		flip[len(flip)-3] = 'A'
	}
	foreignKeys, _ := audience.NewKeys([]audience.Key{{ID: "k1", Secret: bytes.Repeat([]byte{9}, 32)}}, bytes.Repeat([]byte{2}, 32))
	foreign := strings.TrimPrefix(audience.NewLinks(foreignKeys, "").URL(audience.Token{Purpose: audience.PurposeUnsubscribe, Address: "dee@example.com"}), "")
	expired := b.path(audience.Token{Purpose: audience.PurposeConfirm, ContactID: "ctc_1", ListID: "lst_news", Expires: now.Add(-time.Second)})
	for _, p := range []string{string(flip), good[:len(good)-5], foreign, expired, "/u/x"} {
		for _, method := range []string{"GET", "POST"} {
			code, page := b.do(t, method, p, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click")
			if code != 400 || strings.Contains(page, "dee@") || strings.Contains(page, "lst_") {
				t.Errorf("%s %s: %d %s", method, p, code, page)
			}
		}
	}
	if got := b.scopes(t, "dee@example.com"); len(got) != 0 {
		t.Errorf("bad tokens suppressed %v", got)
	}
	// A confirmation link does not unsubscribe, and a GET of it does not confirm.
	confirm := b.path(audience.Token{Purpose: audience.PurposeConfirm, ContactID: "ctc_1", Address: "dee@example.com", ListID: "lst_news", Expires: now.Add(time.Hour)})
	if code, page := b.do(t, "GET", confirm, "", ""); code != 200 || !strings.Contains(page, `value="confirm"`) {
		t.Errorf("GET confirm: %d %s", code, page)
	}
	if code, _ := b.do(t, "POST", confirm, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); code != 400 {
		t.Errorf("one-click on a confirmation link: %d", code)
	}
}
