package inbound

import (
	"bytes"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/inflight"
	"github.com/postie/postie/internal/store"
)

// TestIntakeBudget: a large report takes its octets from the node's in-flight budget; while the
// budget is spent it is refused with 452 4.3.1 and nothing is recorded, and once there is room
// again it is read and applied.
func TestIntakeBudget(t *testing.T) {
	t.Parallel()
	budget := inflight.New(256<<10, 10*time.Millisecond)
	b := setupIntakeWith(t, "sqlite", func(c *IntakeConfig) { c.MaxSize, c.Inflight = 1<<20, budget })
	m := b.sent(t, store.StreamTransactional, "ann@example.com")
	verp := b.verp.Address(m.ID, "ann@example.com", testBounceDomain)
	line := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n")
	large := append(dsn("large@mx", "ann@example.com", "failed", "5.1.1", "550 5.1.1 User unknown", m.MessageID),
		bytes.Repeat(line, (200<<10)/len(line))...)
	if !budget.TryAcquire(budget.Size()) {
		t.Fatal("the budget is not free")
	}
	if got := smtpCode(b.send(t, verp, large)); got != "452 4.3.1" {
		t.Errorf("budget spent: reply %s, want 452 4.3.1", got)
	}
	if got := b.entries(t); len(got) != 0 {
		t.Errorf("entries recorded: %+v", got)
	}
	budget.Release(budget.Size())
	if got := smtpCode(b.send(t, verp, large)); got != "250" {
		t.Errorf("budget free: reply %s, want 250", got)
	}
	if got := b.suppressed(t, "ann@example.com"); len(got) != 1 {
		t.Errorf("after the report: suppressed in %v", got)
	}
	if !budget.TryAcquire(budget.Size()) {
		t.Error("the report did not give its octets back")
	}
}

// dialIntake connects to the intake from the local address from ("" for any) and returns the
// greeting's code and the connection.
func dialIntake(t *testing.T, addr, from string) (int, string, *textproto.Conn) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := textproto.NewConn(nc)
	t.Cleanup(func() { _ = c.Close() })
	code, msg, _ := c.ReadResponse(0)
	return code, msg, c
}

// TestIntakeConnectionBounds: connections past the bound per client, or past the bound in all,
// are answered 421 4.7.0 and closed; another client is served while one is at its bound, and a
// place given back serves a new connection.
func TestIntakeConnectionBounds(t *testing.T) {
	t.Parallel()
	t.Run("per client", func(t *testing.T) {
		t.Parallel()
		b := setupIntakeWith(t, "sqlite", func(c *IntakeConfig) { c.MaxSize, c.MaxConns, c.MaxConnsPerClient = 1<<20, 10, 2 })
		var open []*textproto.Conn
		for range 2 {
			code, msg, c := dialIntake(t, b.addr, "127.0.0.1")
			if code != 220 {
				t.Fatalf("within the bound: %d %s", code, msg)
			}
			open = append(open, c)
		}
		code, msg, c := dialIntake(t, b.addr, "127.0.0.1")
		if code != 421 || !strings.HasPrefix(msg, "4.7.0") {
			t.Errorf("past the bound: %d %s, want 421 4.7.0", code, msg)
		}
		if _, err := c.ReadLine(); err == nil {
			t.Error("the refused connection is still open")
		}
		if code, msg, _ := dialIntake(t, b.addr, "127.0.0.2"); code != 220 {
			t.Errorf("another client: %d %s, want 220", code, msg)
		}
		// A connection that ends gives its place back.
		if id, err := open[0].Cmd("QUIT"); err != nil {
			t.Fatal(err)
		} else {
			open[0].StartResponse(id)
			_, _, _ = open[0].ReadResponse(221)
			open[0].EndResponse(id)
		}
		waitGreeted(t, b.addr, "127.0.0.1")
	})
	t.Run("in all", func(t *testing.T) {
		t.Parallel()
		b := setupIntakeWith(t, "sqlite", func(c *IntakeConfig) { c.MaxSize, c.MaxConns, c.MaxConnsPerClient = 1<<20, 3, 16 })
		for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
			if code, msg, _ := dialIntake(t, b.addr, from); code != 220 {
				t.Fatalf("within the bound, from %s: %d %s", from, code, msg)
			}
		}
		if code, msg, _ := dialIntake(t, b.addr, "127.0.0.4"); code != 421 || !strings.HasPrefix(msg, "4.7.0") {
			t.Errorf("past the bound: %d %s, want 421 4.7.0", code, msg)
		}
	})
}

// waitGreeted connects from from until the intake greets it (the server closes a connection
// that ended a moment after the client saw its last reply), failing after 10 s.
func waitGreeted(t *testing.T, addr, from string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, msg, c := dialIntake(t, addr, from)
		if code == 220 {
			return
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("never greeted again: %d %s", code, msg)
		}
	}
}

// TestClientKey: the per-client bound counts an IPv4 address alone and an IPv6 address by its
// /64 (IPv4-mapped addresses as IPv4).
func TestClientKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:25", "192.0.2.7"},
		{"[2001:db8:1:2:aaaa::1]:25", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:4000", "2001:db8:1:2::/64"},
		{"[2001:db8:1:3::1]:25", "2001:db8:1:3::/64"},
		{"[::ffff:192.0.2.7]:25", "192.0.2.7"},
		{"[fe80::1%eth0]:25", "fe80::/64"},
	} {
		addr, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientKey(addr); got != tc.want {
			t.Errorf("clientKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
