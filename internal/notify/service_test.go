package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/audience"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
	"github.com/postie/postie/internal/templates"
)

// testStore is what a driver gives the tests.
type testStore = store.Store

// clock is a test clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var start = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)

// bundle is a notify service on a real store, with the template catalog, the message front
// door (list mail configured) and the audience, on a test clock.
type bundle struct {
	st       testStore
	clock    *clock
	cat      *templates.Catalog
	msgs     *message.Service
	contacts *audience.Service
	svc      *notify.Service
	cfg      notify.Config
}

// drivers runs f on each driver (drivertest.Each).
func drivers(t *testing.T, f func(t *testing.T, b *bundle)) {
	t.Helper()
	drivertest.Each(t, func(t *testing.T, st store.Store) { f(t, setup(t, st)) })
}

func setup(t testing.TB, st testStore) *bundle {
	t.Helper()
	b := &bundle{st: st, clock: &clock{t: start}}
	b.cat = templates.New(templates.Config{Store: st, Now: b.clock.Now})
	keys, err := audience.NewKeys([]audience.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)}}, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b.msgs = message.New(message.Config{
		Store: st, Templates: b.cat, DefaultFrom: "Shop <shop@shop.example>",
		MaxRecipients: 50, MaxMessageSize: 1 << 20, MaxScheduleAhead: 30 * 24 * time.Hour,
		MessageTTL: 24 * time.Hour, MaxAttempts: 4,
		Broadcast: message.BroadcastConfig{Links: audience.NewLinks(keys, "https://u.example.com/"), PostalAddress: "Shop Inc.\n1 Main St"},
	})
	b.contacts = audience.New(audience.Config{Store: st, Now: b.clock.Now})
	b.cfg = notify.Config{Store: st, Messages: b.msgs, Templates: b.cat, Owner: "node-a/1/aa", Lease: time.Minute, Now: b.clock.Now}
	b.svc = notify.New(b.cfg)
	b.template(t, "order", `{"type":"object","required":["order"]}`, "Order {{.data.order.id}}",
		"<p>Hello {{default \"there\" (index .contact \"name\")}}, order {{.data.order.id}} ({{.event.name}} {{.event.id}})</p>")
	b.template(t, "cart", "", "Your cart {{.data.cart_id}}", "<p>Cart {{.data.cart_id}} waits</p>")
	b.template(t, "digest", "", "{{len .events}} orders", "<p>{{range .events}}[{{.order.id}}]{{end}}</p>")
	return b
}

