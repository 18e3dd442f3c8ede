package storetest

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// FixtureContact is one contact of the segments fixture.
type FixtureContact struct {
	store.Contact
	Lists map[string]string // list id → subscription status
}

// SegmentFixture is the audience the segment cases filter: contacts with attributes of every
// type (and of the wrong types), activity times and subscriptions to two lists, as of Now.
type SegmentFixture struct {
	Now      time.Time
	News     string // list ids
	Promo    string
	Contacts []FixtureContact // by id
	// Attributes are declared after the contacts are stored, so that their indexes are built
	// over values of every kind.
	Attributes []store.Attribute
}

// NewSegmentFixture builds the fixture; each call has new ids.
func NewSegmentFixture() SegmentFixture {
	now := t0
	f := SegmentFixture{Now: now, News: "lst_" + id.New("x")[2:], Promo: "lst_" + id.New("x")[2:]}
	day := 24 * time.Hour
	add := func(local, domain, name, locale, ext, attrs string, active time.Duration, lists ...string) {
		c := FixtureContact{Contact: store.Contact{
			ID: id.New("ctc"), Email: local + "@" + domain, EmailKey: strings.ToLower(local + "@" + domain),
			ExternalID: ext, Name: name, Locale: locale, Attributes: json.RawMessage(attrs),
			CreatedAt: now.Add(-100 * day), UpdatedAt: now.Add(-100 * day),
		}, Lists: map[string]string{}}
		if active > 0 {
			c.LastActiveAt = now.Add(-active)
		}
		for i := 0; i < len(lists); i += 2 {
			c.Lists[lists[i]] = lists[i+1]
		}
		f.Contacts = append(f.Contacts, c)
	}
	sub, pend, unsub := store.SubscriptionSubscribed, store.SubscriptionPending, store.SubscriptionUnsubscribed
	add("ann", "example.com", "Ann", "en", "",
		`{"plan":"pro","score":10,"vip":true,"signup":"2025-01-10T00:00:00Z"}`, 40*day, f.News, sub, f.Promo, unsub)
	add("bob", "example.com", "Bob", "de", "", `{"plan":"pro","score":3.5,"vip":false,"signup":"2025-06-01T24:00:00Z"}`, 5*day, f.News, sub)
	add("cat", "example.com", "", "en", "", `{"plan":"free","score":7,"signup":"2025-06-01T10:00:00+15:00"}`, 0, f.News, pend)
	add("Dan", "Example.org", "Dan", "en", "", `{"plan":"PRO","score":"12","signup":"2025-06-01T10:00:60Z"}`, 60*day, f.Promo, sub)
	add("eve", "example.com", "Eve", "", "", `{}`, 31*day, f.News, unsub)
	add("fay", "example.com", "Fay", "fr", "u-6",
		`{"plan":"pro","score":100,"vip":true,"signup":"2026-02-30T00:00:00Z"}`, day)
	add("gus", "example.com", "Gus", "en", "",
		`{"plan":"professional","score":-1,"signup":"2025-06-01T12:00:00+02:00"}`, 10*day)
	add("hal", "example.com", "", "en", "",
		`{"plan":5,"vip":"true","signup":"2025-06-01T10:00:00.500Z","nested":{"a":1}}`, 29*day)
	f.Attributes = []store.Attribute{
		{Name: "plan", Type: store.AttrString, CreatedAt: now},
		{Name: "score", Type: store.AttrNumber, CreatedAt: now},
		{Name: "vip", Type: store.AttrBool, CreatedAt: now},
		{Name: "signup", Type: store.AttrTime, CreatedAt: now},
	}
	return f
}

// RunSegments runs the segment evaluation cases: seed must store the fixture's lists, contacts
// and subscriptions (as they are, ids and times included) in s.
func RunSegments(t *testing.T, open func(t *testing.T) store.Store, seed func(t *testing.T, s store.Store, f SegmentFixture)) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Store, f SegmentFixture)
	}{
		{"Filters", testSegmentFilters},
		{"Ago", testSegmentAgo},
		{"Contacts", testSegmentContacts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			f := NewSegmentFixture()
			seed(t, s, f)
			for _, a := range f.Attributes {
				if _, err := s.AttributeDeclare(t.Context(), a); err != nil {
					t.Fatalf("AttributeDeclare(%+v): %v", a, err)
				}
			}
			tc.fn(t, s, f)
		})
	}
}

