package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/drivertest"
)

// clock is a test clock.
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
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

var start = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

// bundle is a webhook service on a real store, with a clock.
type bundle struct {
	st    store.Store
	clock *clock
	svc   *Service
}

// loopbackPolicy lets webhooks reach the test receivers on loopback over http, as
// POSTIE_WEBHOOK_ALLOW=loopback and POSTIE_WEBHOOK_ALLOW_HTTP=true do.
var loopbackPolicy = Policy{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}

func setup(t *testing.T, st store.Store, mutate ...func(*Config)) *bundle {
	t.Helper()
	b := &bundle{st: st, clock: &clock{t: start}}
	cfg := Config{Store: st, Policy: loopbackPolicy, Now: b.clock.Now, Owner: "node-a/1/x", Timeout: 5 * time.Second,
		RetryDelays: []time.Duration{5 * time.Second, time.Minute, 10 * time.Minute}}
	for _, m := range mutate {
		m(&cfg)
	}
	b.svc = New(cfg)
	return b
}

// endpoint creates an endpoint of url receiving types, through the service's checks.
func (b *bundle) endpoint(t *testing.T, url string, types ...string) store.WebhookEndpoint {
	t.Helper()
	e, err := b.svc.Create(context.Background(), EndpointInput{URL: &url, Types: &types})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sent stores a message to recipients, and records it sent (as delivery would): one
// message.sent delivery per recipient to each endpoint subscribed.
func (b *bundle) sent(t *testing.T, mod func(*store.Message), to ...string) string {
	t.Helper()
	ctx := context.Background()
	now := b.clock.Now()
	m := store.Message{ID: id.New(id.Message), Stream: store.StreamTransactional, Status: store.StatusQueued,
		From: "a@example.com", To: to, Subject: "hi", EnvelopeFrom: "a@example.com", Recipients: to, MaxAttempts: 3,
		NextAttemptAt: now, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), UpdatedAt: now, MessageID: "x@example.com"}
	if mod != nil {
		mod(&m)
	}
	if _, err := b.st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: []store.NewMessage{{Message: m,
		Raw: []byte("Subject: hi\r\n\r\nhi\r\n")}}, Now: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.st.MessageClaim(ctx, store.MessageClaimParams{Owner: "mta", Stream: store.StreamTransactional,
		Limit: 1000, Now: now, LeaseUntil: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	n, err := b.st.MessageFinish(ctx, now, []store.MessageFinishParams{{ID: m.ID, Owner: "mta", Status: store.StatusSent,
		Attempts: 1, SentAt: now, Events: []store.Event{store.NewEvent(store.EventSent, now,
			&store.EventDetail{Transport: "smtp", ProviderID: "Q1", Attempt: 1, Recipients: store.Recipients(to)})}}})
	if err != nil || n != 1 {
		t.Fatalf("MessageFinish: %d %v", n, err)
	}
	return m.ID
}

// tick runs one Tick and returns how many deliveries it attempted.
func (b *bundle) tick(t *testing.T) int {
	t.Helper()
	n, err := b.svc.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// delivery returns delivery n with its attempts.
func (b *bundle) delivery(t *testing.T, n int64) (store.WebhookDelivery, []store.WebhookAttempt) {
	t.Helper()
	d, as, err := b.st.WebhookDeliveryGet(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	return d, as
}

// deliveries lists an endpoint's deliveries, oldest first.
func (b *bundle) deliveries(t *testing.T, whk string) []store.WebhookDelivery {
	t.Helper()
	ds, _, err := b.st.WebhookDeliveries(context.Background(), store.WebhookDeliveryListParams{EndpointID: whk, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

// request is one request a receiver got, checked against the endpoint's secret.
type request struct {
	id, timestamp, signature string
	body                     []byte
	payload                  Payload
	data                     map[string]any
}

// recv is an HTTP receiver on loopback: answer decides each response (nil: 204).
type recv struct {
	srv *httptest.Server
	got chan request
}

func newRecv(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *recv {
	t.Helper()
	rv := &recv{got: make(chan request, 1000)}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := request{id: r.Header.Get(HeaderID), timestamp: r.Header.Get(HeaderTimestamp),
			signature: r.Header.Get(HeaderSignature), body: body}
		var p struct {
			Payload
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &p); err != nil || r.Header.Get("Content-Type") != "application/json" || r.Method != http.MethodPost {
			t.Errorf("request %s %s %q: %v", r.Method, r.Header.Get("Content-Type"), body, err)
		}
		q.payload, q.data = p.Payload, p.Data
		rv.got <- q
		if answer != nil {
			answer(w, r)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

// next returns the next request, failing after a generous wait.
func (rv *recv) next(t *testing.T) request {
	t.Helper()
	select {
	case q := <-rv.got:
		return q
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got nothing")
	}
	return request{}
}

// none checks the receiver has got nothing more.
func (rv *recv) none(t *testing.T) {
	t.Helper()
	select {
	case q := <-rv.got:
		t.Fatalf("unexpected request %s %s", q.id, q.body)
	default:
	}
}

// TestSignedPayloads: each recipient's change is one signed payload, which a test-only
// implementation of the spec verifies, naming the recipient with the message's tags, metadata
// and event, and recorded as delivered with its attempt.
func TestSignedPayloads(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setup(t, st)
		rv := newRecv(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("thanks")) })
		e := b.endpoint(t, rv.srv.URL+"/hook", store.WebhookMessageSent)
		other := newRecv(t, nil)
		b.endpoint(t, other.srv.URL, store.WebhookMessageCancelled) // another type: receives nothing
		msg := b.sent(t, func(m *store.Message) {
			m.Tags, m.Metadata, m.EventID, m.TriggerID = []string{"orders"}, map[string]string{"order": "A-1"}, "evt_1", "trg_1"
		}, "ann@example.com", "bo@example.com")
		if n := b.tick(t); n != 2 {
			t.Fatalf("Tick sent %d, want 2", n)
		}
		got := map[string]request{}
		for range 2 {
			q := rv.next(t)
			if !verify(e.Secret, q.id, q.timestamp, q.signature, q.body) {
				t.Errorf("signature %q does not verify", q.signature)
			}
			if q.timestamp != fmt.Sprint(start.Unix()) {
				t.Errorf("webhook-timestamp %s, want the attempt's time %d", q.timestamp, start.Unix())
			}
			got[q.data["recipient"].(string)] = q
		}
		other.none(t)
		for _, to := range []string{"ann@example.com", "bo@example.com"} {
			q, ok := got[to]
			if !ok {
				t.Fatalf("no payload for %s: %v", to, got)
			}
			d := q.data
			n, _ := ParseDeliveryID(q.id)
			if q.payload.Type != store.WebhookMessageSent || !strings.HasPrefix(fmt.Sprint(d["detail"]), "map[attempt:1 provider_id:Q1 recipients:[") || q.payload.Timestamp != start.Format(time.RFC3339Nano) ||
				d["message_id"] != msg || d["sequence"] != float64(n) || d["stream"] != "transactional" ||
				fmt.Sprint(d["tags"]) != "[orders]" || fmt.Sprint(d["metadata"]) != "map[order:A-1]" ||
				d["event_id"] != "evt_1" || d["trigger_id"] != "trg_1" || d["campaign_id"] != nil {
				t.Errorf("payload for %s: %s", to, q.body)
			}
			dl, as := b.delivery(t, n)
			if dl.Status != store.DeliveryDelivered || dl.Attempts != 1 || dl.LastCode != 200 || len(as) != 1 ||
				as[0].Code != 200 || as[0].Response != "thanks" || as[0].Error != "" {
				t.Errorf("delivery %+v, attempts %+v", dl, as)
			}
		}
		if n := b.tick(t); n != 0 {
			t.Errorf("a second Tick sent %d", n)
		}
	})
}

// TestRetryLadder: a failing receiver is tried on the ladder (±20%), then the delivery fails;
// a retry and a replay send it again with the same webhook-id.
func TestRetryLadder(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setup(t, st)
		var mu sync.Mutex
		status := http.StatusServiceUnavailable
		rv := newRecv(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			w.WriteHeader(status)
			_, _ = w.Write([]byte("down for maintenance"))
		})
		e := b.endpoint(t, rv.srv.URL, store.WebhookMessageSent)
		b.sent(t, nil, "ann@example.com")
		ds := b.deliveries(t, e.ID)
		if len(ds) != 1 {
			t.Fatalf("%d deliveries", len(ds))
		}
		n := ds[0].ID
		wantID := MessageID(n)
		at := start
		for attempt, delay := range append(b.svc.cfg.RetryDelays, 0) {
			if got := b.tick(t); got != 1 {
				t.Fatalf("attempt %d: Tick sent %d", attempt+1, got)
			}
			if q := rv.next(t); q.id != wantID {
				t.Fatalf("attempt %d: webhook-id %s, want %s", attempt+1, q.id, wantID)
			}
			d, as := b.delivery(t, n)
			if len(as) != attempt+1 || as[attempt].Code != 503 || as[attempt].Error != "HTTP 503" || as[attempt].Response != "down for maintenance" {
				t.Fatalf("attempt %d recorded as %+v", attempt+1, as)
			}
			if delay == 0 {
				if d.Status != store.DeliveryFailed || d.LastCode != 503 {
					t.Fatalf("after the ladder: %+v", d)
				}
				break
			}
			lo, hi := at.Add(delay*8/10), at.Add(delay*12/10)
			if d.Status != store.DeliveryPending || d.NextAttemptAt.Before(lo) || d.NextAttemptAt.After(hi) || d.Attempts != attempt+1 {
				t.Fatalf("after attempt %d: %s next at %v, want between %v and %v", attempt+1, d.Status, d.NextAttemptAt, lo, hi)
			}
			b.clock.Set(lo.Add(-time.Second))
			if got := b.tick(t); got != 0 {
				t.Fatalf("attempt %d: sent again %v early", attempt+1, d.NextAttemptAt.Sub(b.clock.Now()))
			}
			at = d.NextAttemptAt
			b.clock.Set(at)
		}
		if got := b.tick(t); got != 0 {
			t.Fatal("a failed delivery was sent")
		}

		mu.Lock()
		status = http.StatusOK
		mu.Unlock()
		d, err := b.svc.Retry(context.Background(), e.ID, n)
		if err != nil || d.Status != store.DeliveryPending || d.Attempts != 0 {
			t.Fatalf("Retry: %+v %v", d, err)
		}
		if got := b.tick(t); got != 1 {
			t.Fatalf("after a retry Tick sent %d", got)
		}
		if q := rv.next(t); q.id != wantID {
			t.Fatalf("retry: webhook-id %s, want %s", q.id, wantID)
		}
		if d, _ := b.delivery(t, n); d.Status != store.DeliveryDelivered {
			t.Fatalf("after a retry: %+v", d)
		}
		replayed, err := b.svc.Replay(context.Background(), ReplayParams{EndpointID: e.ID, From: start.Add(-time.Hour),
			To: b.clock.Now().Add(time.Hour), Statuses: []string{store.DeliveryDelivered}})
		if err != nil || replayed != 1 {
			t.Fatalf("Replay: %d %v", replayed, err)
		}
		b.tick(t)
		if q := rv.next(t); q.id != wantID {
			t.Fatalf("replay: webhook-id %s, want %s", q.id, wantID)
		}
	})
}

// TestDisableFailingEndpoint: an endpoint failing for longer than DisableAfter is disabled with
// its reason, webhook.disabled reaches the endpoints subscribed to it, and what it had pending is
// sent once it is enabled and replayed.
func TestDisableFailingEndpoint(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setup(t, st, func(c *Config) {
			c.RetryDelays = []time.Duration{10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute, 10 * time.Minute}
			c.DisableAfter = 30 * time.Minute
		})
		var up atomic.Bool
		down := newRecv(t, func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		ops := newRecv(t, nil)
		failing := b.endpoint(t, down.srv.URL, store.WebhookMessageSent)
		watcher := b.endpoint(t, ops.srv.URL, store.WebhookEndpointDisabled)
		b.sent(t, nil, "ann@example.com")
		first := b.clock.Now()
		for i := 0; ; i++ {
			if i > 10 {
				t.Fatal("the endpoint was never disabled")
			}
			if got := b.tick(t); got != 1 {
				t.Fatalf("attempt %d: Tick sent %d", i+1, got)
			}
			down.next(t)
			e, err := b.st.WebhookGet(context.Background(), failing.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !e.Enabled {
				if b.clock.Now().Sub(first) < 30*time.Minute {
					t.Fatalf("disabled after %v", b.clock.Now().Sub(first))
				}
				if !strings.Contains(e.DisabledReason, "failing since "+first.Format(time.RFC3339)) ||
					!strings.Contains(e.DisabledReason, "HTTP 500") {
					t.Fatalf("reason %q", e.DisabledReason)
				}
				break
			}
			b.clock.Add(15 * time.Minute)
		}
		if got := b.tick(t); got != 1 { // webhook.disabled, to the watcher
			t.Fatalf("after disabling, Tick sent %d", got)
		}
		q := ops.next(t)
		if q.payload.Type != store.WebhookEndpointDisabled || q.data["webhook_id"] != failing.ID || q.data["url"] != failing.URL ||
			!strings.Contains(fmt.Sprint(q.data["reason"]), "failing since") || !verify(watcher.Secret, q.id, q.timestamp, q.signature, q.body) {
			t.Fatalf("webhook.disabled payload %s", q.body)
		}
		// Disabling failed its pending delivery; enabled again and replayed, it is sent.
		b.clock.Add(time.Hour)
		if got := b.tick(t); got != 0 {
			t.Fatalf("a disabled endpoint's delivery was sent")
		}
		up.Store(true)
		enabled := true
		e, err := b.svc.Update(context.Background(), failing.ID, EndpointInput{Enabled: &enabled})
		if err != nil || !e.Enabled || e.DisabledReason != "" || !e.FailingSince.IsZero() {
			t.Fatalf("enable: %+v %v", e, err)
		}
		n, err := b.svc.Replay(context.Background(), ReplayParams{EndpointID: failing.ID, From: start, To: b.clock.Now()})
		if err != nil || n != 1 {
			t.Fatalf("replay: %d %v", n, err)
		}
		if got := b.tick(t); got != 1 {
			t.Fatalf("enabled and replayed, Tick sent %d", got)
		}
		if q := down.next(t); q.data["recipient"] != "ann@example.com" {
			t.Fatalf("replayed %s", q.body)
		}
	})
}

// TestSlowEndpointDoesNotHoldOthers: while one endpoint's receiver hangs, another endpoint's
// deliveries all arrive; the hanging one never has more than its share in flight.
func TestSlowEndpointDoesNotHoldOthers(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setup(t, st, func(c *Config) { c.Concurrency = 4; c.Timeout = time.Minute })
		release := make(chan struct{})
		var once sync.Once
		unblock := func() { once.Do(func() { close(release) }) }
		var inFlight, most atomic.Int64
		slow := newRecv(t, func(w http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
		})
		t.Cleanup(unblock) // before the receiver closes (cleanups run last first)
		fast := newRecv(t, nil)
		b.endpoint(t, slow.srv.URL, store.WebhookMessageSent)
		b.endpoint(t, fast.srv.URL, store.WebhookMessageSent)
		const n = 40 // more than the queue holds (4 × Concurrency): the slow endpoint must be left unclaimed
		for i := range n {
			b.sent(t, nil, fmt.Sprintf("r%d@example.com", i))
		}
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		served := make(chan error, 1)
		go func() { served <- b.svc.Serve(ctx) }()
		for range n {
			fast.next(t) // all of them, while the slow receiver holds its first request
		}
		slow.next(t)
		unblock()
		for range n - 1 {
			slow.next(t)
		}
		if m := most.Load(); m > int64(b.svc.perEndpoint()) {
			t.Errorf("the slow endpoint had %d requests in flight, its share is %d", m, b.svc.perEndpoint())
		}
		// Every outcome is recorded once Serve has stopped.
		cancel()
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		es, _ := b.st.WebhookList(context.Background())
		for _, e := range es {
			for _, d := range b.deliveries(t, e.ID) {
				if d.Status != store.DeliveryDelivered {
					t.Errorf("%s of %s: %s", MessageID(d.ID), e.URL, d.Status)
				}
			}
		}
	})
}

// TestRefusedAtConnection: a URL allowed when it was saved is refused when the connection is
// made to a refused address (its name now resolves to loopback, which is not allowed: DNS
// rebinding); a redirect is not followed. Both are failed attempts, recorded.
func TestRefusedAtConnection(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		rv := newRecv(t, nil)
		port := rv.srv.URL[strings.LastIndex(rv.srv.URL, ":")+1:]
		var lookups atomic.Int64
		b := setup(t, st, func(c *Config) {
			c.Policy = Policy{AllowHTTP: true} // loopback is not allowed
			c.Resolve = func(context.Context, string) ([]netip.Addr, error) {
				if lookups.Add(1) == 1 { // when the URL is saved
					return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil
				}
				return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
			}
		})
		rebound := b.endpoint(t, "http://hooks.rebind.test:"+port+"/hook", store.WebhookMessageSent)
		b.sent(t, nil, "ann@example.com")
		if got := b.tick(t); got != 1 {
			t.Fatalf("Tick sent %d", got)
		}
		rv.none(t)
		d := b.deliveries(t, rebound.ID)[0]
		if d.Status != store.DeliveryPending || d.LastCode != 0 || !strings.Contains(d.LastError, "address policy") ||
			!strings.Contains(d.LastError, "127.0.0.1 is a loopback address") {
			t.Fatalf("delivery %+v", d)
		}

		// A redirect (to a receiver allowed) is an answer, not followed.
		if err := b.svc.Delete(context.Background(), rebound.ID); err != nil {
			t.Fatal(err)
		}
		l := setup(t, st)
		target := newRecv(t, nil)
		redirecting := newRecv(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.srv.URL, http.StatusFound)
		})
		e := l.endpoint(t, redirecting.srv.URL, store.WebhookMessageSent)
		l.sent(t, nil, "bo@example.com")
		l.tick(t)
		redirecting.next(t)
		target.none(t)
		d = l.deliveries(t, e.ID)[0]
		if d.Status != store.DeliveryPending || d.LastCode != http.StatusFound || !strings.Contains(d.LastError, "not followed") {
			t.Fatalf("redirected delivery %+v", d)
		}
	})
}

