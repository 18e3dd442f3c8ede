package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/errtrack/sentrytest"
	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// brokenStore fails MessageGet as a broken disk would, with an error quoting an address.
type brokenStore struct{ store.Store }

func (brokenStore) MessageGet(context.Context, string) (store.Message, error) {
	return store.Message{}, errors.New("disk I/O error reading the row of bob@x.example")
}

// TestStoreFailureIsReported: a store failure is answered 500 without its detail, and reported
// (here to a local Sentry) scrubbed, named by a bounded place, not the request's ids.
func TestStoreFailureIsReported(t *testing.T) {
	t.Parallel()
	rcv := sentrytest.New(t)
	rep, err := errtrack.NewSentry(errtrack.SentryConfig{DSN: rcv.DSN(), Release: "postie@test", Environment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	b := setupOn(t, brokenStore{sqlitetest.Open(t)}, func(c *httpapi.Config) { c.Errors = rep })
	r := b.do(http.MethodGet, "/v1/messages/msg_0123456789", nil)
	if r.status != http.StatusInternalServerError || strings.Contains(string(r.body), "disk") {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep.Flush(ctx)
	events := rcv.Events()
	if len(events) != 1 {
		t.Fatalf("%d events, want 1: %q", len(events), rcv.Raw())
	}
	if tags, _ := events[0]["tags"].(map[string]any); tags["where"] != "httpapi store" {
		t.Errorf("tags = %v", events[0]["tags"])
	}
	var values []string
	for _, ex := range sentrytest.Exceptions(events[0]) {
		values = append(values, ex["value"].(string))
	}
	if !strings.Contains(strings.Join(values, "|"), "message msg_0123456789: disk I/O error reading the row of ***@x.example") {
		t.Errorf("exceptions = %q", values)
	}
	for _, raw := range rcv.Raw() {
		if strings.Contains(raw, "bob@") || strings.Contains(raw, testKey) {
			t.Errorf("the report leaks: %s", raw)
		}
	}
}
