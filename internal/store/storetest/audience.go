package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// key is the suite's email key: the addresses it uses are ASCII, so lowercasing is the key.
func key(email string) string { return strings.ToLower(email) }

func strp(s string) *string { return &s }

// item is an upsert of email (its key computed) with mods applied.
func item(email string, mods ...func(*store.ContactUpsert)) store.ContactUpsert {
	it := store.ContactUpsert{Email: email, EmailKey: key(email), Consent: store.Consent{Source: "api"}}
	for _, m := range mods {
		m(&it)
	}
	return it
}

func upsertContacts(t *testing.T, s store.Store, now time.Time, items ...store.ContactUpsert) []store.ContactUpsertResult {
	t.Helper()
	res, err := s.ContactsUpsert(t.Context(), store.ContactsUpsertParams{Items: items, Now: now})
	if err != nil {
		t.Fatalf("ContactsUpsert: %v", err)
	}
	if len(res) != len(items) {
		t.Fatalf("ContactsUpsert returned %d results for %d items", len(res), len(items))
	}
	return res
}

// upsertOK upserts items and fails on any item's error.
func upsertOK(t *testing.T, s store.Store, now time.Time, items ...store.ContactUpsert) []store.ContactUpsertResult {
	t.Helper()
	res := upsertContacts(t, s, now, items...)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("ContactsUpsert item %d (%s): %v", i, items[i].Email, r.Err)
		}
	}
	return res
}

func outcomes(res []store.ContactUpsertResult) []string {
	out := make([]string, len(res))
	for i, r := range res {
		out[i] = r.Outcome
		if r.Err != nil {
			out[i] = "error"
		}
	}
	return out
}

func contact(t *testing.T, s store.Store, ref store.ContactRef) store.Contact {
	t.Helper()
	c, err := s.ContactGet(t.Context(), ref)
	if err != nil {
		t.Fatalf("ContactGet(%+v): %v", ref, err)
	}
	return c
}

func newList(t *testing.T, s store.Store, name string, doubleOptIn bool) store.List {
	t.Helper()
	l, err := s.ListCreate(t.Context(), store.List{ID: id.New(id.List), Name: name, DoubleOptIn: doubleOptIn,
		Wording: "Yes, send me " + name, CreatedAt: t0})
	if err != nil {
		t.Fatalf("ListCreate(%s): %v", name, err)
	}
	return l
}

func subStatuses(t *testing.T, s store.Store, ref store.ContactRef) map[string]string {
	t.Helper()
	subs, err := s.ContactSubscriptions(t.Context(), ref)
	if err != nil {
		t.Fatalf("ContactSubscriptions: %v", err)
	}
	out := map[string]string{}
	for _, sub := range subs {
		out[sub.ListID] = sub.Status
	}
	return out
}