func (b *bundle) template(t testing.TB, name, schema, subject, html string) {
	t.Helper()
	tpl := store.Template{Name: name, Subject: subject, HTML: html, Origin: store.TemplateOriginAPI}
	if schema != "" {
		tpl.Schema = json.RawMessage(schema)
	}
	if _, _, err := b.cat.Put(t.Context(), tpl); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func (b *bundle) trigger(t *testing.T, in notify.TriggerInput) store.Trigger {
	t.Helper()
	if in.Name == nil {
		in.Name = ptr("test")
	}
	tr, err := b.svc.CreateTrigger(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// send accepts one event at the clock's time and returns its outcome.
func (b *bundle) send(t *testing.T, ev notify.EventInput) notify.Accepted {
	t.Helper()
	res, err := b.svc.Accept(t.Context(), []notify.EventInput{ev}, "key_1")
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Fatalf("event %s: %v", ev.Name, res[0].Err)
	}
	return res[0]
}

// tick works the actions due at the clock's time.
func (b *bundle) tick(t *testing.T) {
	t.Helper()
	for {
		n, err := b.svc.Tick(t.Context(), b.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// sent is a message stored: its recipients and its MIME.
type sent struct {
	msg store.Message
	raw string
}

// messages returns every message stored, by recipient.
func (b *bundle) messages(t *testing.T) map[string][]sent {
	t.Helper()
	ms, err := b.st.MessageList(t.Context(), store.MessageListParams{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]sent{}
	for _, m := range ms {
		full, err := b.st.MessageGet(t.Context(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := b.st.MessageRaw(t.Context(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range full.Recipients {
			out[r] = append(out[r], sent{msg: full, raw: string(raw)})
		}
	}
	return out
}

// action returns the one action of an event.
func (b *bundle) action(t *testing.T, evtID string) store.Action {
	t.Helper()
	e, err := b.st.EventGet(t.Context(), evtID)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Actions) != 1 {
		t.Fatalf("event %s has %d actions: %+v", evtID, len(e.Actions), e.Actions)
	}
	return e.Actions[0]
}

// An event → its trigger's mail, stored for the event's contact, carrying the event and the
// trigger, rendered with .data, .event and .contact; the contact is upserted and made active;
// a repeat of the event's id is a duplicate that triggers nothing.
func TestEventToMail(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		tr := b.trigger(t, notify.TriggerInput{Event: ptr("order.paid"), Template: ptr("order"),
			To: &store.TriggerTo{Contact: true}, Condition: json.RawMessage(`{"data": "order.total", "ge": 10}`)})
		occurred := start.Add(-time.Minute)
		ev := notify.EventInput{ID: "o-1", Name: "order.paid", Contact: &notify.ContactInput{Email: "Ann@Example.com", Name: ptr("Ann")},
			Data: json.RawMessage(`{"order": {"id": "A-1", "total": 12}}`), OccurredAt: &occurred}
		got := b.send(t, ev)
		if got.Duplicate || got.ContactID == "" || len(got.Actions) != 1 {
			t.Fatalf("accepted %+v", got)
		}
		// Below the condition: no action.
		small := b.send(t, notify.EventInput{Name: "order.paid", Contact: &notify.ContactInput{Email: "bob@example.com"},
			Data: json.RawMessage(`{"order": {"id": "A-2", "total": 5}}`)})
		if len(small.Actions) != 0 {
			t.Fatalf("a small order matched: %+v", small)
		}
		b.tick(t)
		ms := b.messages(t)
		if len(ms["Ann@Example.com"])+len(ms["ann@example.com"]) != 1 || len(ms) != 1 {
			t.Fatalf("messages %v", ms)
		}
		var m sent
		for _, v := range ms {
			m = v[0]
		}
		if m.msg.EventID != got.ID || m.msg.TriggerID != tr.ID || m.msg.Subject != "Order A-1" || m.msg.Stream != store.StreamTransactional {
			t.Fatalf("message %+v", m.msg)
		}
		if !strings.Contains(m.raw, "Hello Ann, order A-1 (order.paid "+got.ID+")") {
			t.Fatalf("body %s", m.raw)
		}
		a := b.action(t, got.ID)
		if a.Status != store.ActionDone || !slices.Equal(a.MessageIDs, []string{m.msg.ID}) {
			t.Fatalf("action %+v", a)
		}
		c, err := b.st.ContactGet(t.Context(), store.ContactRef{ID: got.ContactID})
		if err != nil || c.Name != "Ann" || !c.LastActiveAt.Equal(occurred) {
			t.Fatalf("contact %+v, %v", c, err)
		}
		// An earlier event does not move last_active_at back.
		earlier := start.Add(-time.Hour)
		b.send(t, notify.EventInput{Name: "user.signed_in", Contact: &notify.ContactInput{Email: "ann@example.com"}, OccurredAt: &earlier})
		if c, _ := b.st.ContactGet(t.Context(), store.ContactRef{ID: got.ContactID}); !c.LastActiveAt.Equal(occurred) {
			t.Fatalf("last_active_at moved back to %v", c.LastActiveAt)
		}
		// The same id again: the first event, nothing new.
		dup := b.send(t, ev)
		if !dup.Duplicate || dup.ID != got.ID {
			t.Fatalf("duplicate %+v, want the first %s", dup, got.ID)
		}
		b.tick(t)
		if n := len(b.messages(t)); n != 1 {
			t.Fatalf("%d recipients after the duplicate", n)
		}
	})
}

// A delayed trigger with cancel-if: a cancel in time stops the mail; one after the due time,
// or for another cart, does not.
func TestDelayAndCancel(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		b.trigger(t, notify.TriggerInput{Event: ptr("cart.abandoned"), Template: ptr("cart"), To: &store.TriggerTo{Contact: true},
			Delay: ptr("1h"), CancelIf: &store.TriggerCancel{Event: "order.paid", Match: []string{"cart_id"}}})
		cart := func(email, cartID string) notify.Accepted {
			return b.send(t, notify.EventInput{Name: "cart.abandoned", Contact: &notify.ContactInput{Email: email},
				Data: json.RawMessage(`{"cart_id": "` + cartID + `"}`)})
		}
		paid := func(cartID string) {
			b.send(t, notify.EventInput{Name: "order.paid", Data: json.RawMessage(`{"cart_id": "` + cartID + `"}`)})
		}
		ann, bob, cid := cart("ann@example.com", "c1"), cart("bob@example.com", "c2"), cart("cid@example.com", "c3")
		b.clock.Set(start.Add(30 * time.Minute))
		paid("c1")   // in time
		paid("c404") // another cart
		b.tick(t)
		if n := len(b.messages(t)); n != 0 {
			t.Fatalf("%d messages before the delay", n)
		}
		b.clock.Set(start.Add(61 * time.Minute))
		paid("c3") // after the due time: too late to cancel
		b.tick(t)
		ms := b.messages(t)
		if len(ms["ann@example.com"]) != 0 || len(ms["bob@example.com"]) != 1 || len(ms["cid@example.com"]) != 1 {
			t.Fatalf("messages %v", ms)
		}
		if a := b.action(t, ann.ID); a.Status != store.ActionCancelled {
			t.Fatalf("ann's action %+v", a)
		}
		if a := b.action(t, bob.ID); a.Status != store.ActionDone || !a.DueAt.Equal(start.Add(time.Hour)) {
			t.Fatalf("bob's action %+v", a)
		}
		if a := b.action(t, cid.ID); a.Status != store.ActionDone {
			t.Fatalf("cid's action %+v", a)
		}
	})
}

// A digest collects a key's events for its window into one message listing them; a trigger to
// an address in the data sends there.
func TestDigest(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		b.trigger(t, notify.TriggerInput{Event: ptr("order.paid"), Template: ptr("digest"), To: &store.TriggerTo{Data: "seller.email"},
			Digest: &notify.DigestInput{Key: "seller.id", Window: "1h"}})
		order := func(id, seller string) notify.Accepted {
			return b.send(t, notify.EventInput{Name: "order.paid",
				Data: json.RawMessage(`{"order": {"id": "` + id + `"}, "seller": {"id": "` + seller + `", "email": "` + seller + `@shop.example"}}`)})
		}
		first := order("A-1", "s1")
		b.clock.Set(start.Add(10 * time.Minute))
		second := order("A-2", "s1")
		order("B-1", "s2")
		b.clock.Set(start.Add(50 * time.Minute))
		order("A-3", "s1")
		if !slices.Equal(first.Actions, second.Actions) {
			t.Fatalf("one digest: %v and %v", first.Actions, second.Actions)
		}
		b.tick(t)
		if n := len(b.messages(t)); n != 0 {
			t.Fatalf("%d messages before the window ended", n)
		}
		b.clock.Set(start.Add(time.Hour))
		b.tick(t)
		ms := b.messages(t)
		s1 := ms["s1@shop.example"]
		if len(s1) != 1 || len(ms) != 1 {
			t.Fatalf("messages %v", ms)
		}
		if s1[0].msg.Subject != "3 orders" || !strings.Contains(s1[0].raw, "[A-1][A-2][A-3]") {
			t.Fatalf("digest %q %s", s1[0].msg.Subject, s1[0].raw)
		}
		// s2's window started with its first event, ten minutes later.
		b.clock.Set(start.Add(70 * time.Minute))
		b.tick(t)
		s2 := b.messages(t)["s2@shop.example"]
		if len(s2) != 1 || s2[0].msg.Subject != "1 orders" {
			t.Fatalf("s2's digest %v", s2)
		}
		// A later event starts a new digest.
		late := order("A-4", "s1")
		if slices.Equal(late.Actions, first.Actions) {
			t.Fatal("an event joined a digest already sent")
		}
	})
}

// The frequency cap: one send per contact per period.
func TestCap(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		b.trigger(t, notify.TriggerInput{Event: ptr("user.signed_in"), Template: ptr("cart"), To: &store.TriggerTo{Contact: true}, Cap: ptr("1d")})
		signIn := func() notify.Accepted {
			a := b.send(t, notify.EventInput{Name: "user.signed_in", Contact: &notify.ContactInput{Email: "ann@example.com"},
				Data: json.RawMessage(`{"cart_id": "x"}`)})
			b.tick(t)
			return a
		}
		first := signIn()
		b.clock.Set(start.Add(time.Hour))
		second := signIn()
		b.clock.Set(start.Add(25 * time.Hour))
		third := signIn()
		if a := b.action(t, first.ID); a.Status != store.ActionDone {
			t.Fatalf("first %+v", a)
		}
		if a := b.action(t, second.ID); a.Status != store.ActionCapped || len(a.MessageIDs) != 0 {
			t.Fatalf("second %+v", a)
		}
		if a := b.action(t, third.ID); a.Status != store.ActionDone {
			t.Fatalf("third %+v", a)
		}
		if n := len(b.messages(t)["ann@example.com"]); n != 2 {
			t.Fatalf("%d messages", n)
		}
	})
}

// honour_unsubscribes: a broadcast trigger (honouring by default) skips a contact who
// unsubscribed from broadcast mail; a transactional one (not honouring) still sends.
func TestHonourUnsubscribes(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		news := b.trigger(t, notify.TriggerInput{Event: ptr("user.signed_in"), Template: ptr("cart"), To: &store.TriggerTo{Contact: true},
			Stream: ptr(store.StreamBroadcast)})
		reset := b.trigger(t, notify.TriggerInput{Event: ptr("user.signed_in"), Template: ptr("cart"), To: &store.TriggerTo{Contact: true}})
		if !news.HonourUnsubscribes || reset.HonourUnsubscribes {
			t.Fatalf("defaults: broadcast %v, transactional %v", news.HonourUnsubscribes, reset.HonourUnsubscribes)
		}
		if err := b.st.SuppressionUpsert(t.Context(), []store.Suppression{{Email: "ann@example.com", Scope: store.ScopeBroadcast,
			Reason: store.ReasonUnsubscribe, CreatedAt: start}}); err != nil {
			t.Fatal(err)
		}
		for _, email := range []string{"ann@example.com", "bob@example.com"} {
			b.send(t, notify.EventInput{Name: "user.signed_in", Contact: &notify.ContactInput{Email: email}, Data: json.RawMessage(`{"cart_id": "x"}`)})
		}
		b.tick(t)
		ms := b.messages(t)
		streams := func(email string) []string {
			var out []string
			for _, m := range ms[email] {
				out = append(out, m.msg.Stream)
			}
			slices.Sort(out)
			return out
		}
		if got := streams("ann@example.com"); !slices.Equal(got, []string{store.StreamTransactional}) {
			t.Fatalf("ann got %v", got)
		}
		if got := streams("bob@example.com"); !slices.Equal(got, []string{store.StreamBroadcast, store.StreamTransactional}) {
			t.Fatalf("bob got %v", got)
		}
	})
}

