package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/store"
)

// textOf returns the decoded text/plain part of a MIME message.
func textOf(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, _ := mime.ParseMediaType(m.Header.Get("Content-Type"))
	decode := func(enc string, r io.Reader) string {
		if strings.EqualFold(enc, "quoted-printable") {
			r = quotedprintable.NewReader(r)
		}
		b, _ := io.ReadAll(r)
		return string(b)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return decode(m.Header.Get("Content-Transfer-Encoding"), m.Body)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no text part: %v", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			return decode(p.Header.Get("Content-Transfer-Encoding"), p)
		}
	}
}

// TestDoubleOptIn: subscribing a contact to a double opt-in list sends the confirmation message
// through the transactional stream; its link's GET shows a button and confirms nothing; the
// button's POST confirms the subscription.
func TestDoubleOptIn(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	cfg.AdminListen = "127.0.0.1:0" // tests run many nodes at once
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "postie.db")
	cfg.Listen = "127.0.0.1:0"
	cfg.APIKey = "test-key-0123456789abcdef"
	cfg.From = "News <news@shop.example>"
	cfg.PublicURL = "https://u.shop.example"
	a, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.store.Close()
	defer a.listener.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	post := func(path string, body map[string]any, want int) string {
		t.Helper()
		return postID(t, srv.URL+path, cfg.APIKey, body, want)
	}
	list := post("/v1/lists", map[string]any{"name": "Weekly news", "double_opt_in": true}, 201)
	post("/v1/contacts", map[string]any{"email": "ann@example.com", "lists": []string{list}}, 201)

	ctx := context.Background()
	msgs, err := a.store.MessageList(ctx, store.MessageListParams{Tag: "double-opt-in", Limit: 10})
	if err != nil || len(msgs) != 1 || msgs[0].Stream != store.StreamTransactional {
		t.Fatalf("confirmation messages %+v, %v; want one transactional", msgs, err)
	}
	raw, err := a.store.MessageRaw(ctx, msgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`https://u\.shop\.example/u/[A-Za-z0-9_-]+`).FindString(textOf(t, raw))
	if link == "" {
		t.Fatalf("no confirmation link in:\n%s", raw)
	}
	u, _ := url.Parse(link)
	status := func() string {
		subs, err := a.store.ContactSubscriptions(ctx, store.ContactRef{EmailKey: "ann@example.com"})
		if err != nil || len(subs) != 1 {
			t.Fatalf("subscriptions %+v, %v", subs, err)
		}
		return subs[0].Status
	}
	resp, err := http.Get(srv.URL + u.Path)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), `value="confirm"`) || status() != store.SubscriptionPending {
		t.Fatalf("GET confirmation: %d, %s, status %s", resp.StatusCode, page, status())
	}
	// As an earlier unsubscribe from this list would have left it: a confirmation, a new
	// opt-in, lifts it.
	if err := a.store.SuppressionUpsert(ctx, []store.Suppression{{Email: "ann@example.com", Scope: list,
		Reason: store.ReasonUnsubscribe, CreatedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Post(srv.URL+u.Path, "application/x-www-form-urlencoded", strings.NewReader("action=confirm"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || status() != store.SubscriptionSubscribed {
		t.Errorf("POST confirm: %d, status %s", resp.StatusCode, status())
	}
	if _, err := a.store.SuppressionGet(ctx, "ann@example.com", list, time.Time{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the list's suppression after the confirmation: %v, want none", err)
	}

	// The public subscribe form: public lists only; the same answer whoever the address is;
	// limited per address (and per client IP).
	public := post("/v1/lists", map[string]any{"name": "Offers", "public": true, "double_opt_in": true}, 201)
	form := func(list, email string) int {
		t.Helper()
		resp, err := http.PostForm(srv.URL+"/u/subscribe", url.Values{"list": {list}, "email": {email}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := form(list, "bob@example.com"); code != 400 {
		t.Errorf("subscribe to a list that is not public: %d, want 400", code)
	}
	if code := form(public, "not an address"); code != 400 {
		t.Errorf("subscribe with a bad address: %d, want 400", code)
	}
	if code := form(public, "cy@example.com"); code != 200 {
		t.Fatalf("subscribe: %d", code)
	}
	if msgs, _ := a.store.MessageList(ctx, store.MessageListParams{Tag: "double-opt-in", Recipient: "cy@example.com", Limit: 10}); len(msgs) != 1 {
		t.Errorf("confirmations to cy: %d, want 1", len(msgs))
	}
	// The preference page of a contact offers the other public lists.
	prefs := strings.TrimPrefix(a.links.URL(audience.Token{Purpose: audience.PurposePreferences, Address: "ann@example.com"}), cfg.PublicURL)
	if resp, err := http.Get(srv.URL + prefs); err != nil {
		t.Fatal(err)
	} else {
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(page), `value="join:`+public+`"`) {
			t.Errorf("preference page without the public list:\n%s", page)
		}
	}
	subOf := func(listID string) string {
		subs, _ := a.store.ContactSubscriptions(ctx, store.ContactRef{EmailKey: "ann@example.com"})
		for _, s := range subs {
			if s.ListID == listID {
				return s.Status
			}
		}
		return ""
	}
	for _, step := range []struct{ action, want string }{{"join:" + public, store.SubscriptionPending}, {"leave:" + public, store.SubscriptionUnsubscribed}} {
		resp, err := http.Post(srv.URL+prefs, "application/x-www-form-urlencoded", strings.NewReader("action="+url.QueryEscape(step.action)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || subOf(public) != step.want {
			t.Errorf("%s: %d, subscription %q, want %s", step.action, resp.StatusCode, subOf(public), step.want)
		}
	}

	form(public, "Cy@example.com")
	form(public, "cy@example.com")
	if code := form(public, "cy@example.com"); code != http.StatusTooManyRequests {
		t.Errorf("fourth subscribe of one address within the hour: %d, want 429", code)
	}
}