func testContactUpsert(t *testing.T, s store.Store) {
	ctx := t.Context()
	active := t0.Add(-time.Hour)
	res := upsertOK(t, s, t0, item("Ann@Example.com", func(it *store.ContactUpsert) {
		it.ExternalID = "u-1"
		it.Name, it.Locale, it.Timezone = strp("Ann"), strp("en-GB"), strp("Europe/London")
		it.Attributes = json.RawMessage(`{"plan":"pro","seats":3}`)
		it.LastActiveAt = active
	}), item("bob@example.com"))
	if got := outcomes(res); !slices.Equal(got, []string{store.UpsertCreated, store.UpsertCreated}) {
		t.Fatalf("outcomes = %v", got)
	}
	if !id.Valid(id.Contact, res[0].ID) || res[0].ID == res[1].ID {
		t.Fatalf("ids %q, %q", res[0].ID, res[1].ID)
	}
	want := store.Contact{ID: res[0].ID, Email: "Ann@Example.com", EmailKey: "ann@example.com", ExternalID: "u-1",
		Name: "Ann", Locale: "en-GB", Timezone: "Europe/London", Attributes: json.RawMessage(`{"plan":"pro","seats":3}`),
		LastActiveAt: active, CreatedAt: t0, UpdatedAt: t0}
	for _, ref := range []store.ContactRef{{ID: res[0].ID}, {EmailKey: "ann@example.com"}, {ExternalID: "u-1"}} {
		if diff := cmp.Diff(want, contact(t, s, ref), cmpOpts); diff != "" {
			t.Errorf("ContactGet(%+v) (-want +got):\n%s", ref, diff)
		}
	}
	bob := contact(t, s, store.ContactRef{ID: res[1].ID})
	if string(bob.Attributes) != "{}" || bob.ExternalID != "" || !bob.LastActiveAt.IsZero() {
		t.Errorf("bob = %+v; want empty attributes, no external id, never active", bob)
	}
	for _, ref := range []store.ContactRef{{ID: id.New(id.Contact)}, {EmailKey: "nobody@example.com"}, {ExternalID: "u-9"}} {
		_, err := s.ContactGet(ctx, ref)
		wantErr(t, fmt.Sprintf("ContactGet(%+v)", ref), err, store.ErrNotFound)
	}

	// The same again: unchanged. Another case: merged, the email as last given. A new name:
	// updated. Nil fields are left as they are.
	t1 := t0.Add(time.Minute)
	res2 := upsertContacts(t, s, t1, item("Ann@Example.com", func(it *store.ContactUpsert) {
		it.ExternalID = "u-1"
		it.Name = strp("Ann")
		it.Attributes = json.RawMessage(`{"seats": 3}`)
	}))
	res3 := upsertContacts(t, s, t1, item("ANN@example.COM"))
	res4 := upsertContacts(t, s, t1, item("bob@example.com", func(it *store.ContactUpsert) { it.Name = strp("Bob") }))
	got := outcomes(slices.Concat(res2, res3, res4))
	if !slices.Equal(got, []string{store.UpsertUnchanged, store.UpsertMerged, store.UpsertUpdated}) {
		t.Fatalf("outcomes = %v; want unchanged, merged, updated", got)
	}
	if res2[0].ID != res[0].ID || res3[0].ID != res[0].ID || res4[0].ID != res[1].ID {
		t.Errorf("ids changed: %v %v %v", res2[0].ID, res3[0].ID, res4[0].ID)
	}
	ann := contact(t, s, store.ContactRef{ID: res[0].ID})
	want.Email, want.UpdatedAt = "ANN@example.COM", t1
	if diff := cmp.Diff(want, ann, cmpOpts); diff != "" {
		t.Errorf("after merge (-want +got):\n%s", diff)
	}
	if b := contact(t, s, store.ContactRef{ID: res[1].ID}); b.Name != "Bob" || !b.UpdatedAt.Equal(t1) || !b.CreatedAt.Equal(t0) {
		t.Errorf("bob after update = %+v", b)
	}

	// CreateOnly leaves an existing contact alone.
	res5 := upsertContacts(t, s, t1.Add(time.Minute), item("bob@example.com", func(it *store.ContactUpsert) {
		it.CreateOnly = true
		it.Name = strp("Robert")
	}), item("cat@example.com", func(it *store.ContactUpsert) { it.CreateOnly = true }))
	if got := outcomes(res5); !slices.Equal(got, []string{store.UpsertUnchanged, store.UpsertCreated}) || !res5[0].Existed || res5[1].Existed {
		t.Errorf("CreateOnly results = %+v", res5)
	}
	if b := contact(t, s, store.ContactRef{ID: res[1].ID}); b.Name != "Bob" {
		t.Errorf("CreateOnly changed bob's name to %q", b.Name)
	}
}

