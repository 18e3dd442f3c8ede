package delivery

// Tests of the whole delivery path against a real SMTP relay: messages accepted by the message
// service (as every way in accepts them), delivered by the engine through the pooled SMTP
// transport to an in-process go-smtp server (internal/devtools/smtpsink) scripted per recipient
// and attempt. The engine's clock is a test clock, so no test waits through a backoff.

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
	"github.com/postie/postie/internal/transport/smtp"
)

// relayEnv is one store, message service and clock shared by a test's engines.
type relayEnv struct {
	*bundle
	msgs *message.Service
}

func setupRelay(t *testing.T) *relayEnv {
	t.Helper()
	b := setup(t)
	msgs := message.New(message.Config{
		Store: b.store, DefaultFrom: "Shop <shop@postie.example>",
		MaxRecipients: 50, MaxMessageSize: 10 << 20, MaxScheduleAhead: 24 * time.Hour,
		MessageTTL: 24 * time.Hour, MaxAttempts: 3,
	})
	return &relayEnv{bundle: b, msgs: msgs}
}

// relayTransport is the SMTP transport for a sink URL with small timeouts.
func relayTransport(t *testing.T, url string, mod func(*smtp.Config)) *smtp.Transport {
	t.Helper()
	cfg, err := smtp.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Helo, cfg.CommandTimeout, cfg.DataTimeout = "postie.test", 5*time.Second, 5*time.Second
	if mod != nil {
		mod(&cfg)
	}
	tr, err := smtp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// send accepts a message (a password reset unless it has a subject) and returns its id.
func (r *relayEnv) send(t *testing.T, req message.Request) string {
	t.Helper()
	if req.Subject == "" {
		req.Subject, req.Text = "Your password reset", "Click the link."
	}
	acc, err := r.msgs.Accept(context.Background(), message.AcceptParams{Requests: []message.Request{req}, Now: r.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Results[0].Err; err != nil {
		t.Fatalf("send: %v", err)
	}
	return acc.Results[0].ID
}

func to(addrs ...string) message.Request { return message.Request{To: addrs} }

// counter counts a Script's calls per key.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) next(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
	return c.n[key]
}

func TestRelayDeliversWhatTheAPIAccepted(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{Keep: true, Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageData {
			return smtpsink.Action{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued as 7F3A2B"}
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, message.Request{
		From: "Billing <billing@postie.example>", To: []string{"Ann <ann@example.com>"},
		Cc: []string{"bob@example.com"}, Bcc: []string{"audit@example.com"},
		Subject: "Invoice 42", HTML: "<p>Your <b>invoice</b></p>", Text: "Your invoice",
		Attachments: []message.Attachment{{Filename: "invoice.txt", ContentType: "text/plain", Content: []byte("invoice")}},
	})
	m := r.waitStatus(t, id, store.StatusSent)
	if m.ProviderID != "7F3A2B" || m.Attempts != 1 {
		t.Errorf("sent with provider id %q after %d attempts, want 7F3A2B after 1", m.ProviderID, m.Attempts)
	}
	raw, err := r.store.MessageRaw(context.Background(), id)
	if err != nil {
		t.Fatalf("raw: %v", err)
	}
	got := sink.Messages()
	if len(got) != 1 {
		t.Fatalf("relay got %d messages, want 1", len(got))
	}
	if got[0].From != "billing@postie.example" || strings.Join(got[0].To, ",") != "ann@example.com,bob@example.com,audit@example.com" {
		t.Errorf("envelope from %q to %v", got[0].From, got[0].To)
	}
	if !bytes.Equal(got[0].Body, raw) {
		t.Errorf("the relay got other bytes than are stored:\n--- relay\n%s\n--- raw\n%s", got[0].Body, raw)
	}
	if bytes.Contains(got[0].Body, []byte("audit@")) {
		t.Error("Bcc address written into the message")
	}
}

func TestRelayTemporaryTwiceThenSent(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	var c counter
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageData && c.next("data") <= 2 {
			return smtpsink.Action{Code: 451, Enhanced: "4.3.0", Text: "Temporary local problem"}
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("ann@example.com"))
	m := r.waitFor(t, id, "deferred once", func(m store.Message) bool { return m.Attempts == 1 && m.Status == store.StatusDeferred })
	if m.LastError.Code != 451 || m.LastError.Enhanced != "4.3.0" || m.LastError.Stage != "data" || m.LastError.Text != "Temporary local problem" {
		t.Errorf("last error %+v", m.LastError)
	}
	r.clock.Add(time.Minute)
	r.waitFor(t, id, "deferred twice", func(m store.Message) bool { return m.Attempts == 2 && m.Status == store.StatusDeferred })
	r.clock.Add(10 * time.Minute)
	m = r.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 3 {
		t.Errorf("sent on attempt %d, want 3", m.Attempts)
	}
	if got := storetest.EventTypes(t, r.store, id); strings.Join(got, " ") != "queued deferred deferred sent" {
		t.Errorf("timeline %v", got)
	}
}

func TestRelayAlwaysTemporaryFailsAfterTheLadder(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageRcpt {
			return smtpsink.Action{Code: 451, Enhanced: "4.7.1", Text: "Greylisted, try again later"}
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("ann@example.com"))
	r.waitFor(t, id, "attempt 1", func(m store.Message) bool { return m.Attempts == 1 })
	r.clock.Add(time.Minute)
	r.waitFor(t, id, "attempt 2", func(m store.Message) bool { return m.Attempts == 2 })
	r.clock.Add(10 * time.Minute)
	m := r.waitStatus(t, id, store.StatusFailed)
	if m.Attempts != 3 || m.LastError.Code != 451 || m.LastError.Stage != "rcpt" || m.LastError.Attempt != 3 {
		t.Errorf("failed after %d attempts with %+v", m.Attempts, m.LastError)
	}
	failed, err := r.store.MessageList(context.Background(), store.MessageListParams{Statuses: []store.Status{store.StatusFailed}, Limit: 10})
	if err != nil || len(failed) != 1 || failed[0].LastError == nil || failed[0].LastError.Text != "Greylisted, try again later" {
		t.Errorf("failure queue: %+v %v", failed, err)
	}
}

func TestRelayHardBounceFailsAndSuppresses(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageRcpt && strings.HasPrefix(strings.ToLower(s.To), "gone") {
			return smtpsink.Action{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()

	id := r.send(t, to("Gone@Example.com"))
	m := r.waitStatus(t, id, store.StatusFailed)
	if m.Attempts != 1 || m.LastError.Enhanced != "5.1.1" {
		t.Errorf("failed after %d attempts with %+v", m.Attempts, m.LastError)
	}
	s, err := r.store.SuppressionGet(context.Background(), "gone@example.com", "", r.clock.Now())
	if err != nil || s.Reason != store.ReasonHardBounce {
		t.Fatalf("suppression: %+v %v", s, err)
	}

	// One unknown recipient among others: the others get it, the refusal is recorded, and the
	// message is partially_failed.
	id = r.send(t, to("ann@example.com", "gone2@example.com"))
	m = r.waitStatus(t, id, store.StatusPartiallyFailed)
	if m.LastError == nil || m.LastError.Enhanced != "5.1.1" {
		t.Errorf("partially failed with last error %+v, want the refusal of gone2", m.LastError)
	}
	evs, _ := r.store.MessageEvents(context.Background(), id)
	if last := string(evs[len(evs)-1].Detail); evs[len(evs)-1].Type != store.EventFailed ||
		!strings.Contains(last, `"recipient":"gone2@example.com"`) || !strings.Contains(last, "User unknown") {
		t.Errorf("failed event does not record the refused recipient: %s", last)
	}

	// The next message to the suppressed address never reaches the relay.
	before := sink.Count()
	id = r.send(t, to("gone@example.com"))
	r.waitStatus(t, id, store.StatusSuppressed)
	if sink.Count() != before {
		t.Error("a suppressed address was sent to")
	}
}

// TestRelayDownThenUp: while the relay is not listening, messages wait without spending attempts;
// when it starts, they all go out.
func TestRelayDownThenUp(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	e := r.engine(relayTransport(t, "smtp://"+addr+"?tls=none", nil), "node-a")
	stop := run(t, e)
	defer stop()

	var ids []string
	for i := range 5 {
		ids = append(ids, r.send(t, to("user"+string(rune('a'+i))+"@example.com")))
	}
	r.waitFor(t, ids[0], "deferred by the refused connection", func(m store.Message) bool { return m.Status == store.StatusDeferred })
	// Each probe must have failed before the clock moves on: a probe still dialling when the
	// clock jumps would read the later time and put the breaker's next probe beyond the clock's
	// last step (this test once failed that way, waiting on a sleep instead).
	for i, probe := range []time.Duration{time.Minute, 2 * time.Minute} {
		r.clock.Add(probe) // the breaker probes and fails again
		waitBreakerFailures(t, e, i+2)
	}
	for _, id := range ids {
		m, _ := r.store.MessageGet(context.Background(), id)
		if m.Attempts != 0 || m.Status == store.StatusSent || m.Status == store.StatusFailed {
			t.Fatalf("message %s is %s with %d attempts while the relay is down", id, m.Status, m.Attempts)
		}
	}

	sink := sinktest.Start(t, smtpsink.Options{Addr: addr})
	r.clock.Add(4 * time.Minute)
	for _, id := range ids {
		if m := r.waitStatus(t, id, store.StatusSent); m.Attempts != 1 {
			t.Errorf("message %s sent with %d attempts counted, want 1", id, m.Attempts)
		}
	}
	if sink.Count() != len(ids) {
		t.Errorf("relay got %d messages, want %d", sink.Count(), len(ids))
	}
}

// waitBreakerFailures waits until e's breaker has counted n failed attempts in a row.
func waitBreakerFailures(t *testing.T, e *Engine, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.breaker.mu.Lock()
		got := e.breaker.failures
		e.breaker.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("breaker counted %d failures, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSlowRelayConnectionDoesNotHoldUpOthers: one stalled transaction occupies one connection;
// the other connections keep delivering.
func TestSlowRelayConnectionDoesNotHoldUpOthers(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	release := make(chan struct{})
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageData && len(s.Recipients) > 0 && s.Recipients[0] == "slow@example.com" {
			<-release
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.engine(relayTransport(t, sink.URL()+"&pool=3", nil), "node-a"))
	defer stop()

	slow := r.send(t, to("slow@example.com"))
	r.waitStatus(t, slow, store.StatusSending)
	var fast []string
	for i := range 20 {
		fast = append(fast, r.send(t, to("fast"+string(rune('a'+i))+"@example.com")))
	}
	for _, id := range fast {
		r.waitStatus(t, id, store.StatusSent)
	}
	close(release)
	r.waitStatus(t, slow, store.StatusSent)
}

func TestRelayStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	server, client := sinktest.TLS(t)
	sink := sinktest.Start(t, smtpsink.Options{TLSConfig: server, Username: "postie", Password: "s3cret p@ss"})
	if !strings.HasPrefix(sink.URL(), "smtp://postie:") || !strings.Contains(sink.URL(), "tls=starttls") {
		t.Fatalf("sink URL %s", sink.URL())
	}
	stop := run(t, r.engine(relayTransport(t, sink.URL(), func(c *smtp.Config) { c.TLSConfig = client }), "node-a"))
	defer stop()
	r.waitStatus(t, r.send(t, to("ann@example.com")), store.StatusSent)

	// A wrong password is the relay being unusable, not the message failing.
	bad := relayTransport(t, strings.Replace(sink.URL(), "s3cret", "wrong", 1), func(c *smtp.Config) { c.TLSConfig = client })
	r2 := setupRelay(t)
	stop2 := run(t, r2.engine(bad, "node-b"))
	defer stop2()
	id := r2.send(t, to("ann@example.com"))
	m := r2.waitStatus(t, id, store.StatusDeferred)
	if m.Attempts != 0 || m.LastError.Stage != "auth" || strings.Contains(m.LastError.Text, "wrong") {
		t.Errorf("bad credentials: attempts %d, error %+v", m.Attempts, m.LastError)
	}
}

func TestRetryOfAFailedMessage(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	var c counter
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageData && c.next("data") == 1 {
			return smtpsink.Action{Code: 554, Enhanced: "5.3.0", Text: "Relay misconfigured"}
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-a"))
	defer stop()
	id := r.send(t, to("ann@example.com"))
	r.waitStatus(t, id, store.StatusFailed)

	ids, err := r.store.MessageRetry(context.Background(), store.MessageRetryParams{ID: id, Now: r.clock.Now(), ExpiresAt: r.clock.Now().Add(time.Hour)})
	if err != nil || len(ids) != 1 {
		t.Fatalf("retry: %v %v", ids, err)
	}
	m := r.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 1 {
		t.Errorf("sent after retry with %d attempts, want 1 (fresh attempts)", m.Attempts)
	}
	if got := storetest.EventTypes(t, r.store, id); strings.Join(got, " ") != "queued failed retried sent" {
		t.Errorf("timeline %v", got)
	}
	if sink.Count() != 1 {
		t.Errorf("relay accepted %d, want 1", sink.Count())
	}
}

// TestGracefulShutdownMidFlow: stopping while messages are flowing finishes the sends in progress,
// records them, and returns the rest; a restart delivers the rest and nothing twice.
func TestGracefulShutdownMidFlow(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	sink := sinktest.Start(t, smtpsink.Options{Script: func(s smtpsink.Step) smtpsink.Action {
		if s.Stage == smtpsink.StageData {
			return smtpsink.Action{Delay: 5 * time.Millisecond}
		}
		return smtpsink.Action{}
	}})
	const n = 60
	var ids []string
	for i := range n {
		ids = append(ids, r.send(t, message.Request{To: []string{"u@example.com"}, Subject: "s", Text: "t", Stream: []string{"transactional", "broadcast"}[i%2]}))
	}
	stop := run(t, r.engine(relayTransport(t, sink.URL()+"&pool=2", nil), "node-a"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sink.WaitCount(ctx, 10); err != nil {
		t.Fatal(err)
	}
	stop() // returns after the engine shut down
	atStop := sink.Count()
	var sent int
	for _, id := range ids {
		m, _ := r.store.MessageGet(context.Background(), id)
		switch {
		case m.Status == store.StatusSent:
			sent++
		case m.Status != store.StatusQueued || m.LeaseOwner != "":
			t.Errorf("after shutdown message %s is %s leased by %q", id, m.Status, m.LeaseOwner)
		}
	}
	if sent != atStop {
		t.Fatalf("the relay got %d messages but %d are recorded sent", atStop, sent)
	}
	if atStop == n {
		t.Fatal("everything was delivered before the shutdown; the test proves nothing")
	}

	stop = run(t, r.engine(relayTransport(t, sink.URL(), nil), "node-b"))
	defer stop()
	for _, id := range ids {
		r.waitStatus(t, id, store.StatusSent)
	}
	if sink.Count() != n {
		t.Errorf("relay got %d messages for %d sent: duplicates after a graceful shutdown", sink.Count(), n)
	}
}