// A trigger to a list sends to its subscribed contacts (each rendered with their contact);
// one to fixed addresses to each of them; one to a data path to the address there.
func TestToListAddressesAndData(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		name := "Staff"
		staff, err := b.contacts.ListCreate(t.Context(), audience.ListInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ email, name string }{{"ops1@shop.example", "Ops One"}, {"ops2@shop.example", "Ops Two"}, {"gone@shop.example", "Gone"}} {
			if _, err := b.contacts.UpsertOne(t.Context(), store.ContactUpsert{Email: c.email, Name: &c.name, Lists: []string{staff.ID}}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.contacts.Subscribe(t.Context(), staff.ID, "gone@shop.example", audience.SubscribeParams{Status: store.SubscriptionUnsubscribed}); err != nil {
			t.Fatal(err)
		}
		b.trigger(t, notify.TriggerInput{Event: ptr("seller.registered"), Template: ptr("order"), To: &store.TriggerTo{List: staff.ID}})
		b.trigger(t, notify.TriggerInput{Event: ptr("seller.registered"), Template: ptr("cart"),
			To: &store.TriggerTo{Addresses: []string{"audit@shop.example", "Legal <legal@shop.example>"}}})
		b.trigger(t, notify.TriggerInput{Event: ptr("seller.registered"), Template: ptr("cart"), To: &store.TriggerTo{Data: "seller.email"}})
		b.send(t, notify.EventInput{Name: "seller.registered",
			Data: json.RawMessage(`{"order": {"id": "S-1"}, "cart_id": "-", "seller": {"email": "new@seller.example"}}`)})
		b.tick(t)
		ms := b.messages(t)
		for _, want := range []string{"ops1@shop.example", "ops2@shop.example", "audit@shop.example", "legal@shop.example", "new@seller.example"} {
			if len(ms[want]) != 1 {
				t.Errorf("%s got %d messages", want, len(ms[want]))
			}
		}
		if len(ms) != 5 {
			t.Fatalf("messages to %d addresses: %v", len(ms), ms)
		}
		if !strings.Contains(ms["ops2@shop.example"][0].raw, "Hello Ops Two") {
			t.Fatalf("list member not rendered with their contact: %s", ms["ops2@shop.example"][0].raw)
		}
	})
}

