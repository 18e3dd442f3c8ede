package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// notifyCases are the conformance cases of the notify area (store.Notify).
var notifyCases = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"NotifyAcceptIdempotent", testNotifyAcceptIdempotent},
	{"NotifyAcceptConcurrent", testNotifyAcceptConcurrent},
	{"NotifyAcceptContact", testNotifyAcceptContact},
	{"NotifyDigest", testNotifyDigest},
	{"NotifyCancel", testNotifyCancel},
	{"NotifyClaimOrder", testNotifyClaimOrder},
	{"NotifyFinish", testNotifyFinish},
	{"NotifyLostLease", testNotifyLostLease},
	{"NotifyCap", testNotifyCap},
	{"NotifyRelease", testNotifyRelease},
	{"NotifyPurge", testNotifyPurge},
	{"NotifyTriggers", testNotifyTriggers},
	{"NotifyEventList", testNotifyEventList},
	{"NotifyWebhooks", testNotifyWebhooks},
}

// notifyOf returns the store's notify area.
func notifyOf(s store.Store) store.Notify { return s }

// event is an event to accept, named name, occurred at at, with one action per trigger given
// (due at at), and mods applied.
func event(name string, at time.Time, mods ...func(*store.EventIn)) store.EventIn {
	in := store.EventIn{Event: store.AppEvent{ID: id.New(id.Event), Name: name, APIKeyID: "key_1",
		Data: json.RawMessage(`{"order":{"id":"A-1"}}`), OccurredAt: at, CreatedAt: at}}
	for _, m := range mods {
		m(&in)
	}
	return in
}

// withAction adds an action of trigger due at due.
func withAction(trigger string, due time.Time, mods ...func(*store.Action)) func(*store.EventIn) {
	return func(in *store.EventIn) {
		a := store.Action{ID: id.New(id.Action), TriggerID: trigger, DueAt: due}
		for _, m := range mods {
			m(&a)
		}
		in.Actions = append(in.Actions, a)
	}
}

func clientID(c string) func(*store.EventIn) {
	return func(in *store.EventIn) { in.Event.ClientID = c }
}

func acceptEvents(t *testing.T, s store.Store, now time.Time, events ...store.EventIn) []store.EventAccepted {
	t.Helper()
	res, err := notifyOf(s).EventsAccept(t.Context(), store.EventsAcceptParams{Events: events, Now: now})
	if err != nil {
		t.Fatalf("EventsAccept: %v", err)
	}
	if len(res) != len(events) {
		t.Fatalf("EventsAccept returned %d results for %d events", len(res), len(events))
	}
	return res
}

func claimActions(t *testing.T, s store.Store, owner string, now time.Time, limit int) []store.Action {
	t.Helper()
	got, err := notifyOf(s).ActionClaim(t.Context(), store.ActionClaimParams{Owner: owner, Limit: limit, Now: now,
		LeaseUntil: now.Add(time.Minute)})
	if err != nil {
		t.Fatalf("ActionClaim: %v", err)
	}
	return got
}

func actionIDs(actions []store.Action) []string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = a.ID
	}
	return out
}

func getEvent(t *testing.T, s store.Store, evtID string) store.AppEvent {
	t.Helper()
	e, err := notifyOf(s).EventGet(t.Context(), evtID)
	if err != nil {
		t.Fatalf("EventGet %s: %v", evtID, err)
	}
	return e
}

// actionOf returns the action actID of the event evtID.
func actionOf(t *testing.T, s store.Store, evtID, actID string) store.Action {
	t.Helper()
	for _, a := range getEvent(t, s, evtID).Actions {
		if a.ID == actID {
			return a
		}
	}
	t.Fatalf("event %s has no action %s", evtID, actID)
	return store.Action{}
}

func finishActions(t *testing.T, s store.Store, now time.Time, p ...store.ActionFinishParams) []store.ActionFinishResult {
	t.Helper()
	res, err := notifyOf(s).ActionFinish(t.Context(), now, p)
	if err != nil {
		t.Fatalf("ActionFinish: %v", err)
	}
	if len(res) != len(p) {
		t.Fatalf("ActionFinish returned %d results for %d", len(res), len(p))
	}
	return res
}

// actionMessage is a message of the action a.
func actionMessage(a store.Action, now time.Time) store.NewMessage {
	return Message(now, func(m *store.Message) { m.EventID, m.TriggerID = a.EventID, a.TriggerID })
}