// SeedSegmentFixture writes the fixture through the audience area (store.Audience): its lists
// (news with double opt-in, so that a subscription can be pending), its contacts with
// ContactsUpsert, and their subscriptions with SubscriptionSet. The store gives the contacts
// their ids, which it writes back into f.Contacts. It skips the test when s has no audience
// area.
func SeedSegmentFixture(t *testing.T, s store.Store, f SegmentFixture) {
	t.Helper()
	aud, ok := s.(store.Audience)
	if !ok {
		t.Skip("the store has no audience area to write the fixture through")
	}
	ctx := t.Context()
	created := f.Contacts[0].CreatedAt
	for _, l := range []store.List{{ID: f.News, Name: "News", DoubleOptIn: true}, {ID: f.Promo, Name: "Promo"}} {
		l.CreatedAt, l.UpdatedAt = created, created
		if _, err := aud.ListCreate(ctx, l); err != nil {
			t.Fatalf("ListCreate(%s): %v", l.Name, err)
		}
	}
	items := make([]store.ContactUpsert, len(f.Contacts))
	for i, c := range f.Contacts {
		name, locale, tz := c.Name, c.Locale, c.Timezone
		items[i] = store.ContactUpsert{Email: c.Email, EmailKey: c.EmailKey, ExternalID: c.ExternalID, Name: &name,
			Locale: &locale, Timezone: &tz, Attributes: c.Attributes, LastActiveAt: c.LastActiveAt,
			Consent: store.Consent{Source: "api"}}
	}
	res, err := aud.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: items, Now: created})
	if err != nil {
		t.Fatalf("ContactsUpsert: %v", err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("ContactsUpsert item %d: %v", i, r.Err)
		}
		f.Contacts[i].ID = r.ID
	}
	slices.SortFunc(f.Contacts, func(a, b FixtureContact) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range f.Contacts {
		for listID, status := range c.Lists {
			set := store.SubscriptionSetParams{ListID: listID, Contact: store.ContactRef{ID: c.ID},
				Status: store.SubscriptionSubscribed, Confirmed: status != store.SubscriptionPending,
				Consent: store.Consent{Source: "api"}, Now: created}
			if _, err := aud.SubscriptionSet(ctx, set); err != nil {
				t.Fatalf("SubscriptionSet(%+v): %v", set, err)
			}
			if status == store.SubscriptionUnsubscribed {
				set.Status = store.SubscriptionUnsubscribed
				if _, err := aud.SubscriptionSet(ctx, set); err != nil {
					t.Fatalf("SubscriptionSet(%+v): %v", set, err)
				}
			}
		}
	}
}

func attrCond(name, typ, cmp string, v any) *store.Filter {
	return &store.Filter{Op: store.FilterCond, Attribute: name, Type: typ, Cmp: cmp, Value: v}
}

func fieldCond(name, cmp string, v any) *store.Filter {
	return &store.Filter{Op: store.FilterCond, Field: name, Type: store.FilterFields[name], Cmp: cmp, Value: v}
}

func group(op string, nodes ...*store.Filter) *store.Filter {
	return &store.Filter{Op: op, Nodes: nodes}
}

// names returns the local parts of the contacts' emails, lower-cased and sorted.
func names(cs []store.Contact) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i], _, _ = strings.Cut(c.EmailKey, "@")
	}
	slices.Sort(out)
	return out
}