// A restart: actions claimed by a node that died are finished by a new service on the same
// store once their leases end, and not before.
func TestRestartFinishesLeasedActions(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		b.trigger(t, notify.TriggerInput{Event: ptr("cart.abandoned"), Template: ptr("cart"), To: &store.TriggerTo{Contact: true}, Delay: ptr("10m")})
		for _, email := range []string{"a@example.com", "b@example.com"} {
			b.send(t, notify.EventInput{Name: "cart.abandoned", Contact: &notify.ContactInput{Email: email}, Data: json.RawMessage(`{"cart_id": "c"}`)})
		}
		due := start.Add(10 * time.Minute)
		// The node that dies: it claims the due actions and never finishes them.
		claimed, err := b.st.ActionClaim(t.Context(), store.ActionClaimParams{Owner: "dead/1/x", Limit: 10, Now: due, LeaseUntil: due.Add(time.Minute)})
		if err != nil || len(claimed) != 2 {
			t.Fatalf("claimed %d, %v", len(claimed), err)
		}
		cfg := b.cfg
		cfg.Owner = "node-b/2/bb"
		b.svc = notify.New(cfg)
		b.clock.Set(due.Add(30 * time.Second))
		b.tick(t)
		if n := len(b.messages(t)); n != 0 {
			t.Fatalf("%d messages while the leases hold", n)
		}
		b.clock.Set(due.Add(time.Minute + time.Second))
		b.tick(t)
		ms := b.messages(t)
		if len(ms["a@example.com"]) != 1 || len(ms["b@example.com"]) != 1 {
			t.Fatalf("messages %v", ms)
		}
	})
}

