package errtrack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/errtrack"
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

// sentryReceiver is a local HTTP server taking what the Sentry SDK sends: envelopes (a JSON
// header line, then items, each a JSON header line and a payload of its length).
type sentryReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	raw    []string
	events []map[string]any
}

func newSentryReceiver(t *testing.T) *sentryReceiver {
	t.Helper()
	rcv := &sentryReceiver{}
	rcv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/42/envelope/" {
			t.Errorf("the SDK posted to %s", r.URL.Path)
		}
		body, _ := io.ReadAll(r.Body)
		events, err := parseEnvelope(body)
		if err != nil {
			t.Errorf("envelope: %v\n%s", err, body)
		}
		rcv.mu.Lock()
		rcv.raw = append(rcv.raw, string(body))
		rcv.events = append(rcv.events, events...)
		rcv.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.Close)
	return rcv
}

func (rcv *sentryReceiver) dsn() string {
	return "http://publickey@" + rcv.Listener.Addr().String() + "/42"
}

func parseEnvelope(body []byte) ([]map[string]any, error) {
	rd := bufio.NewReader(bytes.NewReader(body))
	header, err := rd.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("no envelope header: %w", err)
	}
	var env map[string]any
	if err := json.Unmarshal(header, &env); err != nil {
		return nil, fmt.Errorf("envelope header: %w", err)
	}
	var events []map[string]any
	for {
		line, err := rd.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) == 0 && err != nil {
			return events, nil
		}
		var item struct {
			Type   string `json:"type"`
			Length *int   `json:"length"`
		}
		if err := json.Unmarshal(line, &item); err != nil {
			return nil, fmt.Errorf("item header %q: %w", line, err)
		}
		var payload []byte
		if item.Length != nil {
			payload = make([]byte, *item.Length)
			if _, err := io.ReadFull(rd, payload); err != nil {
				return nil, fmt.Errorf("item payload: %w", err)
			}
			_, _ = rd.ReadByte() // the newline after it
		} else if payload, err = rd.ReadBytes('\n'); err != nil && err != io.EOF {
			return nil, err
		}
		if item.Type != "event" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, fmt.Errorf("event: %w", err)
		}
		events = append(events, ev)
	}
}

// panicky panics with an address, as a relay reply quoted into a panic would.
func panicky() {
	panic(errors.New("relay said 550 5.1.1 <bob@x.example>: user unknown"))
}

func TestSentrySendsScrubbedReports(t *testing.T) {
	t.Parallel()
	rcv := newSentryReceiver(t)
	var logs bytes.Buffer
	rep, err := errtrack.NewSentry(errtrack.SentryConfig{DSN: rcv.dsn(), Release: "v1.2.3", Environment: "staging",
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

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.events) != 2 {
		t.Fatalf("got %d events, want 2: %q", len(rcv.events), rcv.raw)
	}
	for _, raw := range rcv.raw {
		for _, leak := range []string{"bob@", "carol@", "pk_SECRET"} {
			if strings.Contains(raw, leak) {
				t.Errorf("the SDK sent %q: %s", leak, raw)
			}
		}
	}
	var pan, failure map[string]any
	for _, ev := range rcv.events {
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
		t.Fatalf("want one fatal (panic) and one error event: %v", rcv.events)
	}
	ex := exceptions(t, pan)
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
	ex = exceptions(t, failure)
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

func exceptions(t *testing.T, ev map[string]any) []map[string]any {
	t.Helper()
	// The protocol allows {"values": [...]} and, as this SDK sends it, the list alone.
	vals, _ := ev["exception"].([]any)
	if ex, ok := ev["exception"].(map[string]any); ok {
		vals, _ = ex["values"].([]any)
	}
	out := make([]map[string]any, len(vals))
	for i, v := range vals {
		out[i] = v.(map[string]any)
	}
	return out
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
