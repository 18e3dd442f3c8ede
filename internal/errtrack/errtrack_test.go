package errtrack_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/errtrack/sentrytest"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"550 5.1.1 <bob@x.example>: user unknown", "550 5.1.1 <***@x.example>: user unknown"},
		{"no address here", "no address here"},
		{"to bob.smith+tag@mail.x.example, \"john doe\"@y.example", "to ***@mail.x.example, ***@y.example"},
		{"RCPT TO:<bounce+a1=bob=x.example@bounce.example>", "RCPT TO:<***@bounce.example>"},
		{"utf8 jöran@exämple.example", "utf8 ***@exämple.example"},
		{"literal bob@[192.0.2.1]", "literal ***@[192.0.2.1]"},
		{"dial postgres://postie:s3cret@db:5432/postie", "dial postgres://postie:***@db:5432/postie"},
		{"key pk_AbC-123_xyz refused", "key pk_*** refused"},
		{"Authorization: Bearer abc.def", "Authorization: Bearer ***"},
		{"a lone @ sign, user@ and @host", "a lone @ sign, user@ and @host"},
		{"GET /u/x?to=bob%40x.example&c=bob%2Btag%40y.example", "GET /u/x?to=***%40x.example&c=***%40y.example"},
		{"50%40 of it", "50%40 of it"},
	} {
		if got := errtrack.Scrub(tc.in); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestScrubAddSecret: a secret given to AddSecret is masked wherever it appears, whatever its
// shape; a short one is not (it would mask words).
func TestScrubAddSecret(t *testing.T) {
	t.Parallel()
	errtrack.AddSecret("s3cret-key-of-no-known-shape")
	errtrack.AddSecret("short")
	for _, tc := range []struct{ in, want string }{
		{"Authorization: s3cret-key-of-no-known-shape", "Authorization: ***"},
		{"a short word", "a short word"},
	} {
		if got := errtrack.Scrub(tc.in); got != tc.want {
			t.Errorf("Scrub(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubHandler(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(errtrack.ScrubHandler(slog.NewJSONHandler(&buf, nil))).With("from", "alice@a.example")
	log.Info("sent to carol@c.example", "err", errors.New("550 <bob@b.example> unknown"),
		"rcpts", []string{"dave@d.example"}, "n", 3, slog.Group("g", "who", "erin@e.example"))
	out := buf.String()
	for _, leak := range []string{"alice", "bob", "carol", "dave", "erin"} {
		if strings.Contains(out, leak) {
			t.Errorf("log line has %q: %s", leak, out)
		}
	}
	for _, keep := range []string{"***@b.example", `"n":3`, "***@e.example"} {
		if !strings.Contains(out, keep) {
			t.Errorf("log line lacks %q: %s", keep, out)
		}
	}
}

// recorder is a Reporter keeping what it was told.
type recorder struct {
	mu     sync.Mutex
	panics []string
	errs   []string
}

func (r *recorder) Panic(_ context.Context, where string, v any, stack []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics = append(r.panics, fmt.Sprintf("%s: %v", where, v))
}

func (r *recorder) Error(_ context.Context, where string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, where+": "+err.Error())
}

func TestGuardAndRecover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &recorder{}
	if errtrack.Guard(ctx, rec, "unit", func() {}) {
		t.Error("Guard reported a panic for a function that returned")
	}
	if !errtrack.Guard(ctx, rec, "unit", func() { panic("boom") }) {
		t.Error("Guard did not report the panic")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer errtrack.Recover(ctx, rec, "goroutine")
		s := []int{}
		_ = s[len(rec.panics)+1] // a runtime panic
	}()
	<-done
	if len(rec.panics) != 2 || rec.panics[0] != "unit: boom" || !strings.HasPrefix(rec.panics[1], "goroutine: runtime error: index out of range") {
		t.Errorf("panics = %q", rec.panics)
	}
}

func TestSupervise(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	runs := 0
	err := errtrack.SuperviseEvery(context.Background(), rec, "loop", time.Millisecond, func(context.Context) error {
		runs++
		if runs < 3 {
			panic(fmt.Sprintf("run %d", runs))
		}
		return errors.New("done")
	})
	if err == nil || err.Error() != "done" || runs != 3 || len(rec.panics) != 2 {
		t.Errorf("err %v after %d runs, panics %q", err, runs, rec.panics)
	}

	// A cancelled context ends the loop instead of running it again.
	ctx, cancel := context.WithCancel(context.Background())
	err = errtrack.SuperviseEvery(ctx, rec, "loop", time.Hour, func(context.Context) error { cancel(); panic("again") })
	if err != nil {
		t.Errorf("Supervise after cancel = %v", err)
	}
}

// panicky panics with an address, as a relay reply quoted into a panic would.
func panicky() {
	panic(errors.New("relay said 550 5.1.1 <bob@x.example>: user unknown"))
}

func TestSentrySendsScrubbedReports(t *testing.T) {
	t.Parallel()
	rcv := sentrytest.New(t)
	var logs bytes.Buffer
	rep, err := errtrack.NewSentry(errtrack.SentryConfig{DSN: rcv.DSN(), Release: "v1.2.3", Environment: "staging",
		ServerName: "node-a", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errtrack.Guard(ctx, rep, "delivery worker", panicky)
	rep.Error(ctx, "http POST /v1/messages", fmt.Errorf("store: insert for carol@y.example with key pk_SECRETSECRET: %w",
		errors.New("disk I/O error")))
	flush, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if !rep.Flush(flush) {
		t.Fatal("Flush did not send everything")
	}

	events := rcv.Events()
	if len(events) != 2 {
		t.Fatalf("got %d events, want 2: %q", len(events), rcv.Raw())
	}
	for _, raw := range rcv.Raw() {
		for _, leak := range []string{"bob@", "carol@", "pk_SECRET"} {
			if strings.Contains(raw, leak) {
				t.Errorf("the SDK sent %q: %s", leak, raw)
			}
		}
	}
	var pan, failure map[string]any
	for _, ev := range events {
		if ev["release"] != "v1.2.3" || ev["environment"] != "staging" || ev["server_name"] != "node-a" {
			t.Errorf("release %v, environment %v, server_name %v", ev["release"], ev["environment"], ev["server_name"])
		}
		if _, ok := ev["request"]; ok {
			t.Errorf("event has a request: %v", ev["request"])
		}
		if u, ok := ev["user"].(map[string]any); ok && len(u) > 0 {
			t.Errorf("event has a user: %v", u)
		}
		switch ev["level"] {
		case "fatal":
			pan = ev
		case "error":
			failure = ev
		}
	}
	if pan == nil || failure == nil {
		t.Fatalf("want one fatal (panic) and one error event: %v", events)
	}
	ex := sentrytest.Exceptions(pan)
	if len(ex) != 1 || ex[0]["value"] != "relay said 550 5.1.1 <***@x.example>: user unknown" ||
		pan["message"] != "delivery worker" {
		t.Errorf("panic event: message %v, exceptions %v", pan["message"], ex)
	}
	frames, _ := ex[0]["stacktrace"].(map[string]any)["frames"].([]any)
	if len(frames) == 0 {
		t.Fatalf("panic without a stack: %v", ex[0])
	}
	// Oldest first: the last frame is the one that panicked.
	if last := frames[len(frames)-1].(map[string]any); last["function"] != "panicky" ||
		last["module"] != "github.com/postie/postie/internal/errtrack_test" || last["in_app"] != true {
		t.Errorf("last frame = %v", last)
	}
	ex = sentrytest.Exceptions(failure)
	var values []string
	for _, e := range ex {
		values = append(values, e["value"].(string))
	}
	if !strings.Contains(strings.Join(values, "|"), "store: insert for ***@y.example with key pk_***: disk I/O error") {
		t.Errorf("error event exceptions = %q", values)
	}
	// The log has the reports too (it is not scrubbed here: that is the log handler's job).
	if !strings.Contains(logs.String(), "panic recovered") || !strings.Contains(logs.String(), "unexpected error") {
		t.Errorf("log = %s", logs.String())
	}
}

func TestNewSentryRefusesABadDSNWithoutQuotingIt(t *testing.T) {
	t.Parallel()
	_, err := errtrack.NewSentry(errtrack.SentryConfig{DSN: "https://secretkey@/"})
	if err == nil || strings.Contains(err.Error(), "secretkey") {
		t.Errorf("err = %v", err)
	}
	if _, err := errtrack.NewSentry(errtrack.SentryConfig{DSN: "not a url " + strconv.Itoa(1)}); err == nil {
		t.Error("no error for a DSN that is not a URL")
	}
}
