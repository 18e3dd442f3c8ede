package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
)

// panics is a transport that panics when sending to a recipient in boom, and sends otherwise.
type panics struct{ boom string }

func (p *panics) Name() string { return "panics" }
func (p *panics) Close() error { return nil }
func (p *panics) Send(_ context.Context, env transport.Envelope, _ []byte) (transport.Result, error) {
	if env.To[0] == p.boom {
		panic("transport bug for " + env.To[0])
	}
	return transport.Result{ProviderID: "q1", Response: "250 ok"}, nil
}

// reports is an errtrack.Reporter that keeps what it is told.
type reports struct {
	mu     sync.Mutex
	panics []string
}

func (r *reports) Panic(_ context.Context, where string, v any, _ []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics = append(r.panics, fmt.Sprintf("%s: %v", where, v))
}
func (r *reports) Error(context.Context, string, error) {}

func (r *reports) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.panics...)
}

// TestPanickingSendIsReportedAndTheWorkerGoesOn: a panic while delivering one message is
// reported, costs that message an attempt (deferred on the ladder), and the stream's only
// sender goes on with the next message.
func TestPanickingSendIsReportedAndTheWorkerGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rep := &reports{}
	e := b.engine(&panics{boom: "boom@example.com"}, "node-a")
	e.cfg.Errors = rep
	for name, sc := range e.cfg.Streams {
		sc.Concurrency = 1
		e.cfg.Streams[name] = sc
	}
	stop := run(t, e)
	defer stop()

	bad := b.insertTo(t, store.StreamTransactional, time.Time{}, "boom@example.com")
	m := b.waitStatus(t, bad, store.StatusDeferred)
	if m.Attempts != 1 || m.LastError == nil || m.LastError.Stage != "internal" ||
		!m.NextAttemptAt.Equal(b.clock.Now().Add(time.Minute)) {
		t.Errorf("after the panic: attempts %d, next %v, last error %+v", m.Attempts, m.NextAttemptAt, m.LastError)
	}
	good := b.insertTo(t, store.StreamTransactional, time.Time{}, "ok@example.com")
	b.waitStatus(t, good, store.StatusSent)
	if got := rep.list(); len(got) != 1 || got[0] != "delivery worker: transport bug for boom@example.com" {
		t.Errorf("reports = %q", got)
	}

	// A message that panics every time fails once its attempts are used up.
	b.clock.Add(time.Minute)
	b.waitFor(t, bad, "deferred after 2 attempts", func(m store.Message) bool { return m.Attempts == 2 })
	b.clock.Add(10 * time.Minute)
	if m := b.waitStatus(t, bad, store.StatusFailed); m.Attempts != 3 {
		t.Errorf("failed after %d attempts, want 3", m.Attempts)
	}
}

// TestOutcomeLogLine: one line per outcome, with the ids, stream, transport, outcome, attempt
// and the relay's codes; the relay's text has its addresses masked and the recipients are only
// counted, unless LogPII.
func TestOutcomeLogLine(t *testing.T) {
	t.Parallel()
	for _, pii := range []bool{false, true} {
		t.Run(fmt.Sprint("pii=", pii), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var buf syncBuffer
			tr := &flaky{errs: []error{&transport.Error{Class: transport.Permanent, Code: 550, Enhanced: "5.1.1",
				Stage: "rcpt", Text: "<bob@x.example>: user unknown"}}}
			e := b.engine(tr, "node-a")
			e.cfg.LogPII = pii
			e.log = slog.New(slog.NewJSONHandler(&buf, nil))
			stop := run(t, e)
			id := b.insertTo(t, store.StreamTransactional, time.Time{}, "bob@x.example")
			b.waitStatus(t, id, store.StatusFailed)
			sent := b.insertTo(t, store.StreamBroadcast, time.Time{}, "carol@y.example")
			b.waitStatus(t, sent, store.StatusSent)
			stop()

			lines := map[string]map[string]any{}
			for l := range strings.SplitSeq(buf.String(), "\n") {
				var rec map[string]any
				if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == "delivery outcome" {
					lines[rec["message_id"].(string)] = rec
				}
			}
			f, s := lines[id], lines[sent]
			if f == nil || s == nil {
				t.Fatalf("no outcome line for each message: %s", buf.String())
			}
			if f["level"] != "WARN" || f["outcome"] != "failed" || f["stream"] != "transactional" || f["transport"] != "flaky" ||
				f["attempt"] != 1.0 || f["smtp_code"] != 550.0 || f["enhanced_code"] != "5.1.1" || f["stage"] != "rcpt" {
				t.Errorf("failed line = %v", f)
			}
			if s["level"] != "INFO" || s["outcome"] != "sent" || s["stream"] != "broadcast" || s["provider_id"] != "q1" || s["reply"] != nil {
				t.Errorf("sent line = %v", s)
			}
			if pii {
				if f["reply"] != "<bob@x.example>: user unknown" || fmt.Sprint(f["recipients"]) != "[bob@x.example]" {
					t.Errorf("with LogPII: reply %v, recipients %v", f["reply"], f["recipients"])
				}
				return
			}
			if f["reply"] != "<***@x.example>: user unknown" || f["recipients"] != 1.0 {
				t.Errorf("reply %v, recipients %v", f["reply"], f["recipients"])
			}
			if strings.Contains(buf.String(), "bob@") || strings.Contains(buf.String(), "carol@") {
				t.Errorf("the log names a recipient:\n%s", buf.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBackgroundTickPanicReported: a panic in one tick of a background loop (lease renewal,
// rescue) is reported and stopped, so the loop and the process go on.
func TestBackgroundTickPanicReported(t *testing.T) {
	t.Parallel()
	rep := &reports{}
	e := &Engine{cfg: Config{Errors: rep}}
	ticks := 0
	tick := e.guarded("delivery rescue", func(context.Context) {
		ticks++
		panic("boom")
	})
	tick(t.Context())
	tick(t.Context())
	if got := rep.list(); ticks != 2 || len(got) != 2 || got[0] != "delivery rescue: boom" {
		t.Errorf("%d ticks, reports %q; want 2 ticks, each reported", ticks, got)
	}
}
