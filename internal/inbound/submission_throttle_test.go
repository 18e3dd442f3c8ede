package inbound

import (
	"strings"
	"testing"
	"time"
)

// TestAuthThrottle: the delay doubles per failure of an address up to the ceiling, failures
// are forgiven over time, a success forgets them, IPv6 clients count by /64, and the map stays
// within its bound.
func TestAuthThrottle(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	th := newAuthThrottle(time.Second, 5*time.Second, time.Minute, 3)
	steps := []struct {
		addr string
		at   time.Duration // after t0
		want time.Duration
	}{
		{"192.0.2.1:1000", 0, time.Second},
		{"192.0.2.1:1001", 0, 2 * time.Second}, // another port, the same client
		{"192.0.2.1:1002", 0, 4 * time.Second},
		{"192.0.2.1:1003", 0, 5 * time.Second}, // the ceiling
		{"192.0.2.2:1000", 0, time.Second},     // another client
		{"[2001:db8::1]:25", 0, time.Second},
		{"[2001:db8::2]:25", 0, 2 * time.Second},             // the same /64
		{"192.0.2.1:1004", 3 * time.Minute, time.Second * 2}, // 4 failures, 3 forgiven, then one more
	}
	for _, s := range steps {
		if got := th.fail(s.addr, t0.Add(s.at)); got != s.want {
			t.Errorf("fail(%s) at +%s = %s, want %s", s.addr, s.at, got, s.want)
		}
	}
	th.succeed("192.0.2.1:9")
	if got := th.fail("192.0.2.1:1", t0.Add(3*time.Minute)); got != time.Second {
		t.Errorf("after a success: %s, want 1s", got)
	}
	for i := range 10 {
		th.fail("198.51.100."+string(rune('0'+i))+":1", t0.Add(time.Hour))
	}
	if n := len(th.m); n > 3 {
		t.Errorf("%d addresses remembered, want at most 3", n)
	}
}

// TestReceivedField: the trace field names the client as it greeted (or "unknown" for a name
// that cannot stand in it) and by its address literal, and the protocol by RFC 3848.
func TestReceivedField(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		helo, remote string
		tls          bool
		want         string
	}{
		{"app.test", "192.0.2.1:4567", true, "from app.test ([192.0.2.1])\r\n\tby mx.test (postie) with ESMTPSA;"},
		{"[192.0.2.1]", "[2001:db8::1]:25", false, "from unknown ([IPv6:2001:db8::1])\r\n\tby mx.test (postie) with ESMTPA;"},
		{"a(b)c", "[::ffff:192.0.2.9]:25", false, "from unknown ([192.0.2.9])"},
		{"x;y", "pipe", false, "from unknown ([unknown])"},
	} {
		got := string(receivedField(tc.helo, tc.remote, "mx.test", tc.tls, at))
		if !strings.HasPrefix(got, "Received: "+tc.want) || !strings.HasSuffix(got, "\t"+at.Format(time.RFC1123Z)+"\r\n") {
			t.Errorf("receivedField(%q, %q) = %q, want %q…", tc.helo, tc.remote, got, tc.want)
		}
	}
}