func testContactIdentity(t *testing.T, s store.Store) {
	ctx := t.Context()
	news := newList(t, s, "news", false)
	res := upsertOK(t, s, t0, item("ann@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-1" }),
		item("bob@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-2" }),
		item("cat@example.com"))
	ann, bob, cat := res[0].ID, res[1].ID, res[2].ID

	// An external_id match with a new email changes the email; the old address is free.
	t1 := t0.Add(time.Minute)
	r := upsertOK(t, s, t1, item("ann@new.example", func(it *store.ContactUpsert) { it.ExternalID = "u-1" }))
	if r[0].ID != ann || r[0].Outcome != store.UpsertUpdated {
		t.Fatalf("external_id match = %+v; want %s updated", r[0], ann)
	}
	if c := contact(t, s, store.ContactRef{ExternalID: "u-1"}); c.Email != "ann@new.example" || c.EmailKey != "ann@new.example" {
		t.Errorf("after the email change: %+v", c)
	}
	_, err := s.ContactGet(ctx, store.ContactRef{EmailKey: "ann@example.com"})
	wantErr(t, "ContactGet(old email)", err, store.ErrNotFound)

	// A contact without an external_id found by email gets the one given.
	r = upsertOK(t, s, t1, item("cat@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-3" }))
	if r[0].ID != cat || r[0].Outcome != store.UpsertUpdated {
		t.Errorf("external_id added: %+v", r[0])
	}

	// Per-item errors; the other items of the batch still apply.
	unknown := id.New(id.List)
	res = upsertContacts(t, s, t1,
		item("bob@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-1" }), // two contacts
		item("bob@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-9" }), // bob is u-2
		item("dan@example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID, unknown} }),
		item("dan@example.com", func(it *store.ContactUpsert) { it.Unsubscribe = []string{id.New(id.List)} }),
		item("eve@example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID} }),
	)
	for i, want := range []error{store.ErrConflict, store.ErrConflict, store.ErrNotFound, store.ErrNotFound, nil} {
		if !errors.Is(res[i].Err, want) || (want == nil) != (res[i].Err == nil) {
			t.Errorf("item %d: error %v, want %v", i, res[i].Err, want)
		}
	}
	var ul *store.UnknownListError
	if !errors.As(res[2].Err, &ul) || ul.ListID != unknown {
		t.Errorf("unknown list: error %#v, want an UnknownListError naming %s", res[2].Err, unknown)
	}
	if c := contact(t, s, store.ContactRef{ID: bob}); c.ExternalID != "u-2" {
		t.Errorf("bob's external_id = %q after the conflicts", c.ExternalID)
	}
	_, err = s.ContactGet(ctx, store.ContactRef{EmailKey: "dan@example.com"})
	wantErr(t, "ContactGet(dan, unknown list)", err, store.ErrNotFound)
	eve := contact(t, s, store.ContactRef{EmailKey: "eve@example.com"})
	if got := subStatuses(t, s, store.ContactRef{ID: eve.ID}); got[news.ID] != store.SubscriptionSubscribed {
		t.Errorf("eve's subscriptions = %v", got)
	}

	// One batch naming a contact twice applies the items in order; a second item may take the
	// address the first one freed.
	t2 := t1.Add(time.Minute)
	res = upsertOK(t, s, t2,
		item("fay@example.com", func(it *store.ContactUpsert) { it.Name = strp("Fay") }),
		item("FAY@example.com", func(it *store.ContactUpsert) { it.Locale = strp("fr") }),
		item("bob@moved.example", func(it *store.ContactUpsert) { it.ExternalID = "u-2" }),
		item("bob@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-4" }),
	)
	if got := outcomes(res); !slices.Equal(got, []string{store.UpsertCreated, store.UpsertMerged, store.UpsertUpdated, store.UpsertCreated}) {
		t.Errorf("outcomes = %v", got)
	}
	if res[0].ID != res[1].ID || res[2].ID != bob || res[3].ID == bob {
		t.Errorf("ids = %v %v %v %v", res[0].ID, res[1].ID, res[2].ID, res[3].ID)
	}
	if c := contact(t, s, store.ContactRef{ID: res[0].ID}); c.Name != "Fay" || c.Locale != "fr" || c.Email != "FAY@example.com" {
		t.Errorf("fay = %+v", c)
	}
	if c := contact(t, s, store.ContactRef{EmailKey: "bob@example.com"}); c.ExternalID != "u-4" {
		t.Errorf("the new bob@example.com = %+v", c)
	}
	// By id: the email and external_id change to those given; another contact's are a
	// conflict, an unknown id is not found.
	t3 := t2.Add(time.Minute)
	res = upsertContacts(t, s, t3,
		item("cat@new.example", func(it *store.ContactUpsert) { it.ID = cat; it.ExternalID = "u-30" }),
		item("eve@example.com", func(it *store.ContactUpsert) { it.ID = cat }),
		item("cat@new.example", func(it *store.ContactUpsert) { it.ID = cat; it.ExternalID = "u-4" }),
		item("cat@new.example", func(it *store.ContactUpsert) { it.ID = id.New(id.Contact) }),
	)
	for i, want := range []error{nil, store.ErrConflict, store.ErrConflict, store.ErrNotFound} {
		if !errors.Is(res[i].Err, want) || (want == nil) != (res[i].Err == nil) {
			t.Errorf("by id, item %d: error %v, want %v", i, res[i].Err, want)
		}
	}
	if c := contact(t, s, store.ContactRef{ID: cat}); c.Email != "cat@new.example" || c.ExternalID != "u-30" || res[0].Outcome != store.UpsertUpdated {
		t.Errorf("cat by id = %+v (%s)", c, res[0].Outcome)
	}
	// The batch's contacts are all there, once each.
	page, _, err := s.ContactList(ctx, store.ContactListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 6 {
		t.Errorf("ContactList: %d contacts, want 6 (ann, bob, cat, eve, fay, new bob)", len(page))
	}
}

