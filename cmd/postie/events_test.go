package main_test

// Events in, notifications out, through the real binary on both drivers: application events
// posted over the API become the right mails to the right people at a loopback relay, delayed
// ones wait and are cancelled by a later event, and every outcome is reported to loopback
// receivers that verify the Standard Webhooks signature (webhookrecv_test.go), through a SIGKILL
// and a receiver down long enough for its endpoint to be disabled, then replayed.

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// eventsEnv is the environment of the events tests' nodes: webhooks may reach loopback
// receivers over plain http, and are retried on a ladder of a few seconds rather than a day.
func eventsEnv(env ...string) []string {
	return append([]string{"POSTIE_LOG_LEVEL=info", "POSTIE_WEBHOOK_ALLOW=loopback", "POSTIE_WEBHOOK_ALLOW_HTTP=true",
		"POSTIE_WEBHOOK_RETRY_DELAYS=100ms,200ms,400ms,800ms"}, env...)
}

// eachDriver runs test as parallel subtests on SQLite (the node's embedded default) and on a
// fresh PostgreSQL database (skipped, saying why, without TEST_DATABASE_URL); db is the
// environment that selects it.
func eachDriver(t *testing.T, test func(t *testing.T, db []string)) {
	t.Helper()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			var db []string
			if driver == "postgres" {
				db = []string{"POSTIE_DATABASE_URL=" + pgtest.URL(t)}
			}
			test(t, db)
		})
	}
}

// makeWebhook creates an endpoint of types at the receiver and gives the receiver its secret.
func makeWebhook(t *testing.T, p *proc, r *webhookReceiver, types ...string) string {
	t.Helper()
	var w struct{ ID, Secret string }
	call(t, p, "POST", "/v1/webhooks", map[string]any{"url": r.url("/hook"), "types": types,
		"description": "e2e receiver"}, 201, &w)
	if !strings.HasPrefix(w.Secret, "whsec_") || !strings.HasPrefix(w.ID, "whk_") {
		t.Fatalf("webhook created as %+v", w)
	}
	r.setSecret(w.Secret)
	return w.ID
}

// putTemplate stores a text template whose subject is subject.
func putTemplate(t *testing.T, p *proc, name, subject string) {
	t.Helper()
	call(t, p, "PUT", "/v1/templates/"+name, map[string]any{"subject": subject,
		"text": "Hello,\n\nthis is about " + subject + ".\n"}, 201, nil)
}

// makeTrigger creates a trigger and returns its id.
func makeTrigger(t *testing.T, p *proc, trigger map[string]any) string {
	t.Helper()
	var tr struct{ ID string }
	call(t, p, "POST", "/v1/triggers", trigger, 201, &tr)
	if !strings.HasPrefix(tr.ID, "trg_") {
		t.Fatalf("trigger created with id %q", tr.ID)
	}
	return tr.ID
}

// eventResult is the answer for one accepted event.
type eventResult struct {
	ID        string          `json:"id"`
	Duplicate bool            `json:"duplicate"`
	ContactID string          `json:"contact_id"`
	Actions   []string        `json:"actions"`
	Error     json.RawMessage `json:"error"`
}

// eventView is the part of an event resource the tests read.
type eventView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Actions []struct {
		ID         string    `json:"id"`
		TriggerID  string    `json:"trigger_id"`
		Status     string    `json:"status"`
		DueAt      time.Time `json:"due_at"`
		MessageIDs []string  `json:"message_ids"`
		Reason     string    `json:"reason"`
	} `json:"actions"`
}

// postEvents posts events in batches of up to 500 from two clients, and returns each one's
// result in order, failing the test if one is refused.
func postEvents(t *testing.T, p *proc, events []map[string]any) []eventResult {
	t.Helper()
	const size = 500
	out := make([]eventResult, len(events))
	var wg sync.WaitGroup
	errs := make(chan string, len(events)/size+1)
	sem := make(chan struct{}, 2)
	for first := 0; first < len(events); first += size {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			batch := events[first:min(first+size, len(events))]
			code, body, err := p.tryRequest("POST", "/v1/events/batch", nodeKey, map[string]any{"events": batch})
			var ans struct{ Results []eventResult }
			if err == nil {
				err = json.Unmarshal(body, &ans)
			}
			if err != nil || code != 200 || len(ans.Results) != len(batch) {
				errs <- fmt.Sprintf("events at %d: %v %d %.300s", first, err, code, body)
				return
			}
			for i, r := range ans.Results {
				if r.ID == "" || r.Error != nil {
					errs <- fmt.Sprintf("event %d refused: %s", first+i, r.Error)
				}
				out[first+i] = r
			}
		})
	}
	wg.Wait()
	close(errs)
	failIfAny(t, errs)
	return out
}

