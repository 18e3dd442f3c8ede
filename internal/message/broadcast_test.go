package message_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// broadcastSetup is setup with list mail configured: links under https://u.example.com.
func broadcastSetup(t *testing.T, postal string) (*bundle, *audience.Links) {
	t.Helper()
	b := setup(t)
	keys, err := audience.NewKeys([]audience.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	links := audience.NewLinks(keys, "https://u.example.com/")
	b.svc = message.New(message.Config{
		Store: b.store, Templates: b.cat, DefaultFrom: "Shop <news@shop.example>",
		MaxRecipients: 3, MaxMessageSize: 64 << 10, MaxScheduleAhead: 30 * 24 * time.Hour,
		MessageTTL: 24 * time.Hour, MaxAttempts: 4,
		Broadcast: message.BroadcastConfig{Links: links, PostalAddress: postal, Mailto: "unsub@shop.example",
			FeedbackSender: "shopfbl"},
	})
	return b, links
}

func rawOf(t *testing.T, b *bundle, id string) string {
	t.Helper()
	raw, err := b.store.MessageRaw(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(raw), "\r\n ", " ") // unfolded
}

// headerValue returns the value of the first field name of an unfolded MIME.
func headerValue(raw, name string) string {
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return v
		}
	}
	return ""
}

// Every broadcast message is list mail (RFC 2369, RFC 8058, RFC 2919): its one-click link is a
// signed token for its recipient, list and message; HTML without a visible unsubscribe link
// gets the footer with the postal address; transactional mail gets none of it.
func TestBroadcastIsListMail(t *testing.T) {
	t.Parallel()
	b, links := broadcastSetup(t, "Shop Inc.\n1 Main St, Springfield")
	req := message.Request{To: []string{"Ann <Ann@Example.com>"}, Subject: "News", HTML: "<html><body><p>Hello</p></body></html>",
		Stream: store.StreamBroadcast, ListID: "lst_news"}
	res := b.accept(t, req)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	raw := rawOf(t, b, res.ID)
	lu := headerValue(raw, "List-Unsubscribe")
	url, rest, ok := strings.Cut(strings.TrimPrefix(lu, "<"), ">")
	if !ok || !strings.HasPrefix(url, "https://u.example.com/u/") || rest != ", <mailto:unsub@shop.example?subject=unsubscribe>" {
		t.Fatalf("List-Unsubscribe: %q", lu)
	}
	tok, err := links.Keys().Open(strings.TrimPrefix(url, "https://u.example.com/u/"), now)
	want := audience.Token{Purpose: audience.PurposeUnsubscribe, Address: "ann@example.com", ListID: "lst_news", MessageID: res.ID}
	if err != nil || tok != want {
		t.Errorf("token = %+v, %v; want %+v", tok, err, want)
	}
	if got := headerValue(raw, "List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post: %q", got)
	}
	if got := headerValue(raw, "List-Id"); got != "<lst_news.shop.example>" {
		t.Errorf("List-Id: %q", got)
	}
	if got := headerValue(raw, "Feedback-ID"); got != "broadcast:shopfbl" {
		t.Errorf("Feedback-ID of a message of no campaign: %q", got)
	}
	if !strings.Contains(raw, "Unsubscribe") || !strings.Contains(raw, "1 Main St, Springfield") {
		t.Errorf("no footer with the link and the postal address:\n%s", raw)
	}

	// A template that shows {{unsubscribe_url}} gets no footer; its links are the signed ones.
	if _, _, err := b.cat.Put(t.Context(), store.Template{Name: "news", Subject: "News", Origin: store.TemplateOriginAPI,
		HTML: `<p>Hi</p><p><a href="{{unsubscribe_url}}">Leave</a> · <a href="{{preferences_url}}">Preferences</a></p>`}); err != nil {
		t.Fatal(err)
	}
	res = b.accept(t, message.Request{To: []string{"bob@example.com"}, Template: "news", Stream: store.StreamBroadcast})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	raw = rawOf(t, b, res.ID)
	if strings.Contains(raw, "1 Main St") || strings.Contains(raw, "postie.invalid") {
		t.Errorf("template with its own links got a footer or placeholders:\n%s", raw)
	}
	if got := headerValue(raw, "List-Id"); got != "<broadcast.shop.example>" {
		t.Errorf("List-Id of a message without a list: %q", got)
	}

	// A campaign's message names the campaign in its Feedback-ID (Gmail's feedback loop).
	res = b.accept(t, message.Request{To: []string{"cy@example.com"}, Template: "news", Stream: store.StreamBroadcast,
		CampaignID: "cmp_01jd8xq3m5v7w9y0a2c4e6g8hk"})
	if got := headerValue(rawOf(t, b, res.ID), "Feedback-ID"); got != "cmp_01jd8xq3m5v7w9y0a2c4e6g8hk:broadcast:shopfbl" {
		t.Errorf("Feedback-ID of a campaign's message: %q", got)
	}
	// So does broadcast mail submitted as MIME (SMTP submission).
	res = b.accept(t, message.Request{Stream: store.StreamBroadcast, Raw: &message.Raw{MailFrom: "news@shop.example",
		RcptTo: []string{"dee@example.com"}, Data: []byte("From: news@shop.example\r\nTo: dee@example.com\r\nSubject: Hi\r\n\r\nHi\r\n")}})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := headerValue(rawOf(t, b, res.ID), "Feedback-ID"); got != "broadcast:shopfbl" {
		t.Errorf("Feedback-ID of submitted broadcast MIME: %q", got)
	}

	// Transactional mail is not list mail, and has no Feedback-ID.
	res = b.accept(t, message.Request{To: []string{"ann@example.com"}, Subject: "Reset", Text: "Click"})
	if raw := rawOf(t, b, res.ID); strings.Contains(raw, "List-") || strings.Contains(raw, "Unsubscribe") || strings.Contains(raw, "Feedback-ID") {
		t.Errorf("transactional message has list fields:\n%s", raw)
	}
}

func TestBroadcastRefused(t *testing.T) {
	t.Parallel()
	b, _ := broadcastSetup(t, "")
	res := b.accept(t, message.Request{To: []string{"ann@example.com"}, Subject: "News", Text: "Hi", Stream: store.StreamBroadcast})
	if _, probs := problemsOf(t, res.Err); len(probs) != 1 || !strings.Contains(probs[0], "POSTIE_POSTAL_ADDRESS") {
		t.Errorf("broadcast without a postal address: %v", probs)
	}
	b, _ = broadcastSetup(t, "1 Main St")
	res = b.accept(t, message.Request{To: []string{"ann@example.com"}, Cc: []string{"bob@example.com"}, Subject: "News", Text: "Hi", Stream: store.StreamBroadcast})
	if _, probs := problemsOf(t, res.Err); len(probs) != 1 || !strings.HasPrefix(probs[0], "to:") {
		t.Errorf("broadcast to two recipients: %v", probs)
	}
}