func testContactAttributes(t *testing.T, s store.Store) {
	r := upsertOK(t, s, t0, item("ann@example.com", func(it *store.ContactUpsert) {
		it.Attributes = json.RawMessage(`{"plan":"free","seats":1,"tags":["a","b"],"gone":null}`)
		it.LastActiveAt = t0
	}))
	ref := store.ContactRef{ID: r[0].ID}
	attrs := func() map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(contact(t, s, ref).Attributes, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if diff := cmp.Diff(map[string]any{"plan": "free", "seats": 1.0, "tags": []any{"a", "b"}}, attrs()); diff != "" {
		t.Errorf("created attributes (-want +got):\n%s", diff)
	}
	// Merged key by key; null removes; an earlier activity time does not move last_active_at back.
	r = upsertOK(t, s, t0.Add(time.Minute), item("ann@example.com", func(it *store.ContactUpsert) {
		it.Attributes = json.RawMessage(`{"plan":"pro","seats":null,"nested":{"x":1}}`)
		it.LastActiveAt = t0.Add(-time.Hour)
	}))
	if r[0].Outcome != store.UpsertUpdated {
		t.Errorf("outcome %s", r[0].Outcome)
	}
	if diff := cmp.Diff(map[string]any{"plan": "pro", "tags": []any{"a", "b"}, "nested": map[string]any{"x": 1.0}}, attrs()); diff != "" {
		t.Errorf("merged attributes (-want +got):\n%s", diff)
	}
	if c := contact(t, s, ref); !c.LastActiveAt.Equal(t0) {
		t.Errorf("last_active_at = %v, want %v (never backwards)", c.LastActiveAt, t0)
	}
	// Only an earlier activity and the same values: unchanged. A later activity moves it.
	r = upsertOK(t, s, t0.Add(2*time.Minute), item("ann@example.com", func(it *store.ContactUpsert) {
		it.Attributes = json.RawMessage(`{"nested": {"x": 1}, "plan": "pro", "missing": null}`)
		it.LastActiveAt = t0
	}))
	if r[0].Outcome != store.UpsertUnchanged {
		t.Errorf("same values: outcome %s, want unchanged", r[0].Outcome)
	}
	later := t0.Add(3 * time.Hour)
	upsertOK(t, s, t0.Add(3*time.Minute), item("ann@example.com", func(it *store.ContactUpsert) { it.LastActiveAt = later }))
	if c := contact(t, s, ref); !c.LastActiveAt.Equal(later) {
		t.Errorf("last_active_at = %v, want %v", c.LastActiveAt, later)
	}
}

func testSubscriptions(t *testing.T, s store.Store) {
	ctx := t.Context()
	news := newList(t, s, "news", false)
	promo := newList(t, s, "promo", true)
	consent := store.Consent{Source: "form", IP: "192.0.2.1", UserAgent: "Mozilla/5.0"}

	// Single opt-in: subscribed; double opt-in: pending, reported.
	r := upsertOK(t, s, t0, item("ann@example.com", func(it *store.ContactUpsert) {
		it.Lists = []string{news.ID, promo.ID}
		it.Consent = consent
	}))
	ann := store.ContactRef{ID: r[0].ID}
	if !slices.Equal(r[0].Pending, []string{promo.ID}) || len(r[0].Kept) != 0 {
		t.Errorf("Pending %v, Kept %v; want [%s], none", r[0].Pending, r[0].Kept, promo.ID)
	}
	if got := subStatuses(t, s, ann); got[news.ID] != store.SubscriptionSubscribed || got[promo.ID] != store.SubscriptionPending {
		t.Errorf("subscriptions = %v", got)
	}
	// Asking again changes nothing and reports no pending list (no second confirmation).
	r = upsertOK(t, s, t0.Add(time.Second), item("ann@example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID, promo.ID} }))
	if r[0].Outcome != store.UpsertUnchanged || len(r[0].Pending) != 0 {
		t.Errorf("again: %+v", r[0])
	}

	// Confirmation.
	t1 := t0.Add(time.Minute)
	sub, err := s.SubscriptionConfirm(ctx, promo.ID, ann.ID, store.Consent{Source: "confirmation", IP: "192.0.2.2"}, t1)
	if err != nil {
		t.Fatalf("SubscriptionConfirm: %v", err)
	}
	if sub.Status != store.SubscriptionSubscribed || !sub.ConfirmedAt.Equal(t1) || !sub.CreatedAt.Equal(t0) {
		t.Errorf("confirmed subscription = %+v", sub)
	}
	_, err = s.SubscriptionConfirm(ctx, news.ID, id.New(id.Contact), consent, t1)
	wantErr(t, "SubscriptionConfirm(unknown contact)", err, store.ErrNotFound)

	// Unsubscribed is kept: not by an upsert, only by Resubscribe.
	t2 := t1.Add(time.Minute)
	set, err := s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: news.ID, Contact: store.ContactRef{EmailKey: "ann@example.com"},
		Status: store.SubscriptionUnsubscribed, Consent: store.Consent{Source: "unsubscribe_link"}, Now: t2})
	if err != nil || set.Status != store.SubscriptionUnsubscribed || !set.UnsubscribedAt.Equal(t2) || set.ContactID != ann.ID || !set.Changed {
		t.Fatalf("SubscriptionSet(unsubscribed) = %+v, %v", set, err)
	}
	r = upsertOK(t, s, t2, item("ann@example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID} }))
	if !slices.Equal(r[0].Kept, []string{news.ID}) || r[0].Outcome != store.UpsertUnchanged {
		t.Errorf("upsert to a list left: %+v; want kept, unchanged", r[0])
	}
	set, err = s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: news.ID, Contact: ann,
		Status: store.SubscriptionSubscribed, Consent: consent, Now: t2})
	if err != nil || !set.Kept || set.Changed || set.Status != store.SubscriptionUnsubscribed {
		t.Errorf("SubscriptionSet(subscribed) without Resubscribe = %+v, %v; want kept", set, err)
	}
	if got := subStatuses(t, s, ann); got[news.ID] != store.SubscriptionUnsubscribed {
		t.Fatalf("subscriptions = %v", got)
	}
	t3 := t2.Add(time.Minute)
	r = upsertOK(t, s, t3, item("ann@example.com", func(it *store.ContactUpsert) {
		it.Lists = []string{news.ID}
		it.Resubscribe = true
		it.Consent = consent
	}))
	if len(r[0].Kept) != 0 || r[0].Outcome != store.UpsertUpdated {
		t.Errorf("Resubscribe: %+v", r[0])
	}
	if got := subStatuses(t, s, ann); got[news.ID] != store.SubscriptionSubscribed {
		t.Errorf("after Resubscribe: %v", got)
	}

	// SubscriptionSet errors.
	_, err = s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: id.New(id.List), Contact: ann,
		Status: store.SubscriptionSubscribed, Now: t3})
	wantErr(t, "SubscriptionSet(unknown list)", err, store.ErrNotFound)
	_, err = s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: news.ID, Contact: store.ContactRef{EmailKey: "x@example.com"},
		Status: store.SubscriptionSubscribed, Now: t3})
	wantErr(t, "SubscriptionSet(unknown contact)", err, store.ErrNotFound)
	// Confirmed on a double opt-in list: subscribed at once.
	r = upsertOK(t, s, t3, item("bob@example.com"))
	set, err = s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: promo.ID, Contact: store.ContactRef{ID: r[0].ID},
		Status: store.SubscriptionSubscribed, Confirmed: true, Consent: consent, Now: t3})
	if err != nil || set.Status != store.SubscriptionSubscribed || !set.ConfirmedAt.Equal(t3) {
		t.Errorf("SubscriptionSet(confirmed) = %+v, %v", set, err)
	}

	// UnsubscribeAll leaves every list and never subscribes.
	t4 := t3.Add(time.Minute)
	r = upsertOK(t, s, t4, item("ann@example.com", func(it *store.ContactUpsert) {
		it.UnsubscribeAll = true
		it.Lists = []string{news.ID}
		it.Consent = store.Consent{Source: "sync"}
	}))
	if r[0].Outcome != store.UpsertUpdated || len(r[0].Pending)+len(r[0].Kept) != 0 {
		t.Errorf("UnsubscribeAll: %+v", r[0])
	}
	if got := subStatuses(t, s, ann); got[news.ID] != store.SubscriptionUnsubscribed || got[promo.ID] != store.SubscriptionUnsubscribed {
		t.Errorf("after UnsubscribeAll: %v", got)
	}

	// The consent history, oldest first, with the list's wording at the time.
	if _, err := s.ListUpdate(ctx, store.List{ID: news.ID, Name: "news", Wording: "New wording"}, t4); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ContactConsent(ctx, ann)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ List, Action, Source, Wording string }
	var got []rec
	for _, c := range recs {
		if c.ContactID != ann.ID {
			t.Errorf("record of %s", c.ContactID)
		}
		got = append(got, rec{c.ListID, c.Action, c.Source, c.Wording})
	}
	wn, wp := news.Wording, promo.Wording
	want := []rec{
		{news.ID, store.ConsentSubscribe, "form", wn},
		{promo.ID, store.ConsentSubscribe, "form", wp},
		{promo.ID, store.ConsentConfirm, "confirmation", wp},
		{news.ID, store.ConsentUnsubscribe, "unsubscribe_link", wn},
		{news.ID, store.ConsentResubscribe, "form", wn},
	}
	// UnsubscribeAll's two records, in list id order.
	for _, l := range slices.Sorted(slices.Values([]string{news.ID, promo.ID})) {
		want = append(want, rec{l, store.ConsentUnsubscribe, "sync", map[string]string{news.ID: wn, promo.ID: wp}[l]})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("consent records (-want +got):\n%s", diff)
	}
	if recs[0].IP != "192.0.2.1" || recs[0].UserAgent != "Mozilla/5.0" || !recs[0].At.Equal(t0) || recs[2].IP != "192.0.2.2" {
		t.Errorf("first records = %+v, %+v", recs[0], recs[2])
	}

	// Counts.
	l, err := s.ListGet(ctx, promo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Subscribed != 1 || l.Pending != 0 || l.Unsubscribed != 1 || l.Wording != wp || !l.DoubleOptIn {
		t.Errorf("promo = %+v; want 1 subscribed (bob), 1 unsubscribed (ann)", l)
	}
}

