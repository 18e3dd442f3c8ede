package mail

import (
	"bytes"
	"strings"
	"testing"
)

func TestVERP(t *testing.T) {
	t.Parallel()
	v, err := NewVERP(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const id = "msg_01jd8xq3m5v6w7x8y9z0a1b2c3"
	rcpts := []string{"a@example.com", "Bo@Example.net", "c@example.org"}
	for _, r := range rcpts {
		addr := v.Address(id, r, "Bounce.Shop.Example")
		local, _, _ := strings.Cut(addr, "@")
		if len(local) > 64 || local != strings.ToLower(local) {
			t.Fatalf("local part %q: want lowercase, at most 64 octets", local)
		}
		for _, given := range []string{addr, strings.ToUpper(addr)} {
			b, ok := v.Parse(given)
			if !ok || b.MessageID != id || b.Domain != "bounce.shop.example" {
				t.Fatalf("Parse(%q) = %+v, %v", given, b, ok)
			}
			got, ok := v.Recipient(b, rcpts)
			if !ok || !strings.EqualFold(got, r) {
				t.Fatalf("Recipient = %q, %v; want %q", got, ok, r)
			}
		}
	}
	addr := v.Address(id, "a@example.com", "bounce.example")
	other, _ := NewVERP(bytes.Repeat([]byte{8}, 32))
	forged := []string{
		"", "b-@bounce.example", "postmaster@bounce.example",
		other.Address(id, "a@example.com", "bounce.example"),     // another key
		strings.Replace(addr, "b-01jd8xq3m5", "b-01jd8xq3m6", 1), // another message, same MAC
		addr[:len("b-")+30] + "-aaaaaaaaaaaaaaaa@bounce.example",
		strings.Replace(addr, "b-", "b-u", 1), // not the alphabet, wrong length
	}
	for _, f := range forged {
		if b, ok := v.Parse(f); ok {
			t.Errorf("Parse(%q) verified: %+v", f, b)
		}
	}
	if got := v.Address("cmp_01jd8xq3m5v6w7x8y9z0a1b2c3", "a@example.com", "bounce.example"); got != "" {
		t.Errorf("Address of a non-message id = %q", got)
	}
	if _, err := NewVERP([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}
