package app

import (
	"context"
	"testing"
	"time"

	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/errtrack/sentrytest"
)

// TestSentryWiring: with POSTIE_SENTRY_DSN the node reports to Sentry with postie's version as
// the release, POSTIE_ENVIRONMENT and the node id as server name.
func TestSentryWiring(t *testing.T) {
	t.Parallel()
	rcv := sentrytest.New(t)
	sink := sinktest.Start(t, smtpsink.Options{})
	a, _, _ := runApp(t, sink, func(c *config.Config) {
		c.SentryDSN, c.Environment, c.NodeID = rcv.DSN(), "staging", "node-a"
	})
	if a.sentry == nil {
		t.Fatal("no Sentry reporter with POSTIE_SENTRY_DSN set")
	}
	errtrack.Guard(context.Background(), a.Errors(), "test", func() { panic("boom") })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.sentry.Flush(ctx)
	events := rcv.Events()
	if len(events) != 1 {
		t.Fatalf("%d events, want 1", len(events))
	}
	ev := events[0]
	if ev["release"] != "postie@"+ReadVersion().Version || ev["environment"] != "staging" || ev["server_name"] != "node-a" {
		t.Errorf("release %v, environment %v, server_name %v", ev["release"], ev["environment"], ev["server_name"])
	}
}

// TestNoSentryWithoutDSN: without a DSN, reports only go to the log.
func TestNoSentryWithoutDSN(t *testing.T) {
	t.Parallel()
	a, _, _ := runApp(t, sinktest.Start(t, smtpsink.Options{}), nil)
	if a.sentry != nil || a.Errors() == nil {
		t.Errorf("sentry %v, errors %v", a.sentry, a.Errors())
	}
}