func testLists(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := newList(t, s, "a", false)
	b, err := s.ListCreate(ctx, store.List{ID: id.New(id.List), Name: "b", Description: "B list", Public: true,
		DoubleOptIn: true, Wording: "w", CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "b" || b.Description != "B list" || !b.Public || !b.DoubleOptIn || !b.CreatedAt.Equal(t0) || !b.UpdatedAt.Equal(t0) {
		t.Errorf("ListCreate = %+v", b)
	}
	ls, err := s.ListList(ctx)
	if err != nil || len(ls) != 2 || ls[0].ID != a.ID || ls[1].ID != b.ID {
		t.Fatalf("ListList = %+v, %v", ls, err)
	}
	u, err := s.ListUpdate(ctx, store.List{ID: a.ID, Name: "A", Public: true, Wording: "ww"}, t0.Add(time.Hour))
	if err != nil || u.Name != "A" || !u.Public || u.Wording != "ww" || !u.UpdatedAt.Equal(t0.Add(time.Hour)) || !u.CreatedAt.Equal(t0) {
		t.Errorf("ListUpdate = %+v, %v", u, err)
	}
	_, err = s.ListUpdate(ctx, store.List{ID: id.New(id.List), Name: "x"}, t0)
	wantErr(t, "ListUpdate(unknown)", err, store.ErrNotFound)
	_, err = s.ListGet(ctx, id.New(id.List))
	wantErr(t, "ListGet(unknown)", err, store.ErrNotFound)

	// Deleting a list deletes its subscriptions; the consent records stay with the contact.
	r := upsertOK(t, s, t0, item("ann@example.com", func(it *store.ContactUpsert) { it.Lists = []string{a.ID, b.ID} }))
	if err := s.ListDelete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "ListDelete(again)", s.ListDelete(ctx, a.ID), store.ErrNotFound)
	if got := subStatuses(t, s, store.ContactRef{ID: r[0].ID}); len(got) != 1 || got[b.ID] != store.SubscriptionPending {
		t.Errorf("subscriptions after the list's delete = %v", got)
	}
	if recs, err := s.ContactConsent(ctx, store.ContactRef{ID: r[0].ID}); err != nil || len(recs) != 2 {
		t.Errorf("consent after the list's delete = %d records, %v; want 2", len(recs), err)
	}
}

func testContactList(t *testing.T, s store.Store) {
	ctx := t.Context()
	news := newList(t, s, "news", false)
	var items []store.ContactUpsert
	for i := range 7 {
		items = append(items, item(fmt.Sprintf("c%d@example.com", i), func(it *store.ContactUpsert) {
			if i%2 == 0 {
				it.Lists = []string{news.ID}
			}
		}))
	}
	res := upsertOK(t, s, t0, items...)
	var ids []string
	for _, r := range res {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	if _, err := s.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: news.ID, Contact: store.ContactRef{ID: res[0].ID},
		Status: store.SubscriptionUnsubscribed, Now: t0}); err != nil {
		t.Fatal(err)
	}

	all := func(p store.ContactListParams) []string {
		t.Helper()
		var got []string
		for range 20 {
			page, next, err := s.ContactList(ctx, p)
			if err != nil {
				t.Fatalf("ContactList(%+v): %v", p, err)
			}
			if len(page) > max(p.Limit, 1) {
				t.Fatalf("page of %d for limit %d", len(page), p.Limit)
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if next == "" {
				return got
			}
			p.Cursor = next
		}
		t.Fatal("too many pages")
		return nil
	}
	if got := all(store.ContactListParams{Limit: 3}); !slices.Equal(got, ids) {
		t.Errorf("all contacts = %v, want %v", got, ids)
	}
	members := all(store.ContactListParams{ListID: news.ID, Limit: 2})
	subscribed := all(store.ContactListParams{ListID: news.ID, SubscriptionStatus: store.SubscriptionSubscribed, Limit: 2})
	unsub := all(store.ContactListParams{ListID: news.ID, SubscriptionStatus: store.SubscriptionUnsubscribed})
	if len(members) != 4 || len(subscribed) != 3 || !slices.Equal(unsub, []string{res[0].ID}) || !slices.IsSorted(members) {
		t.Errorf("members %v, subscribed %v, unsubscribed %v", members, subscribed, unsub)
	}
	_, _, err := s.ContactList(ctx, store.ContactListParams{Cursor: "bm90LWEtY3Vyc29y"})
	wantErr(t, "ContactList(bad cursor)", err, store.ErrBadCursor)
}

func testContactDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	news := newList(t, s, "news", false)
	r := upsertOK(t, s, t0, item("ann@example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID}; it.ExternalID = "u-1" }),
		item("bob@example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID} }))
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ExternalID: "u-1"}, Now: t0}); err != nil {
		t.Fatalf("ContactDelete: %v", err)
	}
	wantErr(t, "ContactDelete(again)", s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: r[0].ID}, Now: t0}), store.ErrNotFound)
	_, err := s.ContactGet(ctx, store.ContactRef{ID: r[0].ID})
	wantErr(t, "ContactGet(deleted)", err, store.ErrNotFound)
	_, err = s.ContactConsent(ctx, store.ContactRef{ID: r[0].ID})
	wantErr(t, "ContactConsent(deleted)", err, store.ErrNotFound)
	if l, err := s.ListGet(ctx, news.ID); err != nil || l.Subscribed != 1 {
		t.Errorf("list after delete = %+v, %v; want 1 subscribed", l, err)
	}
	// The address and external id are free again: a new contact.
	r2 := upsertOK(t, s, t0, item("ann@example.com", func(it *store.ContactUpsert) { it.ExternalID = "u-1" }))
	if r2[0].Outcome != store.UpsertCreated || r2[0].ID == r[0].ID {
		t.Errorf("upsert after delete = %+v", r2[0])
	}
	if got := subStatuses(t, s, store.ContactRef{ID: r2[0].ID}); len(got) != 0 {
		t.Errorf("new contact's subscriptions = %v", got)
	}
}