func testNotifyAcceptIdempotent(t *testing.T, s store.Store) {
	first := event("order.paid", t0, clientID("c-1"), withAction("trg_a", t0))
	res := acceptEvents(t, s, t0, first)
	if r := res[0]; r.Err != nil || r.Duplicate || r.ID != first.Event.ID || len(r.Actions) != 1 ||
		r.Actions[0] != first.Actions[0].ID {
		t.Fatalf("first accept = %+v", r)
	}

	// The same client id again, under another event id: the stored event is returned and
	// nothing is stored; in one group, a repeat of an earlier event of the group too.
	again := event("order.paid", t0.Add(time.Second), clientID("c-1"), withAction("trg_a", t0))
	fresh := event("order.paid", t0.Add(time.Second), clientID("c-2"), withAction("trg_a", t0))
	freshAgain := event("order.paid", t0.Add(time.Second), clientID("c-2"), withAction("trg_a", t0))
	otherKey := event("order.paid", t0, clientID("c-1"), func(in *store.EventIn) { in.Event.APIKeyID = "key_2" })
	noClient := event("order.paid", t0)
	res = acceptEvents(t, s, t0.Add(time.Second), again, fresh, freshAgain, otherKey, noClient)
	if r := res[0]; r.Err != nil || !r.Duplicate || r.ID != first.Event.ID || !slices.Equal(r.Actions, []string{first.Actions[0].ID}) {
		t.Errorf("repeat = %+v, want the first event %s with its action", r, first.Event.ID)
	}
	if r := res[1]; r.Duplicate || r.ID != fresh.Event.ID {
		t.Errorf("new client id = %+v", r)
	}
	if r := res[2]; !r.Duplicate || r.ID != fresh.Event.ID || !slices.Equal(r.Actions, res[1].Actions) {
		t.Errorf("repeat within the group = %+v, want %+v as a duplicate", r, res[1])
	}
	if r := res[3]; r.Duplicate || r.ID != otherKey.Event.ID {
		t.Errorf("same client id under another API key = %+v, want a new event", r)
	}
	if r := res[4]; r.Duplicate || r.ID != noClient.Event.ID {
		t.Errorf("no client id = %+v", r)
	}
	for _, gone := range []string{again.Event.ID, freshAgain.Event.ID} {
		if _, err := notifyOf(s).EventGet(t.Context(), gone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EventGet of a duplicate = %v, want ErrNotFound", err)
		}
	}
	got := getEvent(t, s, first.Event.ID)
	if got.Name != "order.paid" || got.ClientID != "c-1" || got.APIKeyID != "key_1" || !got.OccurredAt.Equal(t0) ||
		string(got.Data) != `{"order":{"id":"A-1"}}` || len(got.Actions) != 1 {
		t.Errorf("EventGet = %+v", got)
	}
	if a := got.Actions[0]; a.ID != first.Actions[0].ID || a.TriggerID != "trg_a" || a.EventID != first.Event.ID ||
		a.Status != store.ActionPending || !a.DueAt.Equal(t0) || !slices.Equal(a.EventIDs, []string{first.Event.ID}) {
		t.Errorf("the event's action = %+v", a)
	}
	if _, err := notifyOf(s).EventGet(t.Context(), "evt_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EventGet of an unknown id = %v, want ErrNotFound", err)
	}
	byID, err := notifyOf(s).EventsByID(t.Context(), []string{noClient.Event.ID, "evt_nope", first.Event.ID})
	if err != nil || len(byID) != 2 || byID[0].ID != noClient.Event.ID || byID[1].ID != first.Event.ID {
		t.Errorf("EventsByID = %v, %v", byID, err)
	}
}

func testNotifyAcceptConcurrent(t *testing.T, s store.Store) {
	// Concurrent accepts of one client id store it once.
	const n = 8
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ids = map[string]int{}
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := notifyOf(s).EventsAccept(t.Context(), store.EventsAcceptParams{Now: t0,
				Events: []store.EventIn{event("order.paid", t0, clientID("same"), withAction("trg_a", t0))}})
			if err != nil {
				t.Errorf("EventsAccept: %v", err)
				return
			}
			mu.Lock()
			ids[res[0].ID]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 {
		t.Fatalf("concurrent accepts of one client id stored %d events: %v", len(ids), ids)
	}
	if got := claimActions(t, s, "w", t0, 100); len(got) != 1 {
		t.Errorf("%d actions stored, want 1", len(got))
	}
}

func testNotifyAcceptContact(t *testing.T, s store.Store) {
	ctx := t.Context()
	withContact := func(email, ext string) func(*store.EventIn) {
		return func(in *store.EventIn) {
			in.Contact = &store.ContactUpsert{Email: email, EmailKey: key(email), ExternalID: ext}
		}
	}
	// A new contact is created with the event's time as its last activity.
	e1 := event("user.signed_in", t0, withContact("Ann@Example.com", "u-1"), withAction("trg_a", t0))
	r := acceptEvents(t, s, t0, e1)[0]
	if r.Err != nil || r.ContactID == "" {
		t.Fatalf("accept with a contact = %+v", r)
	}
	c, err := s.ContactGet(ctx, store.ContactRef{ID: r.ContactID})
	if err != nil || c.Email != "Ann@Example.com" || c.ExternalID != "u-1" || !c.LastActiveAt.Equal(t0) {
		t.Fatalf("ContactGet = %+v, %v", c, err)
	}
	got := getEvent(t, s, e1.Event.ID)
	if got.ContactID != r.ContactID || got.Email != "Ann@Example.com" {
		t.Errorf("event contact = %q %q", got.ContactID, got.Email)
	}
	if a := got.Actions[0]; a.ContactID != r.ContactID || a.Email != "Ann@Example.com" {
		t.Errorf("action contact = %q %q", a.ContactID, a.Email)
	}

	// An event that occurred earlier, accepted later, never moves last_active_at backwards; a
	// later one moves it forward. By external id alone, the contact that has it is the one.
	late := event("user.signed_in", t0.Add(-time.Hour), withContact("ann@example.com", ""))
	byExt := event("user.signed_in", t0.Add(time.Hour), func(in *store.EventIn) {
		in.Contact = &store.ContactUpsert{ExternalID: "u-1", Name: strp("Ann")}
	})
	unknownExt := event("user.signed_in", t0, func(in *store.EventIn) {
		in.Contact = &store.ContactUpsert{ExternalID: "u-404"}
	})
	upsertOK(t, s, t0, item("bob@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-2" }))
	conflict := event("user.signed_in", t0, withContact("bob@example.com", "u-1"))
	res := acceptEvents(t, s, t0.Add(2*time.Hour), late, byExt, unknownExt, conflict)
	if res[0].Err != nil || res[0].ContactID != r.ContactID {
		t.Errorf("late event = %+v", res[0])
	}
	if res[1].Err != nil || res[1].ContactID != r.ContactID {
		t.Errorf("event by external id = %+v", res[1])
	}
	if !errors.Is(res[2].Err, store.ErrNotFound) {
		t.Errorf("event naming an unknown external id = %+v, want ErrNotFound", res[2])
	}
	if !errors.Is(res[3].Err, store.ErrConflict) {
		t.Errorf("event whose email and external id name two contacts = %+v, want ErrConflict", res[3])
	}
	for _, gone := range []string{unknownExt.Event.ID, conflict.Event.ID} {
		if _, err := notifyOf(s).EventGet(ctx, gone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed event was stored: EventGet = %v", err)
		}
	}
	c, err = s.ContactGet(ctx, store.ContactRef{ID: r.ContactID})
	if err != nil || !c.LastActiveAt.Equal(t0.Add(time.Hour)) || c.Name != "Ann" || c.Email != "ann@example.com" {
		t.Errorf("contact after the events = %+v, %v; want last active at %v, name Ann", c, err, t0.Add(time.Hour))
	}
	late2 := event("user.signed_in", t0.Add(-2*time.Hour), withContact("ann@example.com", ""))
	acceptEvents(t, s, t0.Add(3*time.Hour), late2)
	if c, _ := s.ContactGet(ctx, store.ContactRef{ID: r.ContactID}); !c.LastActiveAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("a late event moved last_active_at to %v", c.LastActiveAt)
	}

	// Erasing the contact erases its events.
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: r.ContactID}, Erase: true,
		ErasedKey: "erased-key", Now: t0.Add(4 * time.Hour)}); err != nil {
		t.Fatalf("ContactDelete: %v", err)
	}
	for _, gone := range []string{e1.Event.ID, late.Event.ID, byExt.Event.ID, late2.Event.ID} {
		if _, err := notifyOf(s).EventGet(ctx, gone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an erased contact's event is kept: EventGet = %v", err)
		}
	}
}