// TestEnableSendsWaiting: enabling a paused endpoint sends at once what waited, including a
// delivery waiting on the retry ladder.
func TestEnableSendsWaiting(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setup(t, st, func(c *Config) { c.RetryDelays = []time.Duration{10 * time.Hour} })
		var up atomic.Bool
		rv := newRecv(t, func(w http.ResponseWriter, r *http.Request) {
			if !up.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		e := b.endpoint(t, rv.srv.URL, store.WebhookMessageSent)
		b.sent(t, nil, "ann@example.com")
		b.tick(t) // fails: next attempt in about 10 hours
		rv.next(t)
		ctx := context.Background()
		off, on := false, true
		if _, err := b.svc.Update(ctx, e.ID, EndpointInput{Enabled: &off}); err != nil {
			t.Fatal(err)
		}
		b.sent(t, nil, "bo@example.com") // not reported: paused endpoints have no route
		up.Store(true)
		b.clock.Add(time.Minute)
		if got := b.tick(t); got != 0 {
			t.Fatalf("paused: Tick sent %d", got)
		}
		if _, err := b.svc.Update(ctx, e.ID, EndpointInput{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		if got := b.tick(t); got != 1 {
			t.Fatalf("enabled: Tick sent %d, want the waiting delivery at once", got)
		}
		if q := rv.next(t); q.data["recipient"] != "ann@example.com" {
			t.Fatalf("sent %s", q.body)
		}
	})
}

// TestClaimedThenDisabled: a delivery claimed just before its endpoint was disabled is still
// sent and recorded, not left leased (enabling the endpoint must find it free).
func TestClaimedThenDisabled(t *testing.T) {
	t.Parallel()
	drivertest.Each(t, func(t *testing.T, st store.Store) {
		b := setup(t, st)
		rv := newRecv(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
		e := b.endpoint(t, rv.srv.URL, store.WebhookMessageSent)
		b.sent(t, nil, "ann@example.com")
		ctx := context.Background()
		now := b.clock.Now()
		ds, err := st.WebhookClaim(ctx, store.WebhookClaimParams{Owner: b.svc.cfg.Owner, Limit: 10, Now: now,
			LeaseUntil: now.Add(b.svc.leaseFor())})
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %d %v", len(ds), err)
		}
		if err := st.WebhookDisable(ctx, e.ID, "failing since yesterday", now); err != nil {
			t.Fatal(err)
		}
		jobs, err := b.svc.prepare(ctx, ds)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("prepare: %d jobs, %v", len(jobs), err)
		}
		if err := b.svc.finish(ctx, []result{b.svc.send(ctx, jobs[0])}); err != nil {
			t.Fatal(err)
		}
		rv.next(t)
		d, _ := b.delivery(t, ds[0].ID)
		if d.LeaseOwner != "" || d.Status != store.DeliveryPending || d.Attempts != 1 {
			t.Fatalf("after its attempt: %+v", d)
		}
		on := true
		if _, err := b.svc.Update(ctx, e.ID, EndpointInput{Enabled: &on}); err != nil {
			t.Fatal(err)
		}
		if got := b.tick(t); got != 1 {
			t.Fatalf("enabled: Tick sent %d, want it at once", got)
		}
	})
}