// randomRuns matches the random parts of ids and Message-IDs (20 or more letters and digits).
var randomRuns = regexp.MustCompile(`[0-9a-z]{20,}`)

func testContactErase(t *testing.T, s store.Store) {
	ctx := t.Context()
	news := newList(t, s, "news", false)
	r := upsertOK(t, s, t0, item("Ann@Example.com", func(it *store.ContactUpsert) { it.Lists = []string{news.ID} }))

	// A message to Ann alone, sent; one to Ann and Bob, still queued; one to Bob alone.
	sent := Message(t0, func(m *store.Message) {
		m.To = []string{"Ann <Ann@Example.com>"}
		m.Recipients = []string{"ann@example.com"}
		m.Subject = "Hello Ann"
		m.IdempotencyKey, m.APIKeyID = "idem-1", "key_1"
	})
	both := Message(t0, func(m *store.Message) {
		m.To = []string{"ann@example.com", "Bob <bob@example.com>"}
		m.Recipients = []string{"ann@example.com", "bob@example.com"}
		m.Data = json.RawMessage(`{"name":"Ann"}`)
	})
	bob := Message(t0, func(m *store.Message) {
		m.To = []string{"bob@example.com"}
		m.Recipients = []string{"bob@example.com"}
	})
	_, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{sent}, Now: t0,
		Idempotency: &store.Idempotency{APIKeyID: "key_1", Key: "idem-1", RequestHash: []byte("h"), StatusCode: 202,
			Response: []byte(`{"id":"` + sent.Message.ID + `","to":["Ann@Example.com"]}`), CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	accept(t, s, t0, both, bob)
	claimed := claim(t, s, store.MessageClaimParams{Stream: store.StreamTransactional, Owner: "w", Limit: 1, Now: t0, LeaseUntil: t0.Add(time.Minute)})
	if len(claimed) != 1 || claimed[0].ID != sent.Message.ID {
		t.Fatalf("claimed %v", claimed)
	}
	if n, err := s.MessageFinish(ctx, t0, []store.MessageFinishParams{{ID: sent.Message.ID, Owner: "w", Status: store.StatusSent, SentAt: t0}}); err != nil || n != 1 {
		t.Fatalf("MessageFinish = %d, %v", n, err)
	}
	upsert(t, s, store.Suppression{Email: "ann@example.com", Reason: store.ReasonComplaint, CreatedAt: t0})

	t1 := t0.Add(time.Hour)
	erased := "erased:0123abcd"
	if err := s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: r[0].ID}, Erase: true, ErasedKey: erased, Now: t1}); err != nil {
		t.Fatalf("ContactDelete(erase): %v", err)
	}
	if _, err := s.ContactGet(ctx, store.ContactRef{EmailKey: "ann@example.com"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ContactGet after erase: %v", err)
	}
	// The messages that named Ann keep no trace of her; Bob's keep his.
	for _, m := range []store.NewMessage{sent, both} {
		got := get(t, s, m.Message.ID)
		raw, err := s.MessageRaw(ctx, m.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		recips, err := s.MessageRecipients(ctx, m.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		all := fmt.Sprintf("%+v %s %+v", got, raw, recips)
		events, err := s.MessageEvents(ctx, m.Message.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			all += string(e.Detail)
		}
		// Ids and Message-IDs are random runs of letters and digits that may hold "ann" by chance.
		if strings.Contains(randomRuns.ReplaceAllString(strings.ToLower(all), ""), "ann") {
			t.Errorf("message %s still names Ann: %s", m.Message.ID, all)
		}
		if len(raw) != 0 || got.Data != nil || got.Subject != "" {
			t.Errorf("message %s: raw %d octets, data %s, subject %q", m.Message.ID, len(raw), got.Data, got.Subject)
		}
	}
	if got := get(t, s, both.Message.ID); got.Status != store.StatusCancelled || !slices.Equal(got.Recipients, []string{"bob@example.com"}) {
		t.Errorf("shared message = %s to %v; want cancelled, to bob", got.Status, got.Recipients)
	}
	if got := get(t, s, sent.Message.ID); got.Status != store.StatusSent || len(got.Recipients) != 0 {
		t.Errorf("sent message = %s to %v", got.Status, got.Recipients)
	}
	if got := get(t, s, bob.Message.ID); got.Status != store.StatusQueued || got.Subject != bob.Message.Subject {
		t.Errorf("bob's message changed: %+v", got)
	}
	if raw, err := s.MessageRaw(ctx, bob.Message.ID); err != nil || len(raw) == 0 {
		t.Errorf("bob's MIME: %d octets, %v", len(raw), err)
	}
	// The idempotency record that named her is gone: the key is free.
	res, err := s.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{Message(t1)}, Now: t1,
		Idempotency: &store.Idempotency{APIKeyID: "key_1", Key: "idem-1", RequestHash: []byte("other"), StatusCode: 202,
			Response: []byte(`{}`), CreatedAt: t1, ExpiresAt: t1.Add(time.Hour)}})
	if err != nil || res.Replayed {
		t.Errorf("idempotency key after erase: %+v, %v; want a fresh accept", res, err)
	}
	// Her suppression is gone, the erased key's is there.
	if _, err := s.SuppressionGet(ctx, "ann@example.com", "", t1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SuppressionGet(ann) after erase: %v", err)
	}
	sup, err := s.SuppressionGet(ctx, erased, "", t1)
	if err != nil || sup.Reason != store.ReasonErased || !sup.CreatedAt.Equal(t1) || !sup.ExpiresAt.IsZero() {
		t.Errorf("erased suppression = %+v, %v", sup, err)
	}
	if l, err := s.ListGet(ctx, news.ID); err != nil || l.Subscribed != 0 {
		t.Errorf("list after erase = %+v, %v", l, err)
	}
	wantErr(t, "ContactDelete(erase, again)", s.ContactDelete(ctx, store.ContactDeleteParams{Ref: store.ContactRef{ID: r[0].ID},
		Erase: true, ErasedKey: erased, Now: t1}), store.ErrNotFound)
}

