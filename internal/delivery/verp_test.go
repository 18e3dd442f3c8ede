package delivery

// Bounce addresses (VERP, email-rules §4.3) against a real scripted relay: each recipient in a
// transaction of its own, its MAIL FROM a bounce address that verifies and names it, and each
// reply judged for its recipient alone.

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
	"github.com/postie/postie/internal/transport"
)

func testVERP(t *testing.T) *mail.VERP {
	t.Helper()
	v, err := mail.NewVERP(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// verpEngine is r's engine with bounce addresses at bounce.postie.example.
func (r *relayEnv) verpEngine(tr transport.Transport, v *mail.VERP) *Engine {
	e := r.engine(tr, "node-a")
	e.cfg.BounceAddress = func(messageID, rcpt, _ string) string {
		return v.Address(messageID, rcpt, "bounce.postie.example")
	}
	return e
}

// checkBounceAddresses checks that each transaction the sink took has one recipient and a
// bounce address naming the message and that recipient.
func checkBounceAddresses(t *testing.T, v *mail.VERP, sink *smtpsink.Sink, id string, rcpts []string) {
	t.Helper()
	for _, m := range sink.Messages() {
		if len(m.To) != 1 {
			t.Errorf("a transaction to %v, want one recipient each", m.To)
			continue
		}
		b, ok := v.Parse(m.From)
		if !ok || b.MessageID != id || b.Domain != "bounce.postie.example" {
			t.Errorf("MAIL FROM %q for %s: verifies %v, names %+v", m.From, m.To[0], ok, b)
			continue
		}
		if got, ok := v.Recipient(b, rcpts); !ok || !strings.EqualFold(got, m.To[0]) {
			t.Errorf("MAIL FROM %q names recipient %q, sent to %s", m.From, got, m.To[0])
		}
	}
}

// TestVERPOneTransactionPerRecipient: To, Cc and Bcc each get their own transaction with their
// own bounce address; the message is sent once to each, with the same content.
func TestVERPOneTransactionPerRecipient(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	v := testVERP(t)
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	stop := run(t, r.verpEngine(relayTransport(t, sink.URL(), nil), v))
	defer stop()

	id := r.send(t, to("ann@example.com", "Bob@example.com", "cy@example.com"))
	m := r.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 1 {
		t.Errorf("sent after %d attempts, want 1", m.Attempts)
	}
	want := [][]string{{"ann@example.com"}, {"Bob@example.com"}, {"cy@example.com"}}
	if got := envelopes(sink); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("relay transactions %v, want %v", got, want)
	}
	checkBounceAddresses(t, v, sink, id, m.Recipients)
	msgs := sink.Messages()
	if froms := []string{msgs[0].From, msgs[1].From, msgs[2].From}; froms[0] == froms[1] || froms[1] == froms[2] {
		t.Errorf("recipients share a bounce address: %v", froms)
	}
	for _, sm := range msgs[1:] {
		if !bytes.Equal(sm.Body, msgs[0].Body) {
			t.Errorf("the copies differ:\n%s\n---\n%s", msgs[0].Body, sm.Body)
		}
	}
}

// TestVERPMixedOutcomes: a recipient refused at RCPT (550 5.1.1) fails and is suppressed, one
// refused at DATA (452, its own transaction) is deferred alone, the third is sent; the deferred
// one is sent on the next attempt, and the message ends partially failed.
func TestVERPMixedOutcomes(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	v := testVERP(t)
	var dataRefusals atomic.Int32
	sink := sinktest.Start(t, smtpsink.Options{Keep: true, Script: func(s smtpsink.Step) smtpsink.Action {
		switch {
		case s.Stage == smtpsink.StageRcpt && s.To == "gone@example.com":
			return smtpsink.Action{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}
		case s.Stage == smtpsink.StageData && slices.Contains(s.Recipients, "full@example.com") && dataRefusals.Add(1) == 1:
			return smtpsink.Action{Code: 452, Enhanced: "4.2.2", Text: "Mailbox full"}
		}
		return smtpsink.Action{}
	}})
	stop := run(t, r.verpEngine(relayTransport(t, sink.URL(), nil), v))
	defer stop()

	id := r.send(t, to("gone@example.com", "full@example.com", "ok@example.com"))
	m := r.waitStatus(t, id, store.StatusDeferred)
	if m.Attempts != 1 || m.LastError == nil || m.LastError.Code != 452 || m.LastError.Stage != "data" {
		t.Fatalf("deferred after %d attempts with %+v, want the 452 at DATA", m.Attempts, m.LastError)
	}
	if got := states(r.recipients(t, id)); got != "full@example.com=deferred gone@example.com=failed ok@example.com=sent" {
		t.Errorf("recipients after attempt 1: %s", got)
	}
	if s, err := r.store.SuppressionGet(context.Background(), "gone@example.com", "", r.clock.Now()); err != nil || s.Reason != store.ReasonHardBounce {
		t.Errorf("the 5.1.1 refusal did not suppress its recipient: %+v %v", s, err)
	}
	if _, err := r.store.SuppressionGet(context.Background(), "full@example.com", "", r.clock.Now()); err == nil {
		t.Error("the recipient refused at DATA with 452 was suppressed")
	}

	r.clock.Add(time.Minute)
	m = r.waitStatus(t, id, store.StatusPartiallyFailed)
	if got := states(r.recipients(t, id)); got != "full@example.com=sent gone@example.com=failed ok@example.com=sent" {
		t.Errorf("recipients at the end: %s", got)
	}
	want := [][]string{{"ok@example.com"}, {"full@example.com"}}
	if got := envelopes(sink); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("relay transactions %v, want %v", got, want)
	}
	checkBounceAddresses(t, v, sink, id, m.Recipients)
	if got := storetest.EventTypes(t, r.store, id); strings.Join(got, " ") != "queued sent deferred failed sent" {
		t.Errorf("timeline %v", got)
	}
}