// failIfAny reports every error of errs (closed by the caller), and ends the test if there was
// one.
func failIfAny(t *testing.T, errs <-chan string) {
	t.Helper()
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// postEvent posts one event and returns its result, failing the test unless the status is want.
func postEvent(t *testing.T, p *proc, event map[string]any, want int) eventResult {
	t.Helper()
	var r eventResult
	call(t, p, "POST", "/v1/events", event, want, &r)
	return r
}

// getEvent reads one event with its actions.
func getEvent(t *testing.T, p *proc, id string) eventView {
	t.Helper()
	var e eventView
	call(t, p, "GET", "/v1/events/"+id, nil, 200, &e)
	return e
}

// subjects returns, for each recipient, the subjects of the messages the relay got, sorted.
func (r *campaignRelay) subjects() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for to, ms := range r.got {
		for _, m := range ms {
			out[to] = append(out[to], m.subject)
		}
		sort.Strings(out[to])
	}
	return out
}

// total is how many messages the relay got.
func (r *campaignRelay) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ms := range r.got {
		n += len(ms)
	}
	return n
}

// waitTotal waits until the relay has n messages.
func (r *campaignRelay) waitTotal(t *testing.T, p *proc, n int, within time.Duration) {
	t.Helper()
	waitFor(t, within, func() error {
		if got := r.total(); got < n {
			return fmt.Errorf("the relay has %d messages, want %d; the node's log: %s", got, n, tail(p.errOut(), 2000))
		}
		return nil
	})
}

// sameSubjects fails the test unless every recipient got exactly the subjects want names.
func sameSubjects(t *testing.T, got, want map[string][]string) {
	t.Helper()
	for to, w := range want {
		sort.Strings(w)
		if !slices.Equal(got[to], w) {
			t.Errorf("%s got %d messages %.200q, want %d %.200q", to, len(got[to]), got[to], len(w), w)
		}
	}
	for to, g := range got {
		if _, ok := want[to]; !ok {
			t.Errorf("%s got %d messages %.200q, want none", to, len(g), g)
		}
	}
}

