package notify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// setOf builds a triggerSet of ts as enabled would.
func setOf(t *testing.T, ts ...store.Trigger) *triggerSet {
	t.Helper()
	set := &triggerSet{byEvent: map[string][]*compiled{}, cancelBy: map[string][]*compiled{}, byID: map[string]*compiled{}}
	for _, tr := range ts {
		cond, err := ParseCondition(tr.Condition)
		if err != nil {
			t.Fatal(err)
		}
		ct := &compiled{t: tr, cond: cond}
		if tr.CancelIf != nil {
			for _, p := range tr.CancelIf.Match {
				k, _ := ParsePath(p)
				ct.match = append(ct.match, k)
			}
			set.cancelBy[tr.CancelIf.Event] = append(set.cancelBy[tr.CancelIf.Event], ct)
		}
		if tr.Digest != nil && tr.Digest.Key != "" {
			ct.dkey, _ = ParsePath(tr.Digest.Key)
		}
		if tr.To.Data != "" {
			ct.to, _ = ParsePath(tr.To.Data)
		}
		set.byEvent[tr.Event] = append(set.byEvent[tr.Event], ct)
	}
	return set
}

func event(t *testing.T, name, data string, occurred, now time.Time, contact *ContactInput) (store.EventIn, any) {
	t.Helper()
	var in store.EventIn
	d, err := checkEvent(&in, &EventInput{Name: name, Data: json.RawMessage(data), OccurredAt: &occurred, Contact: contact}, "key_1", now, 0)
	if err != nil {
		t.Fatal(err)
	}
	return in, d
}

func TestMatch(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cart := store.Trigger{ID: "trg_cart", Event: "cart.abandoned", Delay: time.Hour,
		CancelIf: &store.TriggerCancel{Event: "order.paid", Match: []string{"cart_id"}}, To: store.TriggerTo{Contact: true}}
	big := store.Trigger{ID: "trg_big", Event: "order.paid", Condition: json.RawMessage(`{"data": "total", "ge": 100}`),
		To: store.TriggerTo{Addresses: []string{"ops@shop.example"}}, Cap: time.Hour}
	digest := store.Trigger{ID: "trg_digest", Event: "order.paid", Digest: &store.TriggerDigest{Key: "seller.id", Window: time.Hour},
		To: store.TriggerTo{Data: "seller.email"}, Cap: 24 * time.Hour}
	set := setOf(t, cart, big, digest)

	// An abandoned cart an hour and a half ago is due now, with its cancel key.
	ab, d := event(t, "cart.abandoned", `{"cart_id": 42}`, now.Add(-90*time.Minute), now, &ContactInput{Email: "Ann@Example.com"})
	set.match(&ab, d, now)
	if len(ab.Actions) != 1 || ab.Actions[0].TriggerID != "trg_cart" || !ab.Actions[0].DueAt.Equal(now) ||
		ab.Actions[0].CancelKey == "" || len(ab.Cancels) != 0 {
		t.Fatalf("cart.abandoned: %+v", ab)
	}
	// One of ten minutes ago is due in 50 minutes.
	ab2, d := event(t, "cart.abandoned", `{"cart_id": 43}`, now.Add(-10*time.Minute), now, nil)
	set.match(&ab2, d, now)
	if got := ab2.Actions[0].DueAt; !got.Equal(now.Add(50 * time.Minute)) {
		t.Fatalf("due %v", got)
	}

	// order.paid of cart 42: cancels the first cart, not the second; the big order trigger
	// matches at 100 and more; the digest is keyed by the seller.
	paid, d := event(t, "order.paid", `{"cart_id": 42, "total": 150, "seller": {"id": "s1", "email": "Sel@shop.example"}}`, now, now, nil)
	set.match(&paid, d, now)
	if len(paid.Cancels) != 1 || paid.Cancels[0] != ab.Actions[0].CancelKey || paid.Cancels[0] == ab2.Actions[0].CancelKey {
		t.Fatalf("cancels %v, want the key of cart 42 %q", paid.Cancels, ab.Actions[0].CancelKey)
	}
	if len(paid.Actions) != 2 || paid.Actions[0].TriggerID != "trg_big" || paid.Actions[1].TriggerID != "trg_digest" {
		t.Fatalf("actions %+v", paid.Actions)
	}
	if a := paid.Actions[1]; a.DigestKey == "" || !a.DueAt.Equal(now.Add(time.Hour)) || !strings.HasPrefix(a.CapKey, "trg_digest:") {
		t.Fatalf("digest action %+v", a)
	}
	small, d := event(t, "order.paid", `{"cart_id": 7, "total": 99, "seller": {"id": "s1", "email": "sel@shop.example"}}`, now, now, nil)
	set.match(&small, d, now)
	if len(small.Actions) != 1 || small.Actions[0].DigestKey != paid.Actions[1].DigestKey ||
		small.Actions[0].CapKey != paid.Actions[1].CapKey {
		t.Fatalf("same seller: %+v vs %+v", small.Actions, paid.Actions)
	}
	other, d := event(t, "order.paid", `{"total": 5, "seller": {"id": "s2"}}`, now, now, nil)
	set.match(&other, d, now)
	if len(other.Cancels) != 0 || other.Actions[0].DigestKey == paid.Actions[1].DigestKey {
		t.Fatalf("other seller: %+v", other)
	}
	// A number and a string are different values of a key.
	paidStr, d := event(t, "order.paid", `{"cart_id": "42"}`, now, now, nil)
	set.match(&paidStr, d, now)
	if len(paidStr.Cancels) != 1 || paidStr.Cancels[0] == ab.Actions[0].CancelKey {
		t.Fatalf("cancels %v", paidStr.Cancels)
	}
}