// testContactConcurrent upserts overlapping batches at once: each address ends up one contact,
// and every attribute written is kept (the batches merge one after the other).
func testContactConcurrent(t *testing.T, s store.Store) {
	news := newList(t, s, "news", false)
	const workers, n = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var items []store.ContactUpsert
			for i := range n {
				items = append(items, item(fmt.Sprintf("c%d@example.com", i), func(it *store.ContactUpsert) {
					it.Attributes = json.RawMessage(fmt.Sprintf(`{"w%d":%d}`, w, i))
					it.Lists = []string{news.ID}
				}))
			}
			res, err := s.ContactsUpsert(t.Context(), store.ContactsUpsertParams{Items: items, Now: t0})
			if err == nil {
				for _, r := range res {
					err = errors.Join(err, r.Err)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("ContactsUpsert: %v", err)
		}
	}
	page, _, err := s.ContactList(t.Context(), store.ContactListParams{Limit: 1000})
	if err != nil || len(page) != n {
		t.Fatalf("ContactList: %d contacts, %v; want %d", len(page), err, n)
	}
	for _, c := range page {
		var m map[string]int
		if err := json.Unmarshal(c.Attributes, &m); err != nil || len(m) != workers {
			t.Errorf("%s: attributes %s, want one key per worker", c.Email, c.Attributes)
		}
	}
	if l, err := s.ListGet(t.Context(), news.ID); err != nil || l.Subscribed != n {
		t.Errorf("list = %+v, %v; want %d subscribed", l, err, n)
	}
}