func testNotifyDigest(t *testing.T, s store.Store) {
	digest := func(k string) func(*store.Action) { return func(a *store.Action) { a.DigestKey = k } }
	due := t0.Add(time.Hour)
	e1 := event("order.placed", t0, withAction("trg_d", due, digest("seller-1")))
	e2 := event("order.placed", t0.Add(time.Minute), withAction("trg_d", t0.Add(61*time.Minute), digest("seller-1")))
	other := event("order.placed", t0.Add(time.Minute), withAction("trg_d", due, digest("seller-2")))
	res := acceptEvents(t, s, t0, e1)
	res = append(res, acceptEvents(t, s, t0.Add(time.Minute), e2, other)...)
	digestID := e1.Actions[0].ID
	if res[0].Actions[0] != digestID || res[1].Actions[0] != digestID {
		t.Fatalf("the second event of a key did not join the first's action: %v, %v", res[0].Actions, res[1].Actions)
	}
	if res[2].Actions[0] == digestID {
		t.Fatal("another key joined the digest")
	}
	// The joined event lists the action too.
	if a := actionOf(t, s, e2.Event.ID, digestID); !slices.Equal(a.EventIDs, []string{e1.Event.ID, e2.Event.ID}) {
		t.Errorf("EventIDs seen from the joined event = %v", a.EventIDs)
	}
	// The window counts from the first event: the action's due time stays.
	if got := claimActions(t, s, "w", due.Add(-time.Second), 10); len(got) != 0 {
		t.Fatalf("claimed %v before the window ended", actionIDs(got))
	}
	got := claimActions(t, s, "w", due, 10)
	if len(got) != 2 {
		t.Fatalf("claimed %v, want both digests", actionIDs(got))
	}
	for _, a := range got {
		want := []string{other.Event.ID}
		if a.ID == digestID {
			want = []string{e1.Event.ID, e2.Event.ID}
		}
		if !slices.Equal(a.EventIDs, want) {
			t.Errorf("claimed action %s carries %v, want %v", a.ID, a.EventIDs, want)
		}
	}
	// Once claimed, a new event of the key starts a new action.
	e3 := event("order.placed", due, withAction("trg_d", due.Add(time.Hour), digest("seller-1")))
	if r := acceptEvents(t, s, due, e3)[0]; r.Actions[0] != e3.Actions[0].ID {
		t.Errorf("an event joined a claimed digest: %v", r.Actions)
	}
}