// goesAway passes the first n sends to its transport, then finds the relay unreachable.
type goesAway struct {
	transport.Transport
	n     atomic.Int32
	sends atomic.Int32
}

func (g *goesAway) Send(ctx context.Context, env transport.Envelope, raw []byte) (transport.Result, error) {
	if g.sends.Add(1) > g.n.Load() {
		return transport.Result{}, &transport.Error{Class: transport.Unreachable, Stage: "connect", Text: "connection refused"}
	}
	return g.Transport.Send(ctx, env, raw)
}

// TestVERPRelayGoesAwayMidMessage: the relay takes the first recipient, then cannot be reached:
// the others wait for the breaker without spending an attempt; when the relay is back they are
// sent, and the first is not sent again. A relay unreachable from the first recipient on
// defers the whole message as without VERP.
func TestVERPRelayGoesAwayMidMessage(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	v := testVERP(t)
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	tr := &goesAway{Transport: relayTransport(t, sink.URL(), nil)}
	tr.n.Store(1)
	stop := run(t, r.verpEngine(tr, v))
	defer stop()

	id := r.send(t, to("first@example.com", "second@example.com", "third@example.com"))
	m := r.waitStatus(t, id, store.StatusDeferred)
	if !m.NextAttemptAt.Equal(r.clock.Now().Add(time.Minute)) {
		t.Errorf("next attempt at %v, want the breaker's probe a minute on", m.NextAttemptAt)
	}
	view := r.recipients(t, id)
	if got := states(view); got != "first@example.com=sent second@example.com=deferred third@example.com=deferred" {
		t.Errorf("recipients after the relay went away: %s", got)
	}
	for _, rc := range view[1:] {
		if rc.Attempts != 0 || rc.LastError == nil || rc.LastError.Stage != "connect" {
			t.Errorf("waiting recipient %+v, want no attempt spent and the connect error", rc)
		}
	}
	evs, _ := r.store.MessageEvents(context.Background(), id)
	if d := string(evs[len(evs)-1].Detail); !strings.Contains(d, `"attempt_counted":false`) || !strings.Contains(d, "second@example.com") {
		t.Errorf("deferred event: %s", d)
	}

	tr.n.Store(1 << 20) // the relay is back
	r.clock.Add(time.Minute)
	r.waitStatus(t, id, store.StatusSent)
	want := [][]string{{"first@example.com"}, {"second@example.com"}, {"third@example.com"}}
	if got := envelopes(sink); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("relay transactions %v, want %v (each once)", got, want)
	}
	checkBounceAddresses(t, v, sink, id, m.Recipients)
}

// TestVERPRelayUnreachableFromTheStart: the breaker path as without VERP: the whole message
// waits without spending an attempt, and goes out once the relay answers.
func TestVERPRelayUnreachableFromTheStart(t *testing.T) {
	t.Parallel()
	r := setupRelay(t)
	v := testVERP(t)
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	tr := &goesAway{Transport: relayTransport(t, sink.URL(), nil)}
	stop := run(t, r.verpEngine(tr, v))
	defer stop()

	id := r.send(t, to("first@example.com", "second@example.com"))
	m := r.waitStatus(t, id, store.StatusDeferred)
	if m.Attempts != 0 || tr.sends.Load() != 1 {
		t.Errorf("deferred after %d attempts and %d sends, want none spent and one try", m.Attempts, tr.sends.Load())
	}
	if got := states(r.recipients(t, id)); got != "first@example.com=deferred second@example.com=deferred" {
		t.Errorf("recipients: %s", got)
	}
	tr.n.Store(1 << 20)
	r.clock.Add(time.Minute)
	m = r.waitStatus(t, id, store.StatusSent)
	if m.Attempts != 1 || sink.Count() != 2 {
		t.Errorf("sent after %d attempts, %d transactions; want 1 and 2", m.Attempts, sink.Count())
	}
	checkBounceAddresses(t, v, sink, id, m.Recipients)
}