// testContactUpsertTwice applies one batch twice, as an import resumed after a crash does: the
// second time changes nothing and records no consent again.
func testContactUpsertTwice(t *testing.T, s store.Store) {
	news := newList(t, s, "news", false)
	promo := newList(t, s, "promo", true)
	batch := []store.ContactUpsert{
		item("ann@example.com", func(it *store.ContactUpsert) {
			it.ExternalID = "u-1"
			it.Name = strp("Ann")
			it.Attributes = json.RawMessage(`{"plan":"pro","old":null}`)
			it.LastActiveAt = t0
			it.Lists = []string{news.ID, promo.ID}
		}),
		item("bob@example.com", func(it *store.ContactUpsert) { it.Unsubscribe = []string{news.ID} }),
	}
	first := upsertOK(t, s, t0, batch...)
	second := upsertOK(t, s, t0.Add(time.Minute), batch...)
	for i := range batch {
		if second[i].ID != first[i].ID || second[i].Outcome != store.UpsertUnchanged || len(second[i].Pending) != 0 {
			t.Errorf("item %d again: %+v, first %+v", i, second[i], first[i])
		}
	}
	recs, err := s.ContactConsent(t.Context(), store.ContactRef{ID: first[0].ID})
	if err != nil || len(recs) != 2 {
		t.Errorf("ann's consent records: %d, %v; want 2", len(recs), err)
	}
	if c := contact(t, s, store.ContactRef{ID: first[0].ID}); !c.UpdatedAt.Equal(t0) {
		t.Errorf("ann updated at %v by a batch that changed nothing", c.UpdatedAt)
	}
}
