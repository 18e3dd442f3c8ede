package mail

import (
	"strings"
	"testing"
)

func TestNewMessageID(t *testing.T) {
	t.Parallel()
	const msg = "msg_01jd8xq3m5v7w9y0a2c4e6g8hk"
	seen := map[string]bool{}
	for range 1000 {
		id := NewMessageID(msg, "shop.example")
		left, right, _ := strings.Cut(id, "@")
		digits, random, _ := strings.Cut(left, ".")
		if digits != msg[4:] || len(random) != 8 || !crockford(random) || right != "shop.example" {
			t.Fatalf("NewMessageID = %q, want the message's 26 digits, a dot, 8 random base32 digits @shop.example", id)
		}
		if err := checkMessageID(id); err != nil {
			t.Fatal(err)
		}
		if got, ok := MessageIDOf("<" + id + ">"); !ok || got != msg {
			t.Fatalf("MessageIDOf(<%s>) = %q, %v; want %s", id, got, ok, msg)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
	// Not a postie message id (a preview): 128 random bits.
	id := NewMessageID("", "shop.example")
	left, _, _ := strings.Cut(id, "@")
	if len(left) != 26 || strings.Trim(left, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Errorf("NewMessageID without a message id = %q, want 26 lower-case base32 characters", id)
	}
	if _, ok := MessageIDOf(id); ok {
		t.Errorf("MessageIDOf(%q) names a message", id)
	}
	if id := NewMessageID(msg, "Bücher.de"); !strings.HasSuffix(id, "@xn--bcher-kva.de") {
		t.Errorf("NewMessageID(Bücher.de) = %q, want A-label domain", id)
	}
}

func TestMessageIDOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		header, want string
	}{
		{"<01jd8xq3m5v7w9y0a2c4e6g8hk.abcdefgh@shop.example>", "msg_01jd8xq3m5v7w9y0a2c4e6g8hk"},
		{"  <01JD8XQ3M5V7W9Y0A2C4E6G8HK.ABCDEFGH@shop.example> ", "msg_01jd8xq3m5v7w9y0a2c4e6g8hk"}, // case changed in transit
		{"01jd8xq3m5v7w9y0a2c4e6g8hk.abcdefgh@shop.example", "msg_01jd8xq3m5v7w9y0a2c4e6g8hk"},      // no brackets
		{"<01jd8xq3m5v7w9y0a2c4e6g8hk.abcdefg@shop.example>", ""},                                   // 7 random digits
		{"<01jd8xq3m5v7w9y0a2c4e6g8h.abcdefgh@shop.example>", ""},                                   // 25 digits
		{"<01jd8xq3m5v7w9y0a2c4e6g8hu.abcdefgh@shop.example>", ""},                                  // u is not Crockford
		{"<01jd8xq3m5v7w9y0a2c4e6g8hk-abcdefgh@shop.example>", ""},                                  // no dot
		{"<01jd8xq3m5v7w9y0a2c4e6g8hk.abcdefgh>", ""},                                               // no domain
		{"<b2kfxqtq3wdeknr7qzv4wqcyky@shop.example>", ""},                                           // a random id
		{"", ""},
	} {
		got, ok := MessageIDOf(tc.header)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("MessageIDOf(%q) = %q, %v; want %q", tc.header, got, ok, tc.want)
		}
	}
}