// TestEventsToMail: 1,000 events of two kinds, posted in batches and one by one, through four
// triggers: a receipt to the event's contact, an alert to a fixed staff address for large
// orders (a condition on the data), a note to the seller named in the data when the order went
// through the marketplace, and a notice to two staff addresses for sellers of one country. Each
// person gets exactly the mails meant for them, a repeated event id sends nothing more, a
// receiver gets a correctly signed message.sent per mail naming its recipient, event and
// trigger, and an event.triggered per action. Meanwhile an abandoned-cart trigger (one hour
// after the event, unless an order with the same cart arrives) sends for one cart and is
// cancelled for the other. The node is built without the race detector, which slows it tenfold
// here (the other events tests run the race build).
func TestEventsToMail(t *testing.T) {
	t.Parallel()
	eachDriver(t, func(t *testing.T, db []string) {
		relay := startCampaignRelay(t, 0)
		hooks := startReceiver(t)
		p := startNodeBinary(t, plainBuild.get(t), t.TempDir(), relay, "node0.postie.test", eventsEnv(db...)...)
		began := time.Now()
		makeWebhook(t, p, hooks, "message.sent", "event.triggered")
		putTemplate(t, p, "receipt", "Receipt {{.data.order_id}}")
		putTemplate(t, p, "big-order", "Bigorder {{.data.order_id}}")
		putTemplate(t, p, "sold", "Sold {{.data.order_id}}")
		putTemplate(t, p, "new-seller", "Seller {{.data.seller.name}}")
		putTemplate(t, p, "comeback", "Comeback {{.data.cart_id}}")
		triggers := map[string]string{
			"receipt": makeTrigger(t, p, map[string]any{"name": "receipt", "event": "order.paid", "template": "receipt",
				"to": map[string]any{"contact": true}}),
			"big-order": makeTrigger(t, p, map[string]any{"name": "large orders to ops", "event": "order.paid",
				"condition": map[string]any{"data": "total", "ge": 600}, "template": "big-order",
				"to": map[string]any{"addresses": []string{"ops@shop.example"}}}),
			"sold": makeTrigger(t, p, map[string]any{"name": "tell the seller", "event": "order.paid",
				"condition": map[string]any{"data": "marketplace", "eq": true}, "template": "sold",
				"to": map[string]any{"data": "seller.email"}}),
			"new-seller": makeTrigger(t, p, map[string]any{"name": "new Korean sellers", "event": "seller.registered",
				"condition": map[string]any{"data": "seller.country", "eq": "KR"}, "template": "new-seller",
				"to": map[string]any{"addresses": []string{"ops@shop.example", "sales@shop.example"}}}),
			"comeback": makeTrigger(t, p, map[string]any{"name": "abandoned cart", "event": "cart.abandoned",
				"template": "comeback", "to": map[string]any{"contact": true}, "delay": "1h",
				"cancel_if": map[string]any{"event": "order.paid", "match": []string{"cart_id"}}}),
		}

		// The carts: abandoned an hour ago less a few seconds, so their mail is due in a few
		// seconds; one is then paid for, the other's contact pays for another cart.
		const dueIn = 4 * time.Second
		abandoned := time.Now().Add(-time.Hour + dueIn).UTC().Truncate(time.Millisecond)
		cartA := postEvent(t, p, map[string]any{"name": "cart.abandoned", "contact": map[string]any{"email": "cart-a@example.com"},
			"data": map[string]any{"cart_id": "K-A"}, "occurred_at": abandoned.Format(time.RFC3339Nano)}, 202)
		cartB := postEvent(t, p, map[string]any{"name": "cart.abandoned", "contact": map[string]any{"email": "cart-b@example.com"},
			"data": map[string]any{"cart_id": "K-B"}, "occurred_at": abandoned.Format(time.RFC3339Nano)}, 202)
		names := map[string]string{cartA.ID: "cart.abandoned", cartB.ID: "cart.abandoned"} // event id → name
		for _, c := range []struct{ email, cart, order string }{{"cart-a@example.com", "K-A", "O-A"}, {"cart-b@example.com", "K-Z", "O-Z"}} {
			r := postEvent(t, p, map[string]any{"name": "order.paid", "contact": map[string]any{"email": c.email},
				"data": map[string]any{"cart_id": c.cart, "order_id": c.order, "total": 5, "marketplace": false}}, 202)
			names[r.ID] = "order.paid"
		}

		// The 1,000 events and the mails they should make.
		want := map[string][]string{
			"cart-a@example.com": {"Receipt O-A"},
			"cart-b@example.com": {"Comeback K-B", "Receipt O-Z"},
		}
		perEvent := map[int][]string{} // event index → the recipients of its mails
		events := make([]map[string]any, 1000)
		for i := range events {
			contact := contactAddr(i)
			if i < 700 {
				order := fmt.Sprintf("O-%d", i)
				seller := fmt.Sprintf("s%d@sellers.example", i%10)
				events[i] = map[string]any{"id": fmt.Sprintf("e2e-%d", i), "name": "order.paid",
					"contact": map[string]any{"email": contact, "name": fmt.Sprintf("Buyer %d", i)},
					"data":    map[string]any{"order_id": order, "total": i, "marketplace": i%7 == 0, "seller": map[string]any{"email": seller}}}
				want[contact] = append(want[contact], "Receipt "+order)
				perEvent[i] = append(perEvent[i], contact)
				if i >= 600 {
					want["ops@shop.example"] = append(want["ops@shop.example"], "Bigorder "+order)
					perEvent[i] = append(perEvent[i], "ops@shop.example")
				}
				if i%7 == 0 {
					want[seller] = append(want[seller], "Sold "+order)
					perEvent[i] = append(perEvent[i], seller)
				}
				continue
			}
			name, country := fmt.Sprintf("V-%d", i), "DE"
			if i%3 == 0 {
				country = "KR"
				for _, staff := range []string{"ops@shop.example", "sales@shop.example"} {
					want[staff] = append(want[staff], "Seller "+name)
					perEvent[i] = append(perEvent[i], staff)
				}
			}
			events[i] = map[string]any{"id": fmt.Sprintf("e2e-%d", i), "name": "seller.registered",
				"contact": map[string]any{"email": contact}, "data": map[string]any{"seller": map[string]any{"name": name, "country": country}}}
		}
		mails := 0
		for _, w := range want {
			mails += len(w)
		}

		// 900 in batches, the last 100 one by one from four clients.
		results := postEvents(t, p, events[:900])
		results = append(results, make([]eventResult, 100)...)
		var wg sync.WaitGroup
		errs := make(chan string, 100)
		for c := range 4 {
			wg.Go(func() {
				for i := 900 + c; i < 1000; i += 4 {
					code, body, err := p.tryRequest("POST", "/v1/events", nodeKey, events[i])
					if err != nil || code != 202 || json.Unmarshal(body, &results[i]) != nil {
						errs <- fmt.Sprintf("event %d: %v %d %.300s", i, err, code, body)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		failIfAny(t, errs)
		eventIndex := map[string]int{}
		for i, r := range results {
			if r.Duplicate || !strings.HasPrefix(r.ID, "evt_") || r.ContactID == "" {
				t.Fatalf("event %d accepted as %+v", i, r)
			}
			eventIndex[r.ID] = i
			names[r.ID] = events[i]["name"].(string)
		}
		// The same event id again: the first event's answer, and nothing more is sent.
		again := postEvent(t, p, events[950], 200)
		if !again.Duplicate || again.ID != results[950].ID {
			t.Errorf("event 950 posted again: %+v, want a duplicate of %s", again, results[950].ID)
		}

		relay.waitTotal(t, p, mails, 2*time.Minute)
		t.Logf("%s from the node's start to %d mails at the relay", time.Since(began), mails)
		// The cancelled cart's action is settled when the other cart's is sent (same due time).
		waitFor(t, 20*time.Second, func() error {
			if a := getEvent(t, p, cartA.ID); len(a.Actions) != 1 || a.Actions[0].Status != "cancelled" {
				return fmt.Errorf("the paid cart's event: %+v", a)
			}
			return nil
		})
		b := getEvent(t, p, cartB.ID)
		if len(b.Actions) != 1 || b.Actions[0].Status != "done" || len(b.Actions[0].MessageIDs) != 1 ||
			b.Actions[0].TriggerID != triggers["comeback"] {
			t.Errorf("the abandoned cart's event: %+v", b)
		} else {
			due := b.Actions[0].DueAt
			if d := due.Sub(abandoned.Add(time.Hour)); d < -time.Second || d > time.Second {
				t.Errorf("the abandoned cart's action is due at %s, want an hour after %s", due, abandoned)
			}
			var m struct {
				CreatedAt time.Time `json:"created_at"`
			}
			call(t, p, "GET", "/v1/messages/"+b.Actions[0].MessageIDs[0], nil, 200, &m)
			if m.CreatedAt.Before(due) {
				t.Errorf("the abandoned cart's mail was made at %s, before it was due at %s", m.CreatedAt, due)
			}
		}

		// The webhooks: one message.sent per mail, one event.triggered per action that sent.
		sent := hooks.waitDelivered(t, "message.sent", mails, time.Minute)
		actions := 3 // the carts' comeback and two receipts
		for _, r := range perEvent {
			actions += len(r)
		}
		actions -= 100 // a Korean seller's two staff mails are one action's
		triggered := hooks.waitDelivered(t, "event.triggered", actions, time.Minute)

		// A message says which event and trigger made it; the event lists what it triggered.
		first := getEvent(t, p, results[1].ID)
		if len(first.Actions) != 1 || first.Actions[0].Status != "done" || len(first.Actions[0].MessageIDs) != 1 ||
			first.Actions[0].TriggerID != triggers["receipt"] || first.Name != "order.paid" {
			t.Errorf("event 1: %+v", first)
		} else {
			var m struct {
				EventID   string `json:"event_id"`
				TriggerID string `json:"trigger_id"`
				Status    string `json:"status"`
				Subject   string `json:"subject"`
			}
			call(t, p, "GET", "/v1/messages/"+first.Actions[0].MessageIDs[0], nil, 200, &m)
			if m.EventID != first.ID || m.TriggerID != triggers["receipt"] || m.Status != "sent" || m.Subject != "Receipt O-1" {
				t.Errorf("event 1's message: %+v", m)
			}
		}
		var page struct{ Data []eventView }
		call(t, p, "GET", "/v1/events?name=cart.abandoned", nil, 200, &page)
		if len(page.Data) != 2 {
			t.Errorf("GET /v1/events?name=cart.abandoned: %+v", page.Data)
		}

		p.stop()
		sameSubjects(t, relay.subjects(), want)
		hooks.check(t)

		byEvent := map[int][]string{}
		knownTriggers := map[string]bool{}
		for _, id := range triggers {
			knownTriggers[id] = true
		}
		for _, s := range sent {
			if !strings.HasPrefix(s.str("message_id"), "msg_") || s.Timestamp == "" || !knownTriggers[s.str("trigger_id")] {
				t.Errorf("message.sent payload %+v: want a message, a time and one of the triggers", s)
			}
			if i, ok := eventIndex[s.str("event_id")]; ok {
				byEvent[i] = append(byEvent[i], s.str("recipient"))
			}
		}
		for i, w := range perEvent {
			slices.Sort(w)
			got := byEvent[i]
			slices.Sort(got)
			if !slices.Equal(got, w) {
				t.Errorf("event %d: message.sent for %v, want %v", i, got, w)
			}
		}
		if len(sent) != mails || len(byEvent) != len(perEvent) {
			t.Errorf("%d message.sent payloads for %d events, want %d for %d", len(sent), len(byEvent), mails, len(perEvent))
		}
		var bad []webhookPayload
		for _, e := range triggered {
			ids, _ := e.Data["message_ids"].([]any)
			name := names[e.str("event_id")]
			if !knownTriggers[e.str("trigger_id")] || !strings.HasPrefix(e.str("action_id"), "act_") || len(ids) == 0 || len(ids) > 2 ||
				e.str("name") != name || name == "" {
				bad = append(bad, e)
			}
		}
		if len(bad) > 0 {
			t.Errorf("%d event.triggered payloads without their event's name, a known trigger, an action or one or two messages, the first %+v",
				len(bad), bad[0])
		}
		if len(triggered) != actions {
			t.Errorf("%d event.triggered payloads, want %d", len(triggered), actions)
		}

	})
}

// TestEventsCrash: the node is SIGKILLed while delayed actions wait to be due and webhook
// deliveries hang at the receiver or wait for a free sender, and started again on the same
// database under the same node id: every delayed mail goes out, once, and every message.sent
// reaches the receiver, under the webhook-id it had before the kill.
func TestEventsCrash(t *testing.T) {
	t.Parallel()
	eachDriver(t, func(t *testing.T, db []string) {
		const n = 40
		relay := startCampaignRelay(t, 0)
		hooks := startReceiver(t)
		hooks.setMode(recvHang, 0)
		dir := t.TempDir()
		env := eventsEnv(append([]string{"POSTIE_NODE_ID=events-crash", "POSTIE_WEBHOOK_CONCURRENCY=16",
			"POSTIE_WEBHOOK_TIMEOUT=60s"}, db...)...)
		p := startNode(t, dir, relay, "node0.postie.test", env...)
		makeWebhook(t, p, hooks, "message.sent")
		putTemplate(t, p, "ping", "{{.data.kind}} {{.data.n}}")
		for _, name := range []string{"ping.now", "ping.later"} {
			tr := map[string]any{"name": name, "event": name, "template": "ping", "to": map[string]any{"contact": true}}
			if name == "ping.later" {
				tr["delay"] = "1h"
			}
			makeTrigger(t, p, tr)
		}
		// The later ones are due a few seconds from now: after the kill, during or after the
		// restart.
		const dueIn = 6 * time.Second
		later := time.Now().Add(-time.Hour + dueIn).UTC().Format(time.RFC3339Nano)
		events := make([]map[string]any, 0, 2*n)
		want := map[string][]string{}
		for i := range n {
			now, late := fmt.Sprintf("now%d@example.com", i), fmt.Sprintf("later%d@example.com", i)
			events = append(events,
				map[string]any{"name": "ping.now", "contact": map[string]any{"email": now}, "data": map[string]any{"kind": "Now", "n": i}},
				map[string]any{"name": "ping.later", "contact": map[string]any{"email": late}, "data": map[string]any{"kind": "Later", "n": i},
					"occurred_at": later})
			want[now] = []string{fmt.Sprintf("Now %d", i)}
			want[late] = []string{fmt.Sprintf("Later %d", i)}
		}
		postEvents(t, p, events)
		relay.waitCampaign(t, p, "", "Now", n, time.Minute)
		settled(t, p, 30*time.Second)
		// Four deliveries (the endpoint's share of the 16 senders) hang at the receiver, the
		// others wait for them.
		waitFor(t, 20*time.Second, func() error {
			if c := hooks.requestCount(); c < 4 {
				return fmt.Errorf("%d webhook requests hang at the receiver, want 4", c)
			}
			return nil
		})
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if c := relay.count("Later"); c > 0 {
			t.Fatalf("%d delayed mails went out before the kill; give them more time", c)
		}
		if d := hooks.delivered(""); len(d) > 0 {
			t.Fatalf("%d webhooks were delivered before the kill", len(d))
		}
		hung := hooks.seen("message.sent")

		hooks.setMode(recvOK, 0)
		p2 := startNode(t, dir, relay, "node0.postie.test", env...)
		relay.waitCampaign(t, p2, "", "Later", n, time.Minute)
		sent := hooks.waitDelivered(t, "message.sent", 2*n, time.Minute)
		settled(t, p2, 30*time.Second)
		p2.stop()

		sameSubjects(t, relay.subjects(), want)
		hooks.check(t)
		recipients := map[string]int{}
		ids := map[string]bool{}
		for _, s := range sent {
			recipients[s.str("recipient")]++
			ids[s.ID] = true
		}
		for to := range want {
			if recipients[to] != 1 {
				t.Errorf("%d message.sent payloads for %s, want 1", recipients[to], to)
			}
		}
		for _, id := range hung {
			if !ids[id] {
				t.Errorf("webhook-id %s, hanging at the kill, was not delivered after the restart under the same id", id)
			}
		}
		if len(sent) != 2*n {
			t.Errorf("%d message.sent payloads, want %d", len(sent), 2*n)
		}
	})
}

// deliveryView is the part of a webhook delivery resource the tests read.
type deliveryView struct {
	ID            string `json:"id"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	Attempts      int    `json:"attempts"`
	NextAttemptAt string `json:"next_attempt_at"`
	LastError     string `json:"last_error"`
	History       []struct {
		Code     int    `json:"code"`
		Response string `json:"response"`
	} `json:"history"`
}

// endpointDeliveries lists every delivery of a webhook endpoint, page by page.
func endpointDeliveries(t *testing.T, p *proc, hook string) []deliveryView {
	t.Helper()
	var all []deliveryView
	for cursor := ""; ; {
		var page struct {
			Data       []deliveryView `json:"data"`
			NextCursor string         `json:"next_cursor"`
		}
		call(t, p, "GET", "/v1/webhooks/"+hook+"/deliveries?limit=100&cursor="+cursor, nil, 200, &page)
		all = append(all, page.Data...)
		if cursor = page.NextCursor; cursor == "" {
			return all
		}
	}
}

// TestWebhookDisabledAndReplayed: one receiver answers 500 to everything for a scaled day (its
// retries a few hundred milliseconds apart, the endpoint disabled after two seconds of failing)
// while mail keeps going out. Its endpoint is disabled with a reason, which a second endpoint
// hears as webhook.disabled, having had every message.sent on time meanwhile. Once the receiver
// is back, the endpoint is enabled again, its secret rotated, and its deliveries replayed: every
// payload arrives, signed with the new secret, under the webhook-ids of the failed attempts, and
// the attempts are listed with the receiver's status and answer.
func TestWebhookDisabledAndReplayed(t *testing.T) {
	t.Parallel()
	eachDriver(t, func(t *testing.T, db []string) {
		relay := startRelay(t, 0)
		down, watcher := startReceiver(t), startReceiver(t)
		down.setMode(recvFail, 500)
		p := startNode(t, t.TempDir(), relay, "node0.postie.test",
			eventsEnv(append([]string{"POSTIE_WEBHOOK_RETRY_DELAYS=50ms,100ms,200ms,400ms", "POSTIE_WEBHOOK_DISABLE_AFTER=2s"}, db...)...)...)
		began := time.Now()
		hook := makeWebhook(t, p, down, "message.sent")
		makeWebhook(t, p, watcher, "message.sent", "webhook.disabled")

		// Mail goes out every 100 ms until the endpoint is disabled.
		type endpoint struct {
			Enabled        bool   `json:"enabled"`
			DisabledReason string `json:"disabled_reason"`
			FailingSince   string `json:"failing_since"`
		}
		var ep endpoint
		sentMail := 0
		waitFor(t, 30*time.Second, func() error {
			call(t, p, "POST", "/v1/messages", map[string]any{"to": []string{fmt.Sprintf("m%d@example.com", sentMail)},
				"subject": "Hook", "text": "hello"}, 202, nil)
			sentMail++
			time.Sleep(80 * time.Millisecond)
			call(t, p, "GET", "/v1/webhooks/"+hook, nil, 200, &ep)
			if ep.Enabled {
				return fmt.Errorf("the endpoint is still enabled after %d messages: %+v", sentMail, ep)
			}
			return nil
		})
		if ep.DisabledReason == "" {
			t.Errorf("disabled endpoint %+v has no reason", ep)
		}
		notice := watcher.waitDelivered(t, "webhook.disabled", 1, 20*time.Second)
		// The URL's origin alone: another endpoint receives it.
		if notice[0].str("webhook_id") != hook || notice[0].str("reason") == "" || notice[0].str("url") != down.url("") {
			t.Errorf("webhook.disabled payload %+v", notice[0])
		}
		// The watcher had every message meanwhile.
		settled(t, p, 30*time.Second)
		watcher.waitDelivered(t, "message.sent", sentMail, 20*time.Second)

		// What the endpoint's deliveries say: its attempts, with the receiver's answer.
		listed := endpointDeliveries(t, p, hook)
		statuses := map[string]int{}
		for _, d := range listed {
			statuses[d.Status]++
		}
		if len(listed) == 0 || statuses["failed"] == 0 || statuses["delivered"] > 0 {
			t.Fatalf("the disabled endpoint's deliveries by status: %v, want some failed, none delivered", statuses)
		}
		var one deliveryView
		call(t, p, "GET", "/v1/webhooks/"+hook+"/deliveries/"+listed[len(listed)-1].ID, nil, 200, &one)
		if len(one.History) == 0 || one.History[0].Code != 500 || !strings.Contains(one.History[0].Response, receiverDown) {
			t.Errorf("delivery %s's attempts: %+v, want a 500 with the receiver's answer", one.ID, one.History)
		}
		attempted := down.seen("message.sent")
		t.Logf("%d messages, %d deliveries to the failing endpoint (%v), %d of them attempted, %d requests", sentMail,
			len(listed), statuses, len(attempted), down.requestCount())

		// The receiver is back, with a new secret: rotate it, enable the endpoint, replay.
		down.setMode(recvOK, 0)
		var rotated struct{ Secret string }
		call(t, p, "POST", "/v1/webhooks/"+hook+"/rotate-secret", nil, 200, &rotated)
		down.setSecret(rotated.Secret)
		var enabled endpoint
		call(t, p, "PATCH", "/v1/webhooks/"+hook, map[string]any{"enabled": true}, 200, &enabled)
		if !enabled.Enabled || enabled.DisabledReason != "" || enabled.FailingSince != "" {
			t.Errorf("enabled again: %+v", enabled)
		}
		var replay struct{ Replayed int }
		call(t, p, "POST", "/v1/webhooks/"+hook+"/replay", map[string]any{
			"from": began.Add(-time.Minute).UTC().Format(time.RFC3339), "to": time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}, 200, &replay)
		if replay.Replayed != statuses["failed"] {
			t.Errorf("replayed %d, want the %d failed", replay.Replayed, statuses["failed"])
		}
		waitFor(t, 30*time.Second, func() error {
			if n := len(down.delivered("message.sent")); n < len(listed) {
				var waiting []deliveryView
				for _, d := range endpointDeliveries(t, p, hook) {
					if d.Status != "delivered" {
						waiting = append(waiting, d)
					}
				}
				return fmt.Errorf("%d of %d deliveries arrived; not delivered: %+v", n, len(listed), waiting)
			}
			return nil
		})
		got := down.delivered("message.sent")
		p.stop()

		down.check(t)
		watcher.check(t)
		ids, recipients := map[string]bool{}, map[string]bool{}
		for _, g := range got {
			ids[g.ID] = true
			recipients[g.str("recipient")] = true
		}
		for _, d := range listed {
			if !ids[d.ID] {
				t.Errorf("delivery %s (%s) never arrived", d.ID, d.Status)
			}
		}
		for _, id := range attempted {
			if !ids[id] {
				t.Errorf("webhook-id %s, attempted while the receiver was down, did not arrive under that id", id)
			}
		}
		if len(got) != len(listed) || len(recipients) != len(listed) {
			t.Errorf("%d payloads for %d recipients arrived, want one for each of the %d deliveries", len(got), len(recipients), len(listed))
		}
	})
}