func testNotifyCancel(t *testing.T, s store.Store) {
	ctx := t.Context()
	due := t0.Add(time.Hour)
	cancelKey := func(k string) func(*store.Action) { return func(a *store.Action) { a.CancelKey = k } }
	cancels := func(keys ...string) func(*store.EventIn) {
		return func(in *store.EventIn) { in.Cancels = keys }
	}
	cancelled := event("cart.abandoned", t0, withAction("trg_c", due, cancelKey("trg_c|order.paid|cart-1")))
	tooLate := event("cart.abandoned", t0, withAction("trg_c", due, cancelKey("trg_c|order.paid|cart-2")))
	tooEarly := event("cart.abandoned", t0, withAction("trg_c", due, cancelKey("trg_c|order.paid|cart-3")))
	plain := event("cart.abandoned", t0, withAction("trg_c", due))
	acceptEvents(t, s, t0, cancelled, tooLate, tooEarly, plain)
	acceptEvents(t, s, due.Add(time.Minute),
		// Within the delay: cancels.
		event("order.paid", t0.Add(10*time.Minute), cancels("trg_c|order.paid|cart-1")),
		// After the due time (accepted late): no effect.
		event("order.paid", due.Add(time.Second), cancels("trg_c|order.paid|cart-2")),
		// Before the action's event: no effect.
		event("order.paid", t0.Add(-time.Minute), cancels("trg_c|order.paid|cart-3")))

	got := claimActions(t, s, "w", due.Add(time.Minute), 10)
	want := []string{tooLate.Actions[0].ID, tooEarly.Actions[0].ID, plain.Actions[0].ID}
	slices.Sort(want)
	ids := actionIDs(got)
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Fatalf("claimed %v, want %v (all but the cancelled)", ids, want)
	}
	a := actionOf(t, s, cancelled.Event.ID, cancelled.Actions[0].ID)
	if a.Status != store.ActionCancelled || a.Reason == "" || a.LeaseOwner != "" {
		t.Errorf("cancelled action = %+v", a)
	}
	// A cancelled action is never claimed again.
	if got := claimActions(t, s, "w2", due.Add(time.Hour), 10); slices.Contains(actionIDs(got), cancelled.Actions[0].ID) {
		t.Error("a cancelled action was claimed")
	}

	// A limit that cuts the due actions still never hands out one a cancel names.
	var batch []store.EventIn
	for i := range 5 {
		batch = append(batch, event("cart.abandoned", t0, withAction("trg_c", due.Add(time.Duration(i)*time.Second),
			cancelKey(fmt.Sprintf("k-%d", i%2)))))
	}
	acceptEvents(t, s, t0, batch...)
	acceptEvents(t, s, t0, event("order.paid", t0.Add(time.Minute), cancels("k-1")))
	var claimed []store.Action
	for {
		got := claimActions(t, s, "w3", due.Add(30*time.Second), 1)
		if len(got) == 0 {
			break
		}
		if a := got[0]; a.CancelKey == "k-0" || a.CancelKey == "k-1" {
			claimed = append(claimed, a)
		}
	}
	for _, a := range claimed {
		if a.CancelKey == "k-1" {
			t.Errorf("claimed %s, which a recorded cancel names", a.ID)
		}
	}
	if len(claimed) != 3 {
		t.Errorf("claimed %d actions one by one, want the 3 not cancelled", len(claimed))
	}
	if _, err := notifyOf(s).ActionClaim(ctx, store.ActionClaimParams{Limit: 1, Now: t0}); err == nil {
		t.Error("ActionClaim without an owner succeeded")
	}
}

func testNotifyClaimOrder(t *testing.T, s store.Store) {
	var events []store.EventIn
	for _, d := range []time.Duration{3, 1, 2, 10} {
		events = append(events, event("order.paid", t0, withAction("trg_a", t0.Add(d*time.Minute))))
	}
	acceptEvents(t, s, t0, events...)
	now := t0.Add(5 * time.Minute)
	got := claimActions(t, s, "w1", now, 2)
	if ids := actionIDs(got); !slices.Equal(ids, []string{events[1].Actions[0].ID, events[2].Actions[0].ID}) {
		t.Fatalf("first claim = %v, want the two due first in due order", ids)
	}
	for _, a := range got {
		if a.LeaseOwner != "w1" || !a.LeaseUntil.Equal(now.Add(time.Minute)) || a.Status != store.ActionPending {
			t.Errorf("claimed action = %+v", a)
		}
	}
	got = claimActions(t, s, "w2", now, 10)
	if ids := actionIDs(got); !slices.Equal(ids, []string{events[0].Actions[0].ID}) {
		t.Fatalf("second claim = %v, want the last due one (not leased ones, not future ones)", ids)
	}
	// A lease that ended is taken over.
	got = claimActions(t, s, "w3", now.Add(2*time.Minute), 10)
	if len(got) != 3 || got[0].LeaseOwner != "w3" {
		t.Errorf("claim after the leases ended = %v", actionIDs(got))
	}
	if next, ok, err := notifyOf(s).ActionNextDue(t.Context()); err != nil || !ok || !next.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("ActionNextDue = %v, %v, %v; want the unleased one's due time", next, ok, err)
	}
}