func TestCheckEvent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	future, old := now.Add(time.Hour), now.Add(-31*24*time.Hour)
	long := strings.Repeat("a", 129)
	cases := []struct {
		ev    EventInput
		field string
	}{
		{EventInput{}, "name"},
		{EventInput{Name: long}, "name"},
		{EventInput{Name: "Order.Paid"}, "name"},
		{EventInput{Name: "order paid"}, "name"},
		{EventInput{Name: "a", Data: json.RawMessage(`[1]`)}, "data"},
		{EventInput{Name: "a", Data: json.RawMessage(`"x"`)}, "data"},
		{EventInput{Name: "a", Data: json.RawMessage(`{"a": "\u0000"}`)}, "data"},
		{EventInput{Name: "a", Data: json.RawMessage(`{"a": "` + strings.Repeat("x", MaxEventData) + `"}`)}, "data"},
		{EventInput{Name: "a", Contact: &ContactInput{}}, "contact"},
		{EventInput{Name: "a", Contact: &ContactInput{Email: "not an address"}}, "contact.email"},
		{EventInput{Name: "a", Contact: &ContactInput{ExternalID: "u1", Timezone: ptr("Mars/Olympus")}}, "contact.timezone"},
		{EventInput{Name: "a", Contact: &ContactInput{Email: "a@b.example", Attributes: json.RawMessage(`[]`)}}, "contact.attributes"},
		{EventInput{Name: "a", OccurredAt: &future}, "occurred_at"},
		{EventInput{Name: "a", OccurredAt: &old}, "occurred_at"},
		{EventInput{Name: "a", ID: strings.Repeat("i", 256)}, "id"},
		{EventInput{Name: "a", ID: "x\ny"}, "id"},
	}
	for i, c := range cases {
		var in store.EventIn
		_, err := checkEvent(&in, &c.ev, "", now, 30*24*time.Hour)
		var me *message.Error
		if !errors.As(err, &me) || me.Kind != message.KindInvalid || len(me.Problems) == 0 || me.Problems[0].Field != c.field {
			t.Errorf("case %d: err %v, want a problem at %s", i, err, c.field)
		}
	}
	var in store.EventIn
	occurred := now.Add(-time.Hour)
	if _, err := checkEvent(&in, &EventInput{Name: "user.signed_in", ID: "c-1", Contact: &ContactInput{Email: " Ann@Example.com",
		Locale: ptr("pt-br")}, OccurredAt: &occurred}, "key_1", now, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if string(in.Event.Data) != "{}" || in.Event.ClientID != "c-1" || in.Event.APIKeyID != "key_1" || !in.Event.OccurredAt.Equal(occurred) ||
		in.Contact.EmailKey != "ann@example.com" || *in.Contact.Locale != "pt-BR" || !in.Contact.LastActiveAt.Equal(occurred) {
		t.Fatalf("%+v %+v", in.Event, in.Contact)
	}
}

func ptr[T any](v T) *T { return &v }