// Bad triggers are refused naming the field, and nothing is stored.
func TestTriggerRefusesBadInput(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		good := func() notify.TriggerInput {
			return notify.TriggerInput{Name: ptr("t"), Event: ptr("order.paid"), Template: ptr("order"), To: &store.TriggerTo{Contact: true}}
		}
		tests := []struct {
			name   string
			change func(*notify.TriggerInput)
			field  string
			text   string
		}{
			{"no name", func(in *notify.TriggerInput) { in.Name = ptr("") }, "name", "required"},
			{"bad event", func(in *notify.TriggerInput) { in.Event = ptr("Order Paid") }, "event", "a-z"},
			{"unknown template", func(in *notify.TriggerInput) { in.Template = ptr("nope") }, "template", "no such template"},
			{"bad condition", func(in *notify.TriggerInput) {
				in.Condition = json.RawMessage(`{"and": [{"data": "a", "gt": true}]}`)
			}, "condition.and[0].gt", "not an operator of a bool"},
			{"no recipient", func(in *notify.TriggerInput) { in.To = &store.TriggerTo{} }, "to", "exactly one"},
			{"two recipients", func(in *notify.TriggerInput) { in.To = &store.TriggerTo{Contact: true, Data: "x"} }, "to", "exactly one"},
			{"bad address", func(in *notify.TriggerInput) { in.To = &store.TriggerTo{Addresses: []string{"ok@x.example", "nope"}} }, "to.addresses[1]", ""},
			{"unknown list", func(in *notify.TriggerInput) { in.To = &store.TriggerTo{List: "lst_00000000000000000000000000"} }, "to.list", "no such list"},
			{"bad data path", func(in *notify.TriggerInput) { in.To = &store.TriggerTo{Data: "seller..email"} }, "to.data", "path"},
			{"bad delay", func(in *notify.TriggerInput) { in.Delay = ptr("an hour") }, "delay", "duration"},
			{"long delay", func(in *notify.TriggerInput) { in.Delay = ptr("31d") }, "delay", "30 days"},
			{"cancel without delay", func(in *notify.TriggerInput) {
				in.CancelIf = &store.TriggerCancel{Event: "order.paid", Match: []string{"cart_id"}}
			}, "cancel_if", "needs a delay"},
			{"cancel without match", func(in *notify.TriggerInput) {
				in.Delay, in.CancelIf = ptr("1h"), &store.TriggerCancel{Event: "order.paid"}
			}, "cancel_if.match", "required"},
			{"digest without window", func(in *notify.TriggerInput) { in.Digest = &notify.DigestInput{Key: "seller.id"} }, "digest.window", ""},
			{"digest with delay", func(in *notify.TriggerInput) {
				in.Delay, in.Digest = ptr("1h"), &notify.DigestInput{Window: "1h"}
			}, "delay", "digest"},
			{"bad cap", func(in *notify.TriggerInput) { in.Cap = ptr("forever") }, "cap", "duration"},
			{"bad stream", func(in *notify.TriggerInput) { in.Stream = ptr("bulk") }, "stream", "transactional"},
			{"bad from", func(in *notify.TriggerInput) { in.From = ptr("not an address") }, "from", ""},
			{"bad tag", func(in *notify.TriggerInput) { in.Tags = &[]string{""} }, "tags[0]", "tag"},
		}
		for _, tt := range tests {
			in := good()
			tt.change(&in)
			_, err := b.svc.CreateTrigger(t.Context(), in)
			var me *message.Error
			if !errors.As(err, &me) || me.Kind != message.KindInvalid {
				t.Errorf("%s: err %v, want invalid input", tt.name, err)
				continue
			}
			found := false
			for _, p := range me.Problems {
				found = found || p.Field == tt.field && strings.Contains(p.Message, tt.text)
			}
			if !found {
				t.Errorf("%s: problems %+v, want %s containing %q", tt.name, me.Problems, tt.field, tt.text)
			}
		}
		if page, _, err := b.st.TriggerList(t.Context(), store.TriggerListParams{}); err != nil || len(page) != 0 {
			t.Fatalf("triggers stored from bad input: %d, %v", len(page), err)
		}
	})
}