func testSegmentFilters(t *testing.T, s store.Store, f SegmentFixture) {
	str, num, boo, tim := store.AttrString, store.AttrNumber, store.AttrBool, store.AttrTime
	ms := func(v string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	all := "ann bob cat dan eve fay gus hal"
	cases := []struct {
		name   string
		filter *store.Filter
		want   string // local parts, sorted
	}{
		{"nil is everyone", nil, all},
		{"empty and is everyone", group(store.FilterAnd), all},
		{"empty or is no one", group(store.FilterOr), ""},
		{"string eq", attrCond("plan", str, store.CmpEq, "pro"), "ann bob fay"},
		{"string ne has a value of the type", attrCond("plan", str, store.CmpNe, "pro"), "cat dan gus"},
		{"not eq includes the missing", group(store.FilterNot, attrCond("plan", str, store.CmpEq, "pro")), "cat dan eve gus hal"},
		{"string in", &store.Filter{Op: store.FilterCond, Attribute: "plan", Type: str, Cmp: store.CmpIn, Values: []any{"free", "PRO"}}, "cat dan"},
		{"empty in", &store.Filter{Op: store.FilterCond, Attribute: "plan", Type: str, Cmp: store.CmpIn}, ""},
		{"starts_with is case-sensitive", attrCond("plan", str, store.CmpStartsWith, "pro"), "ann bob fay gus"},
		{"contains", attrCond("plan", str, store.CmpContains, "ofe"), "gus"},
		{"contains is literal", attrCond("plan", str, store.CmpContains, "%"), ""},
		{"strings order by bytes", attrCond("plan", str, store.CmpLt, "pro"), "cat dan"},
		{"string exists", attrCond("plan", str, store.CmpExists, nil), "ann bob cat dan fay gus"},
		{"wrong JSON type is missing", attrCond("plan", str, store.CmpMissing, nil), "eve hal"},
		{"number gt", attrCond("score", num, store.CmpGt, 5.0), "ann cat fay"},
		{"number le", attrCond("score", num, store.CmpLe, 3.5), "bob gus"},
		{"number in", &store.Filter{Op: store.FilterCond, Attribute: "score", Type: num, Cmp: store.CmpIn, Values: []any{10.0, 7.0}}, "ann cat"},
		{"number missing", attrCond("score", num, store.CmpMissing, nil), "dan eve hal"},
		{"bool true", attrCond("vip", boo, store.CmpEq, true), "ann fay"},
		{"bool false", attrCond("vip", boo, store.CmpEq, false), "bob"},
		{"bool ne", attrCond("vip", boo, store.CmpNe, true), "bob"},
		{"bool missing", attrCond("vip", boo, store.CmpMissing, nil), "cat dan eve gus hal"},
		{"time with a zone, to the millisecond", attrCond("signup", tim, store.CmpLt, ms("2025-06-01T10:00:00.400Z")), "ann gus"},
		{"time ge", attrCond("signup", tim, store.CmpGe, ms("2025-06-01T10:00:00.500Z")), "hal"},
		{"time eq", attrCond("signup", tim, store.CmpEq, ms("2025-06-01T12:00:00+02:00")), "gus"},
		// February 30th, hour 24, a zone past ±14:00, second 60: no time on either driver.
		{"impossible time is missing", attrCond("signup", tim, store.CmpMissing, nil), "bob cat dan eve fay"},
		{"unknown attribute is missing", attrCond("nope", str, store.CmpMissing, nil), all},
		{"object value is missing", attrCond("nested", str, store.CmpExists, nil), ""},
		{"last active more than 30 days ago", &store.Filter{Op: store.FilterCond, Field: "last_active_at", Type: tim, Cmp: store.CmpLt, Ago: 30 * 24 * time.Hour}, "ann dan eve"},
		{"never active", fieldCond("last_active_at", store.CmpMissing, nil), "cat"},
		{"active since", fieldCond("last_active_at", store.CmpGe, f.Now.Add(-10*24*time.Hour)), "bob fay gus"},
		{"created", fieldCond("created_at", store.CmpLt, f.Now), all},
		{"email is the key", fieldCond("email", store.CmpEq, "dan@example.org"), "dan"},
		{"email ends", fieldCond("email", store.CmpContains, "@example.org"), "dan"},
		{"name", fieldCond("name", store.CmpEq, "Ann"), "ann"},
		{"empty name is missing", fieldCond("name", store.CmpMissing, nil), "cat hal"},
		{"name ne", fieldCond("name", store.CmpNe, "Ann"), "bob dan eve fay gus"},
		{"external_id exists", fieldCond("external_id", store.CmpExists, nil), "fay"},
		{"external_id missing", fieldCond("external_id", store.CmpMissing, nil), "ann bob cat dan eve gus hal"},
		{"locale in", &store.Filter{Op: store.FilterCond, Field: "locale", Type: str, Cmp: store.CmpIn, Values: []any{"de", "fr"}}, "bob fay"},
		{"subscribed", &store.Filter{Op: store.FilterInList, ListID: f.News}, "ann bob"},
		{"pending", &store.Filter{Op: store.FilterInList, ListID: f.News, SubscriptionStatus: store.SubscriptionPending}, "cat"},
		{"unsubscribed", &store.Filter{Op: store.FilterInList, ListID: f.News, SubscriptionStatus: store.SubscriptionUnsubscribed}, "eve"},
		{"any status", &store.Filter{Op: store.FilterInList, ListID: f.News, SubscriptionStatus: store.SubscriptionAny}, "ann bob cat eve"},
		{"not subscribed", group(store.FilterNot, &store.Filter{Op: store.FilterInList, ListID: f.News}), "cat dan eve fay gus hal"},
		{"unknown list", &store.Filter{Op: store.FilterInList, ListID: "lst_00000000000000000000000000"}, ""},
		{"pro, inactive for 30 days, subscribed to news", group(store.FilterAnd,
			attrCond("plan", str, store.CmpEq, "pro"),
			&store.Filter{Op: store.FilterCond, Field: "last_active_at", Type: tim, Cmp: store.CmpLt, Ago: 30 * 24 * time.Hour},
			&store.Filter{Op: store.FilterInList, ListID: f.News}), "ann"},
		{"or", group(store.FilterOr, &store.Filter{Op: store.FilterInList, ListID: f.Promo}, attrCond("plan", str, store.CmpEq, "free")), "cat dan"},
		{"nested", group(store.FilterAnd, group(store.FilterOr, attrCond("vip", boo, store.CmpEq, true), attrCond("score", num, store.CmpLt, 0.0)),
			group(store.FilterNot, fieldCond("locale", store.CmpEq, "fr"))), "ann gus"},
	}
	for _, tc := range cases {
		want := strings.Fields(tc.want)
		n, err := s.SegmentCount(t.Context(), tc.filter, f.Now)
		if err != nil {
			t.Errorf("%s: SegmentCount: %v", tc.name, err)
			continue
		}
		if n != len(want) {
			t.Errorf("%s: SegmentCount = %d, want %d (%v)", tc.name, n, len(want), want)
		}
		page, next, err := s.SegmentContacts(t.Context(), store.SegmentContactsParams{Filter: tc.filter, Now: f.Now, Limit: 100})
		if err != nil {
			t.Errorf("%s: SegmentContacts: %v", tc.name, err)
			continue
		}
		if got := names(page); !slices.Equal(got, want) || next != "" {
			t.Errorf("%s: SegmentContacts = %v, next %q; want %v", tc.name, got, next, want)
		}
	}

	// A filter the store cannot compile: an error, not a query.
	for _, bad := range []*store.Filter{
		{Op: "xor"},
		attrCond("plan'", str, store.CmpEq, "pro"),
		attrCond("plan", "date", store.CmpEq, "pro"),
		attrCond("plan", str, store.CmpEq, 5.0),
		fieldCond("password", store.CmpEq, "x"),
		attrCond("score", num, store.CmpContains, 5.0),
		{Op: store.FilterInList, ListID: f.News, SubscriptionStatus: "gone"},
	} {
		if _, err := s.SegmentCount(t.Context(), bad, f.Now); err == nil {
			t.Errorf("SegmentCount(%+v) = nil error, want one", bad)
		}
	}
}

// testSegmentAgo checks that relative times are taken from the now of the query.
func testSegmentAgo(t *testing.T, s store.Store, f SegmentFixture) {
	inactive := &store.Filter{Op: store.FilterCond, Field: "last_active_at", Type: store.AttrTime, Cmp: store.CmpLt, Ago: 30 * 24 * time.Hour}
	for _, tc := range []struct {
		now  time.Time
		want int
	}{
		{f.Now, 3},                         // ann 40d, dan 60d, eve 31d
		{f.Now.Add(2 * 24 * time.Hour), 4}, // and hal, 29d then 31d
		{f.Now.Add(-2 * 24 * time.Hour), 2},
	} {
		n, err := s.SegmentCount(t.Context(), inactive, tc.now)
		if err != nil || n != tc.want {
			t.Errorf("SegmentCount(inactive 30 days, now %v) = %d, %v; want %d", tc.now, n, err, tc.want)
		}
	}
}

// testSegmentContacts pages through a segment by id and reads contacts back whole.
func testSegmentContacts(t *testing.T, s store.Store, f SegmentFixture) {
	var got []store.Contact
	cursor := ""
	for range 10 {
		page, next, err := s.SegmentContacts(t.Context(), store.SegmentContactsParams{Now: f.Now, Cursor: cursor, Limit: 3})
		if err != nil {
			t.Fatalf("SegmentContacts(cursor %q): %v", cursor, err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		if want := store.ContactCursor(page[len(page)-1]); next != want {
			t.Fatalf("next cursor %q, want the page's last contact's %q", next, want)
		}
		cursor = next
	}
	want := make([]store.Contact, len(f.Contacts))
	for i, c := range f.Contacts {
		want[i] = c.Contact
	}
	slices.SortFunc(want, func(a, b store.Contact) int { return strings.Compare(a.ID, b.ID) })
	attrs := cmp.Comparer(func(a, b json.RawMessage) bool {
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
	})
	// UpdatedAt is the audience area's to keep (a subscription may touch it).
	noUpdated := cmpopts.IgnoreFields(store.Contact{}, "UpdatedAt")
	if diff := cmp.Diff(want, got, attrs, noUpdated); diff != "" {
		t.Errorf("SegmentContacts pages (-want +got):\n%s", diff)
	}

	_, _, err := s.SegmentContacts(t.Context(), store.SegmentContactsParams{Now: f.Now, Cursor: "msg_x"})
	if !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("SegmentContacts(bad cursor) error = %v, want ErrBadCursor", err)
	}
}

// testAttributes: declarations are idempotent, typed once, listed by name, deleted.
func testAttributes(t *testing.T, s store.Store) {
	ctx := t.Context()
	plan := store.Attribute{Name: "plan", Type: store.AttrString, CreatedAt: t0}
	for i := range 2 {
		got, err := s.AttributeDeclare(ctx, store.Attribute{Name: "plan", Type: store.AttrString, CreatedAt: t0.Add(time.Duration(i) * time.Hour)})
		if err != nil || !cmp.Equal(got, plan) {
			t.Fatalf("AttributeDeclare #%d = %+v, %v; want %+v (the first declaration)", i, got, err, plan)
		}
	}
	_, err := s.AttributeDeclare(ctx, store.Attribute{Name: "plan", Type: store.AttrNumber, CreatedAt: t0})
	wantErr(t, "AttributeDeclare(other type)", err, store.ErrConflict)
	for _, bad := range []store.Attribute{
		{Name: "pl an", Type: store.AttrString, CreatedAt: t0},
		{Name: `x"); DROP TABLE contacts; --`, Type: store.AttrString, CreatedAt: t0},
		{Name: "9lives", Type: store.AttrString, CreatedAt: t0},
		{Name: "ok", Type: "date", CreatedAt: t0},
		{Name: "ok", Type: store.AttrString},
	} {
		if _, err := s.AttributeDeclare(ctx, bad); err == nil {
			t.Errorf("AttributeDeclare(%+v) = nil error", bad)
		}
	}
	// Names differing only in case are two attributes with two indexes.
	for _, a := range []store.Attribute{{Name: "Plan", Type: store.AttrNumber, CreatedAt: t0},
		{Name: "signed_up", Type: store.AttrTime, CreatedAt: t0}, {Name: "vip", Type: store.AttrBool, CreatedAt: t0}} {
		if _, err := s.AttributeDeclare(ctx, a); err != nil {
			t.Fatalf("AttributeDeclare(%+v): %v", a, err)
		}
	}
	list, err := s.AttributeList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range list {
		got = append(got, a.Name+":"+a.Type)
	}
	if want := []string{"Plan:number", "plan:string", "signed_up:time", "vip:bool"}; !slices.Equal(got, want) {
		t.Errorf("AttributeList = %v, want %v", got, want)
	}
	if err := s.AttributeDelete(ctx, "plan"); err != nil {
		t.Fatalf("AttributeDelete: %v", err)
	}
	wantErr(t, "AttributeDelete again", s.AttributeDelete(ctx, "plan"), store.ErrNotFound)
	// Declared again with another type, it gets its index again.
	if _, err := s.AttributeDeclare(ctx, store.Attribute{Name: "plan", Type: store.AttrNumber, CreatedAt: t0}); err != nil {
		t.Fatalf("AttributeDeclare after delete: %v", err)
	}
}

// testSegmentCRUD: segments are created, read, listed, renamed and deleted; names are unique.
func testSegmentCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	filter := json.RawMessage(`{"attr":"plan","eq":"pro"}`)
	a := store.Segment{ID: id.New("seg"), Name: "Pro", Filter: filter, CreatedAt: t0, UpdatedAt: t0}
	b := store.Segment{ID: id.New("seg"), Name: "Free", Filter: json.RawMessage(`{"and":[]}`), CreatedAt: t0, UpdatedAt: t0}
	for _, seg := range []store.Segment{a, b} {
		if _, err := s.SegmentCreate(ctx, seg); err != nil {
			t.Fatalf("SegmentCreate(%s): %v", seg.Name, err)
		}
	}
	jsonEq := cmp.Comparer(func(a, b json.RawMessage) bool {
		var x, y any
		return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && cmp.Equal(x, y)
	})
	got, err := s.SegmentGet(ctx, a.ID)
	if err != nil || !cmp.Equal(got, a, jsonEq) {
		t.Errorf("SegmentGet = %+v, %v; want %+v", got, err, a)
	}
	_, err = s.SegmentCreate(ctx, store.Segment{ID: id.New("seg"), Name: "Pro", Filter: filter, CreatedAt: t0, UpdatedAt: t0})
	wantErr(t, "SegmentCreate(taken name)", err, store.ErrConflict)

	list, err := s.SegmentList(ctx)
	if err != nil || !cmp.Equal(list, []store.Segment{a, b}, jsonEq) {
		t.Errorf("SegmentList = %+v, %v; want a, b", list, err)
	}

	a.Name, a.Filter, a.UpdatedAt = "Pro users", json.RawMessage(`{"attr":"plan","ne":"pro"}`), t0.Add(time.Hour)
	got, err = s.SegmentUpdate(ctx, a)
	if err != nil || !cmp.Equal(got, a, jsonEq) {
		t.Errorf("SegmentUpdate = %+v, %v; want %+v", got, err, a)
	}
	b.Name = "Pro users"
	_, err = s.SegmentUpdate(ctx, b)
	wantErr(t, "SegmentUpdate(taken name)", err, store.ErrConflict)
	_, err = s.SegmentUpdate(ctx, store.Segment{ID: id.New("seg"), Name: "x", Filter: filter, UpdatedAt: t0})
	wantErr(t, "SegmentUpdate(unknown)", err, store.ErrNotFound)

	if err := s.SegmentDelete(ctx, a.ID); err != nil {
		t.Fatalf("SegmentDelete: %v", err)
	}
	wantErr(t, "SegmentDelete again", s.SegmentDelete(ctx, a.ID), store.ErrNotFound)
	_, err = s.SegmentGet(ctx, a.ID)
	wantErr(t, "SegmentGet(deleted)", err, store.ErrNotFound)
}