func testNotifyFinish(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := event("order.paid", t0, withAction("trg_a", t0), withAction("trg_b", t0), withAction("trg_c", t0))
	acceptEvents(t, s, t0, e)
	got := claimActions(t, s, "w", t0, 10)
	if len(got) != 3 {
		t.Fatalf("claimed %d", len(got))
	}
	byTrigger := map[string]store.Action{}
	for _, a := range got {
		byTrigger[a.TriggerID] = a
	}
	m1, m2 := actionMessage(byTrigger["trg_a"], t0), actionMessage(byTrigger["trg_a"], t0)
	res := finishActions(t, s, t0.Add(time.Second),
		store.ActionFinishParams{ID: byTrigger["trg_a"].ID, Owner: "w", Status: store.ActionDone,
			Messages: []store.NewMessage{m1, m2}},
		store.ActionFinishParams{ID: byTrigger["trg_b"].ID, Owner: "w", Status: store.ActionSkipped, Reason: "unsubscribed"},
		store.ActionFinishParams{ID: byTrigger["trg_c"].ID, Owner: "w", Status: store.ActionFailed, Reason: "no template"})
	for i, want := range []string{store.ActionDone, store.ActionSkipped, store.ActionFailed} {
		if !res[i].Applied || res[i].Status != want {
			t.Errorf("finish %d = %+v, want applied %s", i, res[i], want)
		}
	}
	for _, m := range []store.NewMessage{m1, m2} {
		stored := get(t, s, m.Message.ID)
		if stored.EventID != e.Event.ID || stored.TriggerID != "trg_a" || stored.Status != store.StatusQueued {
			t.Errorf("stored message: event %q trigger %q status %s", stored.EventID, stored.TriggerID, stored.Status)
		}
	}
	list, err := s.MessageList(ctx, store.MessageListParams{})
	if err != nil || len(list) != 2 || list[0].EventID != e.Event.ID || list[0].TriggerID != "trg_a" {
		t.Errorf("MessageList = %d messages, %v", len(list), err)
	}
	ev := getEvent(t, s, e.Event.ID)
	for _, a := range ev.Actions {
		switch a.TriggerID {
		case "trg_a":
			want := []string{m1.Message.ID, m2.Message.ID}
			if a.Status != store.ActionDone || !slices.Equal(a.MessageIDs, want) || a.LeaseOwner != "" {
				t.Errorf("done action = %+v, want messages %v", a, want)
			}
		case "trg_b":
			if a.Status != store.ActionSkipped || a.Reason != "unsubscribed" || len(a.MessageIDs) != 0 {
				t.Errorf("skipped action = %+v", a)
			}
		case "trg_c":
			if a.Status != store.ActionFailed || a.Reason != "no template" {
				t.Errorf("failed action = %+v", a)
			}
		}
	}
	// Finishing again applies nothing: the action is no longer pending.
	m3 := actionMessage(byTrigger["trg_a"], t0)
	res = finishActions(t, s, t0.Add(2*time.Second), store.ActionFinishParams{ID: byTrigger["trg_a"].ID, Owner: "w",
		Status: store.ActionDone, Messages: []store.NewMessage{m3}})
	if res[0].Applied {
		t.Error("a second finish applied")
	}
	if _, err := s.MessageGet(ctx, m3.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the second finish stored its message: %v", err)
	}
	if _, err := notifyOf(s).ActionFinish(ctx, t0, []store.ActionFinishParams{{ID: byTrigger["trg_a"].ID, Owner: "w",
		Status: store.ActionPending}}); err == nil {
		t.Error("finishing as pending succeeded")
	}
	// A message not from an action keeps no event.
	plain := Message(t0)
	accept(t, s, t0, plain)
	if m := get(t, s, plain.Message.ID); m.EventID != "" || m.TriggerID != "" {
		t.Errorf("plain message has event %q trigger %q", m.EventID, m.TriggerID)
	}
}

func testNotifyLostLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := event("order.paid", t0, withAction("trg_a", t0))
	acceptEvents(t, s, t0, e)
	a := claimActions(t, s, "old", t0, 1)[0]
	// The lease ends and another worker takes the action over.
	b := claimActions(t, s, "new", t0.Add(2*time.Minute), 1)
	if len(b) != 1 || b[0].ID != a.ID {
		t.Fatalf("takeover claim = %v", actionIDs(b))
	}
	lost := actionMessage(a, t0)
	res := finishActions(t, s, t0.Add(2*time.Minute), store.ActionFinishParams{ID: a.ID, Owner: "old", Status: store.ActionDone,
		Messages: []store.NewMessage{lost}, CapKey: "ann", CapPeriod: time.Hour})
	if res[0].Applied {
		t.Fatal("a finish by the lost lease's owner applied")
	}
	if _, err := s.MessageGet(ctx, lost.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the lost lease's message was stored: %v", err)
	}
	kept := actionMessage(a, t0)
	res = finishActions(t, s, t0.Add(2*time.Minute), store.ActionFinishParams{ID: a.ID, Owner: "new", Status: store.ActionDone,
		Messages: []store.NewMessage{kept}, CapKey: "ann", CapPeriod: time.Hour})
	if !res[0].Applied || res[0].Status != store.ActionDone {
		t.Errorf("the new owner's finish = %+v (the lost one must not have recorded the cap)", res[0])
	}
	get(t, s, kept.Message.ID)
	// An unknown action is not applied either.
	if res := finishActions(t, s, t0, store.ActionFinishParams{ID: "act_nope", Owner: "new", Status: store.ActionSkipped}); res[0].Applied {
		t.Error("finishing an unknown action applied")
	}
}

func testNotifyCap(t *testing.T, s store.Store) {
	ctx := t.Context()
	var events []store.EventIn
	for i := range 4 {
		events = append(events, event("user.signed_in", t0, withAction("trg_cap", t0.Add(time.Duration(i)*time.Second))))
	}
	events = append(events, event("user.signed_in", t0, withAction("trg_other", t0.Add(5*time.Second))))
	acceptEvents(t, s, t0, events...)
	got := claimActions(t, s, "w", t0.Add(time.Minute), 10)
	if len(got) != 5 {
		t.Fatalf("claimed %d", len(got))
	}
	finish := func(now time.Time, a store.Action) (store.ActionFinishResult, store.NewMessage) {
		m := actionMessage(a, now)
		return finishActions(t, s, now, store.ActionFinishParams{ID: a.ID, Owner: "w", Status: store.ActionDone,
			Messages: []store.NewMessage{m}, CapKey: "ann", CapPeriod: time.Hour})[0], m
	}
	now := t0.Add(time.Minute)
	if r, _ := finish(now, got[0]); !r.Applied || r.Status != store.ActionDone {
		t.Fatalf("first send = %+v", r)
	}
	r, m := finish(now.Add(30*time.Minute), got[1])
	if !r.Applied || r.Status != store.ActionCapped {
		t.Errorf("send within the cap = %+v, want capped", r)
	}
	if _, err := s.MessageGet(ctx, m.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a capped action stored its message: %v", err)
	}
	if a := actionOf(t, s, got[1].EventID, got[1].ID); a.Status != store.ActionCapped || a.Reason == "" {
		t.Errorf("capped action = %+v", a)
	}
	// Another trigger has its own cap.
	if r, _ := finish(now.Add(30*time.Minute), got[4]); r.Status != store.ActionDone {
		t.Errorf("another trigger's send = %+v", r)
	}
	// After the period, a send goes again; two in one group: the second is capped by the first.
	later := now.Add(time.Hour)
	m2, m3 := actionMessage(got[2], later), actionMessage(got[3], later)
	res := finishActions(t, s, later,
		store.ActionFinishParams{ID: got[2].ID, Owner: "w", Status: store.ActionDone, Messages: []store.NewMessage{m2},
			CapKey: "ann", CapPeriod: time.Hour},
		store.ActionFinishParams{ID: got[3].ID, Owner: "w", Status: store.ActionDone, Messages: []store.NewMessage{m3},
			CapKey: "ann", CapPeriod: time.Hour})
	if res[0].Status != store.ActionDone || res[1].Status != store.ActionCapped {
		t.Errorf("finishes after the period = %+v", res)
	}
	get(t, s, m2.Message.ID)
	if _, err := s.MessageGet(ctx, m3.Message.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the capped message of the group was stored: %v", err)
	}
}

func testNotifyRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := notifyOf(s)
	wake := n.ActionWakeups()
	if wake == nil || n.ActionWakeups() != wake {
		t.Fatal("ActionWakeups must return the same non-nil channel on every call")
	}
	if _, ok, err := n.ActionNextDue(ctx); ok || err != nil {
		t.Errorf("ActionNextDue on an empty store = %v, %v", ok, err)
	}
	acceptEvents(t, s, t0, event("order.paid", t0, withAction("trg_a", t0)),
		event("order.paid", t0, withAction("trg_a", t0.Add(time.Second))),
		event("order.paid", t0, withAction("trg_a", t0.Add(time.Hour))))
	select {
	case <-wake:
	case <-time.After(10 * time.Second): // a failure guard, not a wait for time to pass
		t.Fatal("no action wake-up after EventsAccept")
	}
	now := t0.Add(time.Minute)
	claimActions(t, s, "node-1/w", now, 1)
	claimActions(t, s, "node-2/w", now, 1)
	if next, ok, err := n.ActionNextDue(ctx); err != nil || !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("ActionNextDue with two leased = %v, %v, %v", next, ok, err)
	}
	if got := claimActions(t, s, "node-3/w", now, 10); len(got) != 0 {
		t.Fatalf("claimed leased actions: %v", actionIDs(got))
	}
	released, err := n.ActionReleaseLeases(ctx, "node-1/", now)
	if err != nil || released != 1 {
		t.Fatalf("ActionReleaseLeases(node-1/) = %d, %v", released, err)
	}
	if next, ok, _ := n.ActionNextDue(ctx); !ok || !next.Equal(t0) {
		t.Errorf("ActionNextDue after the release = %v, want %v", next, t0)
	}
	got := claimActions(t, s, "node-3/w", now, 10)
	if len(got) != 1 {
		t.Fatalf("claim after the release = %v", actionIDs(got))
	}
	if released, err := n.ActionReleaseLeases(ctx, "", now); err != nil || released != 2 {
		t.Errorf("ActionReleaseLeases(\"\") = %d, %v", released, err)
	}
	if got := claimActions(t, s, "node-4/w", now, 10); len(got) != 2 {
		t.Errorf("claim after releasing every lease = %v", actionIDs(got))
	}
}

func testNotifyPurge(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := notifyOf(s)
	old := event("order.paid", t0.Add(-48*time.Hour), withAction("trg_a", t0.Add(-48*time.Hour)))
	oldPending := event("order.paid", t0.Add(-48*time.Hour), withAction("trg_a", t0.Add(time.Hour)))
	oldNoAction := event("order.paid", t0.Add(-47*time.Hour))
	oldCancel := event("order.paid", t0.Add(-47*time.Hour), func(in *store.EventIn) { in.Cancels = []string{"k"} })
	recent := event("order.paid", t0)
	// A cancel recorded for an action still pending (a long delay) outlives the retention: the
	// action's claim must still see it.
	waiting := event("cart.abandoned", t0.Add(-49*time.Hour), withAction("trg_w", t0.Add(48*time.Hour),
		func(a *store.Action) { a.CancelKey = "w" }))
	oldCancelWaited := event("order.paid", t0.Add(-47*time.Hour), func(in *store.EventIn) { in.Cancels = []string{"w"} })
	acceptEvents(t, s, t0, waiting)
	acceptEvents(t, s, t0, oldCancelWaited)
	acceptEvents(t, s, t0, old, oldPending, oldNoAction, oldCancel, recent)
	a := claimActions(t, s, "w", t0, 10)
	if len(a) != 1 {
		t.Fatalf("claimed %d", len(a))
	}
	finishActions(t, s, t0, store.ActionFinishParams{ID: a[0].ID, Owner: "w", Status: store.ActionSkipped})

	if got, err := n.EventPurge(ctx, t0.Add(-24*time.Hour), 2); err != nil || got != 2 {
		t.Fatalf("EventPurge limit 2 = %d, %v", got, err)
	}
	if got, err := n.EventPurge(ctx, t0.Add(-24*time.Hour), 100); err != nil || got != 1 {
		t.Fatalf("EventPurge = %d, %v; want the last old one with no pending action", got, err)
	}
	for _, gone := range []string{old.Event.ID, oldNoAction.Event.ID, oldCancel.Event.ID} {
		if _, err := n.EventGet(ctx, gone); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("purged event %s: %v", gone, err)
		}
	}
	for _, kept := range []string{oldPending.Event.ID, recent.Event.ID, waiting.Event.ID, oldCancelWaited.Event.ID} {
		getEvent(t, s, kept)
	}
	// The purged event's client id may be used again.
	again := event("order.paid", t0, clientID("reuse"))
	acceptEvents(t, s, t0, again)
	if got, _ := n.EventPurge(ctx, t0.Add(time.Second), 100); got != 2 {
		t.Errorf("EventPurge of the rest = %d, want 2 (not the one with a pending action)", got)
	}
	if r := acceptEvents(t, s, t0, event("order.paid", t0, clientID("reuse")))[0]; r.Duplicate {
		t.Error("a purged event's client id is still taken")
	}
	if got := actionIDs(claimActions(t, s, "w", t0.Add(48*time.Hour), 10)); slices.Contains(got, waiting.Actions[0].ID) {
		t.Errorf("claimed %v: the waiting action's cancel was purged", got)
	}
}

