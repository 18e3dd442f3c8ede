package transport_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/transport"
)

type countingTransport struct {
	mu   sync.Mutex
	sent int
	err  error
}

func (c *countingTransport) Name() string { return "count" }
func (c *countingTransport) Close() error { return nil }
func (c *countingTransport) Send(context.Context, transport.Envelope, []byte) (transport.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return transport.Result{}, c.err
	}
	c.sent++
	return transport.Result{Response: "250 ok"}, nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLimitWithoutLimitsIsTheTransport(t *testing.T) {
	ct := &countingTransport{}
	if got := transport.Limit(ct, transport.Limits{}); got != ct {
		t.Fatalf("Limit with no limits wrapped the transport: %T", got)
	}
}

func TestDailyQuota(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC)}
	ct := &countingTransport{}
	tr := transport.Limit(ct, transport.Limits{Daily: 3, Now: clk.Now})
	ctx := context.Background()
	send := func() error { _, err := tr.Send(ctx, transport.Envelope{To: []string{"a@x"}}, nil); return err }

	for i := range 2 {
		if err := send(); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	clk.Add(time.Hour)
	if err := send(); err != nil {
		t.Fatal(err)
	}
	// A send the relay never saw does not count.
	ct.err = &transport.Error{Class: transport.Unreachable, Stage: "connect", Text: "refused"}
	if err := send(); err == nil {
		t.Fatal("want the relay's error")
	}
	ct.err = nil

	err := send()
	var te *transport.Error
	if !errors.As(err, &te) || te.Class != transport.Unreachable || te.Stage != "quota" {
		t.Fatalf("fourth send: got %v, want an unreachable quota error", err)
	}
	// The first two were sent at 10:00; they leave the window at 10:00 the next day.
	if want := 23*time.Hour - 30*time.Second; te.RetryAfter != want {
		t.Errorf("RetryAfter = %s, want %s", te.RetryAfter, want)
	}
	if ct.sent != 3 {
		t.Errorf("relay got %d messages, want 3", ct.sent)
	}

	clk.Add(te.RetryAfter)
	for i := range 2 {
		if err := send(); err != nil {
			t.Fatalf("send after the window moved, %d: %v", i, err)
		}
	}
	if err := send(); err == nil {
		t.Fatal("the quota should be full again (the 11:00 send is still in the window)")
	}
}

func TestRateWaitsAndGivesUpWithContext(t *testing.T) {
	ct := &countingTransport{}
	// One message per hour: the burst is 1, so the second send must wait an hour.
	tr := transport.Limit(ct, transport.Limits{Rate: 1.0 / 3600})
	if _, err := tr.Send(context.Background(), transport.Envelope{}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := tr.Send(ctx, transport.Envelope{}, nil)
	var te *transport.Error
	if !errors.As(err, &te) || te.Class != transport.Unreachable || te.Stage != "rate" {
		t.Fatalf("got %v, want an unreachable rate error", err)
	}
	if ct.sent != 1 {
		t.Fatalf("relay got %d, want 1", ct.sent)
	}
}

func TestHardBounce(t *testing.T) {
	for _, c := range []struct {
		e    transport.Error
		want bool
	}{
		{transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.1.1", Text: "user unknown"}, true},
		{transport.Error{Class: transport.Permanent, Code: 556, Enhanced: "5.1.10", Text: "null MX"}, true},
		{transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.2.1", Text: "account disabled"}, true},
		{transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.2.1", Text: "receiving mail at a rate that prevents delivery"}, false},
		{transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.7.1", Text: "user unknown in our spam policy"}, false},
		{transport.Error{Class: transport.Permanent, Code: 550, Text: "No such user here"}, true},
		{transport.Error{Class: transport.Permanent, Code: 554, Text: "transaction failed"}, false},
		{transport.Error{Class: transport.Temporary, Code: 450, Enhanced: "4.1.1", Text: "user unknown"}, false},
	} {
		if got := c.e.HardBounce(); got != c.want {
			t.Errorf("%v: HardBounce = %v, want %v", &c.e, got, c.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                        "",
		"250 2.0.0 Ok: queued":    "250 2.0.0 Ok: queued",
		"line one\nline two\tend": "line one\nline two\tend",
		"nul\x00 esc\x1b del\x7f": "nul\uFFFD esc\uFFFD del\uFFFD",
		"bad \xff\xfe utf-8":      "bad \uFFFD utf-8",
		"é ✓ 😀":                   "é ✓ 😀",
	} {
		if got := transport.CleanText(in); got != want {
			t.Errorf("CleanText(%q) = %q, want %q", in, got, want)
		}
	}
}
