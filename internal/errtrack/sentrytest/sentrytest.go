// Package sentrytest is a local Sentry for tests: an HTTP server that takes what the Sentry SDK
// sends (envelopes) and parses its events, so a test can check what would leave the machine.
package sentrytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Receiver is a local Sentry for project 42.
type Receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	raw    []string
	events []map[string]any
}

// New starts a receiver, closed when the test ends. A request that is not a well-formed
// envelope for project 42 fails the test.
func New(t testing.TB) *Receiver {
	t.Helper()
	rcv := &Receiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/42/envelope/" {
			t.Errorf("the Sentry SDK posted to %s", r.URL.Path)
		}
		body, _ := io.ReadAll(r.Body)
		events, err := ParseEnvelope(body)
		if err != nil {
			t.Errorf("envelope: %v\n%s", err, body)
		}
		rcv.mu.Lock()
		rcv.raw = append(rcv.raw, string(body))
		rcv.events = append(rcv.events, events...)
		rcv.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

// DSN is the DSN that sends to this receiver.
func (rcv *Receiver) DSN() string {
	return "http://publickey@" + rcv.srv.Listener.Addr().String() + "/42"
}

// Events returns the events received so far (each the event's JSON object).
func (rcv *Receiver) Events() []map[string]any {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]map[string]any(nil), rcv.events...)
}

// Raw returns the request bodies received so far, as sent.
func (rcv *Receiver) Raw() []string {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return append([]string(nil), rcv.raw...)
}

// ParseEnvelope returns the events of a Sentry envelope: a JSON header line, then items, each a
// JSON header line and a payload (of the header's length when it gives one, else up to the next
// newline). Items of other types (client reports, sessions) are skipped.
func ParseEnvelope(body []byte) ([]map[string]any, error) {
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

// Exceptions returns the exceptions of event ev (the protocol allows {"values": [...]} and the
// list alone, as this SDK sends it).
func Exceptions(ev map[string]any) []map[string]any {
	vals, _ := ev["exception"].([]any)
	if ex, ok := ev["exception"].(map[string]any); ok {
		vals, _ = ex["values"].([]any)
	}
	out := make([]map[string]any, 0, len(vals))
	for _, v := range vals {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
