package audience_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// eachDriver runs fn on a service over each driver.
func eachDriver(t *testing.T, fn func(t *testing.T, svc *audience.Service, st store.Store, pending *pendingLog)) {
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		pl := &pendingLog{}
		svc := audience.New(audience.Config{Store: st, Now: func() time.Time { return now },
			ErasureKey: []byte("test key"), OnPending: pl.add})
		fn(t, svc, st, pl)
	})
}

type pendingLog struct {
	mu    sync.Mutex
	calls []string
}

func (p *pendingLog) add(_ context.Context, contactID string, lists []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, contactID+":"+strings.Join(lists, ","))
}

func TestEmailKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"ann@example.com":           "ann@example.com",
		"Ann@Example.COM":           "ann@example.com",
		" ann@example.com ":         "ann@example.com",
		"Ann <Ann@Example.com>":     "ann@example.com",
		"jörg@Bücher.de":            "",
		"joerg@Bücher.de":           "joerg@xn--bcher-kva.de",
		"JOERG@XN--BCHER-KVA.DE":    "joerg@xn--bcher-kva.de",
		"not-an-address":            "",
		"a@b":                       "",
		"a@example.com, b@example.": "",
	} {
		got, err := audience.EmailKey(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("EmailKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestErasedKey(t *testing.T) {
	t.Parallel()
	a := audience.ErasedKey([]byte("k1"), "ann@example.com")
	if a != audience.ErasedKey([]byte("k1"), "ann@example.com") || !strings.HasPrefix(a, "erased:") || len(a) != len("erased:")+64 {
		t.Errorf("ErasedKey = %q", a)
	}
	if a == audience.ErasedKey([]byte("k2"), "ann@example.com") || a == audience.ErasedKey([]byte("k1"), "bob@example.com") {
		t.Error("ErasedKey does not depend on the key and the address")
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]store.ContactRef{
		"ctc_01jd8x0000000000000000000a": {ID: "ctc_01jd8x0000000000000000000a"},
		"ext:u-42":                       {ExternalID: "u-42"},
		"Ann@Example.com":                {EmailKey: "ann@example.com"},
	} {
		if got, err := audience.ParseRef(in); err != nil || got != want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"ctc_short", "ext:", "ext:a\nb", "nobody", ""} {
		var ie *audience.InvalidError
		if _, err := audience.ParseRef(in); !errors.As(err, &ie) {
			t.Errorf("ParseRef(%q): %v, want an InvalidError", in, err)
		}
	}
}

func TestUpsertInvalid(t *testing.T) {
	t.Parallel()
	eachDriver(t, func(t *testing.T, svc *audience.Service, st store.Store, _ *pendingLog) {
		ctx := t.Context()
		list, err := svc.ListCreate(ctx, audience.ListInput{Name: ptr("news")})
		if err != nil {
			t.Fatal(err)
		}
		big := `{"x":"` + strings.Repeat("a", audience.MaxAttributesBytes) + `"}`
		tests := []struct {
			name  string
			item  store.ContactUpsert
			field string
		}{
			{"no email", store.ContactUpsert{}, "email"},
			{"bad email", store.ContactUpsert{Email: "ann@"}, "email"},
			{"display name", store.ContactUpsert{Email: "Ann <ann@example.com>"}, "email"},
			{"attributes not an object", store.ContactUpsert{Email: "a@example.com", Attributes: json.RawMessage(`[1]`)}, "attributes"},
			{"attributes too large", store.ContactUpsert{Email: "a@example.com", Attributes: json.RawMessage(big)}, "attributes"},
			{"attributes with NUL", store.ContactUpsert{Email: "a@example.com", Attributes: json.RawMessage(`{"a":"x\u0000"}`)}, "attributes"},
			{"timezone", store.ContactUpsert{Email: "a@example.com", Timezone: ptr("Mars/Olympus")}, "timezone"},
			{"timezone Local", store.ContactUpsert{Email: "a@example.com", Timezone: ptr("Local")}, "timezone"},
			{"locale", store.ContactUpsert{Email: "a@example.com", Locale: ptr("not a tag!")}, "locale"},
			{"name control", store.ContactUpsert{Email: "a@example.com", Name: ptr("A\x00")}, "name"},
			{"external_id too long", store.ContactUpsert{Email: "a@example.com", ExternalID: strings.Repeat("x", 300)}, "external_id"},
			{"unknown list", store.ContactUpsert{Email: "a@example.com", Lists: []string{list.ID, "lst_nope"}}, "lists[1]"},
			{"unknown unsubscribe list", store.ContactUpsert{Email: "a@example.com", Unsubscribe: []string{"lst_nope"}}, "unsubscribe[0]"},
			{"consent ip", store.ContactUpsert{Email: "a@example.com", Consent: store.Consent{IP: "300.1.1.1"}}, "consent.ip"},
		}
		for _, tc := range tests {
			res, err := svc.Upsert(ctx, []store.ContactUpsert{tc.item})
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			var ie *audience.InvalidError
			if !errors.As(res[0].Err, &ie) || ie.Problems[0].Field != tc.field {
				t.Errorf("%s: error %v, want an InvalidError at %s", tc.name, res[0].Err, tc.field)
			}
		}
		page, _, err := st.ContactList(ctx, store.ContactListParams{})
		if err != nil || len(page) != 0 {
			t.Errorf("after invalid upserts: %d contacts, %v; want none", len(page), err)
		}
	})
}

func TestUpsertBatch(t *testing.T) {
	t.Parallel()
	eachDriver(t, func(t *testing.T, svc *audience.Service, st store.Store, pl *pendingLog) {
		ctx := t.Context()
		doi, err := svc.ListCreate(ctx, audience.ListInput{Name: ptr("promo"), DoubleOptIn: ptr(true), Wording: ptr("Promotions, weekly")})
		if err != nil {
			t.Fatal(err)
		}
		res, err := svc.Upsert(ctx, []store.ContactUpsert{
			{Email: "ann@example.com", Locale: ptr("pt_br"), Timezone: ptr("Europe/Paris"), Lists: []string{doi.ID}},
			{Email: "ANN@example.com"},
			{Email: "bob@example.com", ExternalID: "u-1"},
			{Email: "cat@example.com", ExternalID: "u-1"},
			{Email: "bad"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Outcome != store.UpsertCreated || res[2].Outcome != store.UpsertCreated {
			t.Errorf("results %+v", res)
		}
		for _, i := range []int{1, 3, 4} {
			var ie *audience.InvalidError
			if !errors.As(res[i].Err, &ie) {
				t.Errorf("item %d: %v, want an InvalidError", i, res[i].Err)
			}
		}
		ann, err := svc.Contact(ctx, "Ann@Example.com")
		if err != nil || ann.Locale != "pt-BR" || ann.Timezone != "Europe/Paris" {
			t.Errorf("ann = %+v, %v", ann, err)
		}
		if len(pl.calls) != 1 || pl.calls[0] != ann.ID+":"+doi.ID {
			t.Errorf("OnPending calls %v", pl.calls)
		}
		page, _, _ := st.ContactList(ctx, store.ContactListParams{})
		if len(page) != 2 {
			t.Errorf("%d contacts, want 2", len(page))
		}
		// Too large a batch is refused whole.
		if _, err := svc.Upsert(ctx, make([]store.ContactUpsert, svc.MaxBatch()+1)); !errors.Is(err, audience.ErrBatchTooLarge) {
			t.Errorf("batch too large: %v", err)
		}
	})
}

func TestUpdateSubscribeDelete(t *testing.T) {
	t.Parallel()
	eachDriver(t, func(t *testing.T, svc *audience.Service, st store.Store, pl *pendingLog) {
		ctx := t.Context()
		doi, _ := svc.ListCreate(ctx, audience.ListInput{Name: ptr("promo"), DoubleOptIn: ptr(true)})
		if _, err := svc.UpsertOne(ctx, store.ContactUpsert{Email: "ann@example.com", ExternalID: "u-1"}); err != nil {
			t.Fatal(err)
		}
		c, _, err := svc.Update(ctx, "ext:u-1", store.ContactUpsert{Email: "ann@new.example", Name: ptr("Ann")})
		if err != nil || c.Email != "ann@new.example" || c.Name != "Ann" || c.ExternalID != "u-1" {
			t.Fatalf("Update = %+v, %v", c, err)
		}
		if _, _, err := svc.Update(ctx, "nobody@example.com", store.ContactUpsert{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Update(unknown): %v", err)
		}
		// Subscribing an unknown address creates the contact; a double opt-in sends one confirmation.
		res, err := svc.Subscribe(ctx, doi.ID, "new@example.com", audience.SubscribeParams{})
		if err != nil || res.Status != store.SubscriptionPending || !res.Changed {
			t.Fatalf("Subscribe(new) = %+v, %v", res, err)
		}
		if _, err := svc.Subscribe(ctx, doi.ID, "new@example.com", audience.SubscribeParams{}); err != nil || len(pl.calls) != 1 {
			t.Errorf("Subscribe again: %v; OnPending calls %v (want one)", err, pl.calls)
		}
		if _, err := svc.Subscribe(ctx, "lst_nope", "ann@new.example", audience.SubscribeParams{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Subscribe(unknown list): %v", err)
		}
		if _, err := svc.Subscribe(ctx, "lst_nope", "other@example.com", audience.SubscribeParams{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Subscribe(unknown list, new address): %v", err)
		}
		if _, err := svc.Contact(ctx, "other@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed subscribe created its contact: %v", err)
		}
		// Erasure needs the key; it keeps the HMAC suppression.
		noKey := audience.New(audience.Config{Store: st})
		if err := noKey.Delete(ctx, "new@example.com", true); !errors.Is(err, audience.ErrNoErasureKey) {
			t.Errorf("erase without a key: %v", err)
		}
		if err := svc.Delete(ctx, "new@example.com", true); err != nil {
			t.Fatal(err)
		}
		sup, err := st.SuppressionGet(ctx, audience.ErasedKey([]byte("test key"), "new@example.com"), "", now)
		if err != nil || sup.Reason != store.ReasonErased {
			t.Errorf("erased suppression = %+v, %v", sup, err)
		}
		if err := svc.Delete(ctx, "new@example.com", false); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Delete(erased): %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
