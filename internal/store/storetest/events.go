package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/store"
)

// testEventDetails: the details a driver writes itself, in SQL (lease_expired, released,
// retried) or in Go (cancelled), decode into store.EventDetail with their fields set, so the
// API and webhooks read every event through one type whatever wrote it.
func testEventDetails(t *testing.T, s store.Store) {
	ctx := t.Context()
	rescued, released, retried, cancelled := Message(t0), Message(t0), Message(t0), Message(t0)
	accept(t, s, t0, rescued, released, retried, cancelled)
	claim(t, s, store.MessageClaimParams{Owner: "node-a/1/x", Stream: store.StreamTransactional, Limit: 3,
		Now: t0, LeaseUntil: t0.Add(time.Minute)})

	if _, err := s.MessageRescue(ctx, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(3 * time.Minute)
	claim(t, s, store.MessageClaimParams{Owner: "node-b/2/y", Stream: store.StreamTransactional, Limit: 3,
		Now: now, LeaseUntil: now.Add(time.Hour)})
	if n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{{ID: retried.Message.ID, Owner: "node-b/2/y",
		Status: store.StatusFailed, Attempts: 2, NextAttemptAt: now,
		LastError: &store.DeliveryError{Code: 550, Text: "no", At: now}}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	if _, err := s.MessageReleaseLeases(ctx, store.MessageReleaseParams{Owner: "node-b/2/y", Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MessageRetry(ctx, store.MessageRetryParams{ID: retried.Message.ID, Now: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MessageCancel(ctx, cancelled.Message.ID, now); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		msg  store.NewMessage
		typ  string
		want store.EventDetail
	}{
		{rescued, store.EventLeaseExpired, store.EventDetail{Owner: "node-a/1/x"}},
		{released, store.EventReleased, store.EventDetail{Owner: "node-b/2/y"}},
		{retried, store.EventRetried, store.EventDetail{Attempts: new(2)}},
	} {
		evs, err := s.MessageEvents(ctx, tc.msg.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got *store.EventDetail
		for _, e := range evs {
			if e.Type == tc.typ {
				if got, err = e.DecodeDetail(); err != nil {
					t.Fatalf("%s detail %s: %v", tc.typ, e.Detail, err)
				}
			}
		}
		if got == nil {
			t.Fatalf("no %s event with a detail in %+v", tc.typ, evs)
		}
		if diff := cmp.Diff(tc.want, *got); diff != "" {
			t.Errorf("%s detail (-want +got):\n%s", tc.typ, diff)
		}
	}
	evs, err := s.MessageEvents(ctx, cancelled.Message.ID)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != store.EventCancelled {
		t.Errorf("last event of the cancelled message: %s", last.Type)
	} else if d, err := last.DecodeDetail(); err != nil || d != nil && len(d.Recipients) != 0 {
		t.Errorf("cancelled detail of a message cancelled whole: %s, %v; want none", last.Detail, err)
	}
}

// EventTypes returns the types of message id's timeline, oldest first, for tests that check
// what happened to a message in order.
func EventTypes(t testing.TB, s store.Messages, id string) []string {
	t.Helper()
	evs, err := s.MessageEvents(t.Context(), id)
	if err != nil {
		t.Fatalf("events of %s: %v", id, err)
	}
	types := make([]string, len(evs))
	for i, e := range evs {
		types[i] = e.Type
	}
	return types
}

// testEventOrder: event ids grow in the order the events were recorded, within a message and
// across messages, whatever kind of event and however a driver keeps it (a sent event may live
// on the message row), and a sent event reads back with its time and detail.
func testEventOrder(t *testing.T, s store.Store) {
	ctx := t.Context()
	m1, m2 := Message(t0), Message(t0)
	accept(t, s, t0, m1, m2)
	finish := func(now time.Time, p store.MessageFinishParams) {
		t.Helper()
		claimed := claim(t, s, store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional, Limit: 2,
			Now: now, LeaseUntil: now.Add(time.Minute)})
		if len(claimed) == 0 {
			t.Fatalf("nothing to claim at %v", now)
		}
		p.Owner = "w"
		if n, err := s.MessageFinish(ctx, now, []store.MessageFinishParams{p}); err != nil || n != 1 {
			t.Fatalf("MessageFinish(%s) = %d, %v", p.Status, n, err)
		}
		var back []store.MessageFinishParams // what else was claimed goes back to the queue
		for _, c := range claimed {
			if c.ID != p.ID {
				back = append(back, store.MessageFinishParams{ID: c.ID, Owner: "w", Status: store.StatusQueued, NextAttemptAt: now})
			}
		}
		if _, err := s.MessageFinish(ctx, now, back); err != nil {
			t.Fatal(err)
		}
	}
	t1, t2, t3 := t0.Add(time.Second), t0.Add(2*time.Second), t0.Add(3*time.Second)
	finish(t1, store.MessageFinishParams{ID: m1.Message.ID, Status: store.StatusDeferred, Attempts: 1, NextAttemptAt: t1,
		Events: []store.Event{store.NewEvent(store.EventDeferred, t1, nil)}})
	sent := store.NewEvent(store.EventSent, t2, &store.EventDetail{Transport: "smtp", Response: "250 ok", Attempt: 2,
		Recipients: store.Recipients([]string{"ann@example.com"})})
	finish(t2, store.MessageFinishParams{ID: m1.Message.ID, Status: store.StatusSent, Attempts: 2, SentAt: t2,
		Events: []store.Event{sent}})
	finish(t3, store.MessageFinishParams{ID: m2.Message.ID, Status: store.StatusDeferred, Attempts: 1,
		NextAttemptAt: t3.Add(time.Hour), Events: []store.Event{store.NewEvent(store.EventDeferred, t3, nil)}})

	ev1, err := s.MessageEvents(ctx, m1.Message.ID)
	if err != nil || len(ev1) != 3 {
		t.Fatalf("events of the sent message = %+v, %v; want queued, deferred, sent", ev1, err)
	}
	want := store.Event{ID: ev1[2].ID, MessageID: m1.Message.ID, Type: store.EventSent, At: t2, Detail: sent.Detail}
	if diff := cmp.Diff(want, ev1[2], cmpOpts); diff != "" {
		t.Errorf("sent event (-want +got):\n%s", diff)
	}
	ev2, err := s.MessageEvents(ctx, m2.Message.ID)
	if err != nil || len(ev2) != 2 {
		t.Fatalf("events of the deferred message = %+v, %v; want queued, deferred", ev2, err)
	}
	if !(ev1[0].ID < ev1[1].ID && ev1[1].ID < ev1[2].ID && ev1[2].ID < ev2[1].ID) {
		t.Errorf("event ids %d, %d, %d then %d: want them growing in the order recorded",
			ev1[0].ID, ev1[1].ID, ev1[2].ID, ev2[1].ID)
	}
}
