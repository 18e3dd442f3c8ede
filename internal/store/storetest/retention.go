package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

var retentionCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"MessageBodyPurge", testMessageBodyPurge},
	{"MessageBodyPurgeRetry", testMessageBodyPurgeRetry},
	{"MessagePurge", testMessagePurge},
	{"InboundPurge", testInboundPurge},
	{"RetentionLock", testRetentionLock},
}

// retentionFixture is one message in each kind of state, finished (or last changed) at t0
// unless said otherwise.
type retentionFixture struct {
	sent, failed, cancelled, deferred, queued, scheduled store.NewMessage
	bounced                                              string // sent at t0, bounced at t0+2h
}

func seedRetention(t *testing.T, s store.Store) retentionFixture {
	t.Helper()
	var f retentionFixture
	f.sent, f.failed, f.deferred = Message(t0), Message(t0), Message(t0)
	finishAll(t, s, t0, outcome{f.sent, store.StatusSent, nil},
		outcome{f.failed, store.StatusFailed, deliveryErr(550, "5.1.1", t0)},
		outcome{f.deferred, store.StatusDeferred, deliveryErr(451, "4.3.0", t0)})
	f.bounced = sentMessage(t, s, store.StreamTransactional, t0, "bo@example.com")
	apply(t, s, t0.Add(2*time.Hour), store.ReportPolicy{}, bounce(f.bounced, "bo@example.com", store.BounceHard, ""))
	f.cancelled = Message(t0)
	f.queued = Message(t0)
	f.scheduled = Message(t0, func(m *store.Message) {
		m.Status, m.SendAt, m.NextAttemptAt = store.StatusScheduled, t0.Add(72*time.Hour), t0.Add(72*time.Hour)
	})
	accept(t, s, t0, f.cancelled, f.queued, f.scheduled)
	if _, err := s.MessageCancel(t.Context(), f.cancelled.Message.ID, t0); err != nil {
		t.Fatalf("MessageCancel: %v", err)
	}
	return f
}

// wantRaw checks that the message's MIME is still there.
func wantRaw(t *testing.T, s store.Store, m store.NewMessage) {
	t.Helper()
	raw, err := s.MessageRaw(t.Context(), m.Message.ID)
	if err != nil || !bytes.Equal(raw, m.Raw) {
		t.Errorf("MessageRaw(%s %s) = %d octets, %v; want its MIME", m.Message.Status, m.Message.ID, len(raw), err)
	}
}

// wantPurged checks that the message's MIME was purged at at, its row and timeline kept.
func wantPurged(t *testing.T, s store.Store, msgID string, at time.Time) {
	t.Helper()
	ctx := t.Context()
	var pe *store.BodyPurgedError
	if _, err := s.MessageRaw(ctx, msgID); !errors.As(err, &pe) || !errors.Is(err, store.ErrBodyPurged) || !pe.At.Equal(at) || pe.ID != msgID {
		t.Errorf("MessageRaw(%s) error = %v; want body purged at %v", msgID, err, at)
	}
	if _, _, err := s.MessageRawPart(ctx, msgID, 0, 10); !errors.As(err, &pe) || !pe.At.Equal(at) {
		t.Errorf("MessageRawPart(%s) error = %v; want body purged at %v", msgID, err, at)
	}
	if _, err := s.MessageGet(ctx, msgID); err != nil {
		t.Errorf("MessageGet(%s) after the body purge: %v", msgID, err)
	}
	if ev, err := s.MessageEvents(ctx, msgID); err != nil || len(ev) < 2 {
		t.Errorf("MessageEvents(%s) after the body purge = %d events, %v; want the timeline kept", msgID, len(ev), err)
	}
	if rc, err := s.MessageRecipients(ctx, msgID); err != nil || len(rc) == 0 {
		t.Errorf("MessageRecipients(%s) after the body purge = %v, %v; want them kept", msgID, rc, err)
	}
}

func testMessageBodyPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := seedRetention(t, s)
	now := t0.Add(30 * 24 * time.Hour)
	purge := func(before time.Time, limit int) int {
		t.Helper()
		n, err := s.MessageBodyPurge(ctx, store.PurgeParams{Before: before, Limit: limit, Now: now})
		if err != nil {
			t.Fatalf("MessageBodyPurge: %v", err)
		}
		return n
	}
	if n := purge(t0, 10); n != 0 {
		t.Fatalf("MessageBodyPurge before any finish = %d, want 0", n)
	}
	if n := purge(t0.Add(time.Hour), 0); n != 0 {
		t.Fatalf("MessageBodyPurge with limit 0 = %d, want 0", n)
	}
	// Sent, failed and cancelled finished at t0; the bounced one changed at t0+2h.
	if n := purge(t0.Add(time.Hour), 2); n != 2 {
		t.Fatalf("MessageBodyPurge(limit 2) = %d, want 2", n)
	}
	if n := purge(t0.Add(time.Hour), 10); n != 1 {
		t.Fatalf("MessageBodyPurge = %d, want 1 (the third finished at t0)", n)
	}
	if n := purge(t0.Add(time.Hour), 10); n != 0 {
		t.Fatalf("MessageBodyPurge again = %d, want 0", n)
	}
	for _, m := range []store.NewMessage{f.sent, f.failed, f.cancelled} {
		wantPurged(t, s, m.Message.ID, now)
		if m := get(t, s, m.Message.ID); !m.UpdatedAt.Equal(t0) {
			t.Errorf("updated_at after the body purge = %v, want %v (its finish)", m.UpdatedAt, t0)
		}
	}
	// Never a message still to be sent, however old.
	for _, m := range []store.NewMessage{f.deferred, f.queued, f.scheduled} {
		wantRaw(t, s, m)
	}
	if _, err := s.MessageRaw(ctx, f.bounced); err != nil {
		t.Errorf("MessageRaw of the message bounced after the cut: %v", err)
	}
	if n := purge(t0.Add(3*time.Hour), 10); n != 1 {
		t.Fatalf("MessageBodyPurge after the bounce = %d, want 1", n)
	}
	wantPurged(t, s, f.bounced, now)
	if n := purge(now.Add(1000*time.Hour), 10); n != 0 {
		t.Fatalf("MessageBodyPurge of the unfinished = %d, want 0", n)
	}
	if _, err := s.MessageRaw(ctx, "msg_00000000000000000000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("MessageRaw of no message: %v, want ErrNotFound", err)
	}
}

func testMessageBodyPurgeRetry(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := Message(t0), Message(t0)
	hard := deliveryErr(550, "5.1.1", t0)
	finishAll(t, s, t0, outcome{a, store.StatusFailed, hard}, outcome{b, store.StatusFailed, hard})
	now := t0.Add(time.Hour)
	if n, err := s.MessageBodyPurge(ctx, store.PurgeParams{Before: now, Limit: 1, Now: now}); err != nil || n != 1 {
		t.Fatalf("MessageBodyPurge = %d, %v; want 1", n, err)
	}
	purged, kept := a, b
	if _, err := s.MessageRaw(ctx, a.Message.ID); err == nil {
		purged, kept = b, a
	}
	var pe *store.BodyPurgedError
	_, err := s.MessageRetry(ctx, store.MessageRetryParams{ID: purged.Message.ID, Now: now, ExpiresAt: now.Add(time.Hour)})
	if !errors.As(err, &pe) || !pe.At.Equal(now) {
		t.Fatalf("MessageRetry of a purged message: %v; want body purged at %v", err, now)
	}
	ids, err := s.MessageRetry(ctx, store.MessageRetryParams{Now: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil || len(ids) != 1 || ids[0] != kept.Message.ID {
		t.Fatalf("MessageRetry by filter = %v, %v; want only the message with its body (%s)", ids, err, kept.Message.ID)
	}
	if m := get(t, s, purged.Message.ID); m.Status != store.StatusFailed {
		t.Errorf("purged message after a retry: %s, want failed", m.Status)
	}
	if _, err := s.MessageRetry(ctx, store.MessageRetryParams{ID: kept.Message.ID, Now: now}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("MessageRetry of a queued message: %v, want ErrConflict", err)
	}
}

func testMessagePurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := seedRetention(t, s)
	now := t0.Add(400 * 24 * time.Hour)
	purge := func(before time.Time, limit int) int {
		t.Helper()
		n, err := s.MessagePurge(ctx, store.PurgeParams{Before: before, Limit: limit, Now: now})
		if err != nil {
			t.Fatalf("MessagePurge: %v", err)
		}
		return n
	}
	// The body of one is purged already, the others' are not: both kinds go.
	if n, err := s.MessageBodyPurge(ctx, store.PurgeParams{Before: t0.Add(time.Hour), Limit: 1, Now: t0.Add(time.Hour)}); err != nil || n != 1 {
		t.Fatalf("MessageBodyPurge = %d, %v; want 1", n, err)
	}
	if n := purge(t0.Add(time.Hour), 0); n != 0 {
		t.Fatalf("MessagePurge with limit 0 = %d, want 0", n)
	}
	if n := purge(t0.Add(time.Hour), 2); n != 2 {
		t.Fatalf("MessagePurge(limit 2) = %d, want 2", n)
	}
	if n := purge(t0.Add(time.Hour), 10); n != 1 {
		t.Fatalf("MessagePurge = %d, want 1", n)
	}
	for _, m := range []store.NewMessage{f.sent, f.failed, f.cancelled} {
		id := m.Message.ID
		if _, err := s.MessageGet(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MessageGet of a purged message: %v, want ErrNotFound", err)
		}
		if _, err := s.MessageRaw(ctx, id); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrBodyPurged) {
			t.Errorf("MessageRaw of a purged message: %v, want ErrNotFound", err)
		}
		if _, err := s.MessageRecipients(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("MessageRecipients of a purged message: %v, want ErrNotFound", err)
		}
		if ev, err := s.MessageEvents(ctx, id); err != nil || len(ev) != 0 {
			t.Errorf("MessageEvents of a purged message = %v, %v; want none", ev, err)
		}
	}
	for _, m := range []store.NewMessage{f.deferred, f.queued, f.scheduled} {
		wantRaw(t, s, m)
	}
	if n := purge(t0.Add(3*time.Hour), 10); n != 1 {
		t.Fatalf("MessagePurge after the bounce = %d, want 1", n)
	}
	if n := purge(now, 10); n != 0 {
		t.Fatalf("MessagePurge of the unfinished = %d, want 0", n)
	}
	got, err := s.MessageList(ctx, store.MessageListParams{Limit: 100})
	if err != nil || len(got) != 3 {
		t.Fatalf("MessageList after the purges = %d messages, %v; want the 3 still to be sent", len(got), err)
	}
}

func testInboundPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	ann := sentMessage(t, s, store.StreamTransactional, t0, "ann@example.com")
	pol := store.ReportPolicy{SoftLimit: 5, SoftWindow: 1000 * time.Hour, SoftSuppressFor: time.Hour, UndeterminedLimit: 5}
	apply(t, s, t0, pol, bounce(ann, "ann@example.com", store.BounceSoft, "k1"))
	later := t0.Add(3 * time.Hour)
	bo := sentMessage(t, s, store.StreamTransactional, later, "bo@example.com")
	apply(t, s, later, pol, bounce(bo, "bo@example.com", store.BounceSoft, "k2"))

	if n, err := s.InboundPurge(ctx, store.PurgeParams{Before: t0, Limit: 10, Now: later}); err != nil || n != 0 {
		t.Fatalf("InboundPurge before anything = %d, %v; want 0", n, err)
	}
	// The entry, its key, its soft bounce and the counts of the hour t0 (one or more rows).
	n, err := s.InboundPurge(ctx, store.PurgeParams{Before: t0.Add(2 * time.Hour), Limit: 10, Now: later})
	if err != nil || n < 4 {
		t.Fatalf("InboundPurge = %d, %v; want at least 4", n, err)
	}
	if n, err := s.InboundPurge(ctx, store.PurgeParams{Before: t0.Add(2 * time.Hour), Limit: 10, Now: later}); err != nil || n != 0 {
		t.Fatalf("InboundPurge again = %d, %v; want 0", n, err)
	}
	if got := inboundEntries(t, s, store.InboundListParams{}); len(got) != 1 || !got[0].At.Equal(later) {
		t.Errorf("inbound entries after the purge = %+v; want the later one", got)
	}
	c, err := s.DeliveryCounts(ctx, store.StreamTransactional, t0.Add(-time.Hour))
	if err != nil || c != (store.DeliveryCounts{Delivered: 1, Bounced: 1}) {
		t.Errorf("DeliveryCounts after the purge = %+v, %v; want the later hour's alone", c, err)
	}
	// k1's key went: the same report applies again (its recipient is bounced already, so it
	// changes no state, but it is not a duplicate).
	out := apply(t, s, later, pol, bounce(ann, "ann@example.com", store.BounceSoft, "k1"))
	if !out[0].Applied {
		t.Errorf("report with a purged key = %+v; want applied (not a duplicate)", out[0])
	}
	out = apply(t, s, later, pol, bounce(bo, "bo@example.com", store.BounceSoft, "k2"))
	if out[0].Applied {
		t.Errorf("report with a kept key = %+v; want a duplicate", out[0])
	}
}

func testRetentionLock(t *testing.T, s store.Store) {
	ctx := t.Context()
	release, ok, err := s.RetentionLock(ctx)
	if err != nil || !ok {
		t.Fatalf("RetentionLock = %v, %v; want taken", ok, err)
	}
	if _, ok, err := s.RetentionLock(ctx); err != nil || ok {
		t.Fatalf("RetentionLock while held = %v, %v; want not taken", ok, err)
	}
	release()
	release2, ok, err := s.RetentionLock(ctx)
	if err != nil || !ok {
		t.Fatalf("RetentionLock after release = %v, %v; want taken", ok, err)
	}
	release2()
}