// finishSignal is a real store that reports each ActionFinish it applied.
type finishSignal struct {
	testStore
	done chan []store.ActionFinishResult
}

func (f *finishSignal) ActionFinish(ctx context.Context, now time.Time, p []store.ActionFinishParams) ([]store.ActionFinishResult, error) {
	res, err := f.testStore.ActionFinish(ctx, now, p)
	if err == nil {
		f.done <- res
	}
	return res, err
}

// Serve works an action as soon as its event is accepted (no poll to wait for), and hands its
// leases back when it stops.
func TestServe(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		sig := &finishSignal{testStore: b.st, done: make(chan []store.ActionFinishResult, 10)}
		cfg := b.cfg
		cfg.Store, cfg.Poll = sig, time.Hour
		svc := notify.New(cfg)
		if _, err := svc.CreateTrigger(t.Context(), notify.TriggerInput{Name: ptr("t"), Event: ptr("user.signed_in"),
			Template: ptr("cart"), To: &store.TriggerTo{Contact: true}}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		served := make(chan error, 1)
		go func() { served <- svc.Serve(ctx) }()
		res, err := svc.Accept(t.Context(), []notify.EventInput{{Name: "user.signed_in",
			Contact: &notify.ContactInput{Email: "ann@example.com"}, Data: json.RawMessage(`{"cart_id": "x"}`)}}, "key_1")
		if err != nil || res[0].Err != nil {
			t.Fatal(err, res)
		}
		select {
		case fin := <-sig.done:
			if len(fin) != 1 || !fin[0].Applied || fin[0].Status != store.ActionDone {
				t.Fatalf("finished %+v", fin)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the action was not worked")
		}
		cancel()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		if n := len(b.messages(t)["ann@example.com"]); n != 1 {
			t.Fatalf("%d messages", n)
		}
	})
}

