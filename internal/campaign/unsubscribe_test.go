package campaign_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/campaign"
	"github.com/postie/postie/internal/delivery"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
	"github.com/postie/postie/internal/transport/capture"
	"github.com/postie/postie/internal/transport/smtp"
)

// A recipient who unsubscribes mid-run gets nothing after: ann's message, created before she
// left, is stopped at delivery; eve, who left before hers was created, gets none. The run is
// worked by Serve and delivered by the delivery engine to a real SMTP sink.
func TestUnsubscribeMidRun(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *campaign.Config) { c.Window = 2 })
	ctx := t.Context()
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	rc, err := smtp.ParseURL(sink.URL())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := smtp.New(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })

	news := b.list(t, "News")
	for _, name := range []string{"ann", "bob", "cat", "dan", "eve"} {
		b.contact(t, name+"@example.com", name, news)
	}
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	tick(t, b.svc, start) // the window: ann's and bob's messages
	msgs, err := b.st.MessageList(ctx, store.MessageListParams{CampaignID: c.ID, Limit: 10})
	if err != nil || len(msgs) != 2 {
		t.Fatalf("messages after the first step: %d, %v", len(msgs), err)
	}
	unsub := &audience.Unsubscriber{Store: b.st, Audience: b.st}
	for _, who := range []string{"ann@example.com", "eve@example.com"} {
		if err := unsub.LeaveList(ctx, audience.Token{Purpose: audience.PurposeUnsubscribe, Address: who, ListID: news},
			store.Consent{Source: "one_click"}, start); err != nil {
			t.Fatal(err)
		}
	}

	defer b.serve(t, tr)()

	waitState(t, b.svc, c.ID, store.CampaignFinished)
	var got []string
	for _, m := range sink.Messages() {
		got = append(got, m.To...)
	}
	slices.Sort(got)
	if want := []string{"bob@example.com", "cat@example.com", "dan@example.com"}; !slices.Equal(got, want) {
		t.Fatalf("the sink got mail for %v, want %v", got, want)
	}
	r := b.runs(t, c.ID)[0]
	if r.Progress.Counts["sent"] != 3 || r.Progress.Counts["suppressed"] != 1 || r.Progress.Counts["unsubscribed"] != 1 {
		t.Fatalf("run counts %v", r.Progress.Counts)
	}
}

// Serve works a run on its own: its audience materialised beside the creation of its messages,
// a window at a time, and delivered by the delivery engine (capture transport), to the end.
func TestServeWorksARun(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *campaign.Config) { c.Window = 40 })
	ctx := t.Context()
	news := b.list(t, "News")
	const n = 300
	items := make([]store.ContactUpsert, n)
	for i := range items {
		items[i] = store.ContactUpsert{Email: fmt.Sprintf("c%03d@example.com", i), Lists: []string{news}}
	}
	if _, err := b.contacts.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	defer b.serve(t, capture.New())()
	c := b.create(t, campaign.Input{Lists: &[]string{news}})
	if _, err := b.svc.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, b.svc, c.ID, store.CampaignFinished)
	r := b.runs(t, c.ID)[0]
	if r.Recipients != n || r.Progress.Counts["sent"] != n || !r.Materialised {
		t.Fatalf("run: %d recipients, counts %v", r.Recipients, r.Progress.Counts)
	}
}

// serve runs the campaign service (Serve) and a delivery engine through tr until the returned
// stop is called.
func (b *bundle) serve(t *testing.T, tr transport.Transport) (stop func()) {
	t.Helper()
	engine := delivery.New(delivery.Config{Store: b.st, Transport: tr, Owner: "node-a/1/dd", Lease: time.Minute,
		RetryDelays: []time.Duration{time.Minute}, PollInterval: 10 * time.Millisecond, Now: b.clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- engine.Run(ctx) }()
	go func() { done <- b.svc.Serve(ctx) }()
	return func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("stopped with %v", err)
			}
		}
	}
}

// waitState waits (up to 15 s) until the campaign is in state.
func waitState(t *testing.T, svc *campaign.Service, cmpID, state string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cur, err := svc.Get(t.Context(), cmpID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("campaign still %s, want %s", cur.State, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