func testNotifyTriggers(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := notifyOf(s)
	full := store.Trigger{ID: "trg_1", Name: "Abandoned cart", Event: "cart.abandoned",
		Condition: json.RawMessage(`{"data":"cart.total","gt":10}`), Template: "cart-reminder",
		To: store.TriggerTo{Contact: true}, Stream: store.StreamBroadcast, Delay: time.Hour,
		CancelIf: &store.TriggerCancel{Event: "order.paid", Match: []string{"cart_id"}},
		Digest:   &store.TriggerDigest{Key: "seller.id", Window: 30 * time.Minute},
		Cap:      24 * time.Hour, HonourUnsubscribes: true, From: "Shop <shop@example.com>", Tags: []string{"cart"},
		Enabled: true, CreatedAt: t0, UpdatedAt: t0}
	minimal := store.Trigger{ID: "trg_2", Event: "order.paid", Template: "receipt",
		To: store.TriggerTo{Addresses: []string{"ops@example.com"}}, Stream: store.StreamTransactional,
		CreatedAt: t0, UpdatedAt: t0}
	third := store.Trigger{ID: "trg_3", Event: "order.paid", Template: "seller", To: store.TriggerTo{Data: "seller.email"},
		Stream: store.StreamTransactional, Enabled: true, CreatedAt: t0, UpdatedAt: t0}
	for _, tr := range []store.Trigger{full, minimal, third} {
		if err := n.TriggerCreate(ctx, tr); err != nil {
			t.Fatalf("TriggerCreate %s: %v", tr.ID, err)
		}
	}
	if err := n.TriggerCreate(ctx, full); err == nil {
		t.Error("creating a trigger twice succeeded")
	}
	for _, want := range []store.Trigger{full, minimal} {
		got, err := n.TriggerGet(ctx, want.ID)
		if err != nil {
			t.Fatalf("TriggerGet: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("TriggerGet %s (-want +got):\n%s", want.ID, diff)
		}
	}
	if _, err := n.TriggerGet(ctx, "trg_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TriggerGet unknown = %v", err)
	}
	page, next, err := n.TriggerList(ctx, store.TriggerListParams{Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != "trg_1" || next == "" {
		t.Fatalf("TriggerList page 1 = %d, %q, %v", len(page), next, err)
	}
	page, next, err = n.TriggerList(ctx, store.TriggerListParams{Limit: 2, Cursor: next})
	if err != nil || len(page) != 1 || page[0].ID != "trg_3" || next != "" {
		t.Fatalf("TriggerList page 2 = %d, %q, %v", len(page), next, err)
	}
	page, _, err = n.TriggerList(ctx, store.TriggerListParams{Event: "order.paid"})
	if err != nil || len(page) != 2 {
		t.Errorf("TriggerList by event = %d, %v", len(page), err)
	}
	if _, _, err := n.TriggerList(ctx, store.TriggerListParams{Cursor: "nonsense"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("TriggerList with a bad cursor = %v", err)
	}
	enabled, err := n.TriggersEnabled(ctx)
	if err != nil || len(enabled) != 2 || enabled[0].ID != "trg_1" || enabled[1].ID != "trg_3" {
		t.Errorf("TriggersEnabled = %v, %v", enabled, err)
	}

	minimal.Enabled, minimal.Name, minimal.UpdatedAt = true, "Receipts", t0.Add(time.Hour)
	if err := n.TriggerUpdate(ctx, minimal); err != nil {
		t.Fatalf("TriggerUpdate: %v", err)
	}
	if got, _ := n.TriggerGet(ctx, minimal.ID); cmp.Diff(minimal, got) != "" {
		t.Errorf("after TriggerUpdate: %s", cmp.Diff(minimal, got))
	}
	if err := n.TriggerUpdate(ctx, store.Trigger{ID: "trg_nope", Event: "x", Template: "y"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TriggerUpdate unknown = %v", err)
	}

	// Deleting a trigger cancels its pending actions, not its finished ones nor others'.
	e := event("cart.abandoned", t0, withAction("trg_1", t0.Add(time.Hour)), withAction("trg_3", t0.Add(time.Hour)))
	acceptEvents(t, s, t0, e)
	if err := n.TriggerDelete(ctx, "trg_1", t0.Add(time.Minute)); err != nil {
		t.Fatalf("TriggerDelete: %v", err)
	}
	if err := n.TriggerDelete(ctx, "trg_1", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TriggerDelete again = %v", err)
	}
	if _, err := n.TriggerGet(ctx, "trg_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TriggerGet after delete = %v", err)
	}
	for _, a := range getEvent(t, s, e.Event.ID).Actions {
		want := store.ActionPending
		if a.TriggerID == "trg_1" {
			want = store.ActionCancelled
		}
		if a.Status != want {
			t.Errorf("action of %s is %s, want %s", a.TriggerID, a.Status, want)
		}
	}
}

func testNotifyEventList(t *testing.T, s store.Store) {
	ctx := t.Context()
	n := notifyOf(s)
	res := upsertOK(t, s, t0, item("ann@example.com"))
	var ids []string
	for i := range 5 {
		name := "order.paid"
		if i%2 == 1 {
			name = "user.signed_in"
		}
		e := event(name, t0.Add(time.Duration(i)*time.Minute), withAction("trg_a", t0.Add(time.Hour)))
		if i == 4 {
			e.Contact = &store.ContactUpsert{Email: "ann@example.com", EmailKey: "ann@example.com"}
		}
		acceptEvents(t, s, t0, e)
		ids = append(ids, e.Event.ID)
	}
	list := func(p store.EventListParams) ([]string, string) {
		t.Helper()
		page, next, err := n.EventList(ctx, p)
		if err != nil {
			t.Fatalf("EventList(%+v): %v", p, err)
		}
		out := make([]string, len(page))
		for i, e := range page {
			out[i] = e.ID
			if len(e.Actions) != 1 {
				t.Errorf("listed event %s has %d actions", e.ID, len(e.Actions))
			}
		}
		return out, next
	}
	page, next := list(store.EventListParams{Limit: 3})
	if !slices.Equal(page, []string{ids[4], ids[3], ids[2]}) || next == "" {
		t.Fatalf("page 1 = %v, %q; want newest first", page, next)
	}
	page, next = list(store.EventListParams{Limit: 3, Cursor: next})
	if !slices.Equal(page, []string{ids[1], ids[0]}) || next != "" {
		t.Errorf("page 2 = %v, %q", page, next)
	}
	if page, _ = list(store.EventListParams{Name: "user.signed_in"}); !slices.Equal(page, []string{ids[3], ids[1]}) {
		t.Errorf("by name = %v", page)
	}
	if page, _ = list(store.EventListParams{ContactID: res[0].ID}); !slices.Equal(page, []string{ids[4]}) {
		t.Errorf("by contact = %v", page)
	}
	if page, _ = list(store.EventListParams{After: t0.Add(time.Minute), Before: t0.Add(3 * time.Minute)}); !slices.Equal(page, []string{ids[2], ids[1]}) {
		t.Errorf("by time = %v", page)
	}
	if _, _, err := n.EventList(ctx, store.EventListParams{Cursor: "trg_1"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("EventList with a bad cursor = %v", err)
	}
}

func testNotifyWebhooks(t *testing.T, s store.Store) {
	hook := endpoint(t, s, store.WebhookEventTriggered)
	other := endpoint(t, s, store.WebhookMessageSent)
	e := event("order.paid", t0, withAction("trg_a", t0), withAction("trg_b", t0), withAction("trg_c", t0),
		withAction("trg_d", t0))
	acceptEvents(t, s, t0, e)
	byTrigger := map[string]store.Action{}
	for _, a := range claimActions(t, s, "w", t0, 10) {
		byTrigger[a.TriggerID] = a
	}
	m := actionMessage(byTrigger["trg_a"], t0)
	now := t0.Add(time.Second)
	// Done: reported (with no messages too); skipped or with a lease lost: not.
	res := finishActions(t, s, now,
		store.ActionFinishParams{ID: byTrigger["trg_a"].ID, Owner: "w", Status: store.ActionDone,
			Messages: []store.NewMessage{m}, EventName: "order.paid"},
		store.ActionFinishParams{ID: byTrigger["trg_b"].ID, Owner: "w", Status: store.ActionSkipped},
		store.ActionFinishParams{ID: byTrigger["trg_c"].ID, Owner: "someone else", Status: store.ActionDone},
		store.ActionFinishParams{ID: byTrigger["trg_d"].ID, Owner: "w", Status: store.ActionDone})
	if !res[0].Applied || !res[1].Applied || res[2].Applied || !res[3].Applied {
		t.Fatalf("finishes = %+v", res)
	}
	want := []reported{
		{Type: store.WebhookEventTriggered, Subject: e.Event.ID, At: now, Detail: compactJSON(t, json.RawMessage(
			fmt.Sprintf(`{"action_id":%q,"message_ids":[%q],"name":"order.paid","trigger_id":"trg_a"}`, byTrigger["trg_a"].ID, m.Message.ID)))},
		{Type: store.WebhookEventTriggered, Subject: e.Event.ID, At: now, Detail: compactJSON(t, json.RawMessage(
			fmt.Sprintf(`{"action_id":%q,"message_ids":[],"trigger_id":"trg_d"}`, byTrigger["trg_d"].ID)))},
	}
	// The order of one call's reports is not part of the contract.
	got := reports(t, s, hook.ID)
	slices.SortFunc(got, func(a, b reported) int { return strings.Compare(a.Detail, b.Detail) })
	slices.SortFunc(want, func(a, b reported) int { return strings.Compare(a.Detail, b.Detail) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event.triggered deliveries (-want +got):\n%s", diff)
	}
	if got := reports(t, s, other.ID); len(got) != 0 {
		t.Errorf("an endpoint not routed for event.triggered got %v", got)
	}
}