// An action whose message cannot be composed (the event's data fails the template's schema)
// fails with the reason; one with nobody to send to is skipped with the reason.
func TestActionFailedAndSkipped(t *testing.T) {
	t.Parallel()
	drivers(t, func(t *testing.T, b *bundle) {
		b.trigger(t, notify.TriggerInput{Event: ptr("order.paid"), Template: ptr("order"), To: &store.TriggerTo{Contact: true}})
		b.trigger(t, notify.TriggerInput{Event: ptr("seller.paid"), Template: ptr("cart"), To: &store.TriggerTo{Data: "seller.email"}})
		bad := b.send(t, notify.EventInput{Name: "order.paid", Contact: &notify.ContactInput{Email: "ann@example.com"}, Data: json.RawMessage(`{"total": 1}`)})
		nobody := b.send(t, notify.EventInput{Name: "order.paid", Data: json.RawMessage(`{"order": {"id": "A-1"}}`)})
		noAddr := b.send(t, notify.EventInput{Name: "seller.paid", Data: json.RawMessage(`{"cart_id": "x"}`)})
		b.tick(t)
		if a := b.action(t, bad.ID); a.Status != store.ActionFailed || !strings.Contains(a.Reason, "order") {
			t.Fatalf("bad data: %+v", a)
		}
		if a := b.action(t, nobody.ID); a.Status != store.ActionSkipped || !strings.Contains(a.Reason, "no contact") {
			t.Fatalf("no contact: %+v", a)
		}
		if a := b.action(t, noAddr.ID); a.Status != store.ActionSkipped || !strings.Contains(a.Reason, "seller.email") {
			t.Fatalf("no address: %+v", a)
		}
		if n := len(b.messages(t)); n != 0 {
			t.Fatalf("%d messages", n)
		}
	})
}
