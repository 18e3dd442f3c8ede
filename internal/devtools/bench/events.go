package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
)

// EventsConfig selects the events benchmark: Clients clients each posting one application event
// per request, back to back, for Duration; each event matches a trigger that sends one
// transactional message to the event's contact, delivered to a loopback SMTP sink over Pool
// connections, and every message.sent is reported to a webhook endpoint on a loopback receiver
// in this process.
type EventsConfig struct {
	Binary   string   // the postie executable to start
	ExtraEnv []string // passed to every server
	// DatabaseURL and Nodes: as in Config.
	DatabaseURL string
	Nodes       int

	Pool       int           // relay connections (postie's ?pool=N)
	RelayDelay time.Duration // as in DeliveryConfig
	Clients    int           // concurrent clients, one event per request
	Duration   time.Duration // how long the clients post
}

// EventsResult is what one events run measured. CPU times cover the whole run, from the first
// POST until the sink has every mail and the receiver every webhook.
type EventsResult struct {
	Clients  int
	Accepted int // events answered 202 while the clients posted
	Mails    int // messages the sink had when the clients stopped
	Webhooks int // distinct webhook-ids the receiver had answered when the clients stopped
	Duration time.Duration
	// MailDrain and WebhookDrain: from the clients' stop until the sink had a mail, and the
	// receiver a webhook, for every accepted event.
	MailDrain, WebhookDrain time.Duration
	// WebhookSpan is from the first webhook received to the last one.
	WebhookSpan time.Duration

	AcceptP50, AcceptP99   time.Duration // POST → 202
	MailP50, MailP99       time.Duration // POST → the sink's 250
	WebhookP50, WebhookP99 time.Duration // POST → the receiver's reading of its message.sent

	ServerCPU   time.Duration
	BenchCPU    time.Duration // this process: clients, sink and receiver
	DatabaseCPU time.Duration // PostgreSQL processes serving the run's database (0 on SQLite)
	DatabasePID int
}

// WebhookRate is webhooks received per second, from the first to the last.
func (r EventsResult) WebhookRate() float64 {
	if r.WebhookSpan <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.WebhookSpan.Seconds()
}

// RunEvents runs the events benchmark once.
func RunEvents(ctx context.Context, cfg EventsConfig) (EventsResult, error) {
	res := EventsResult{Clients: cfg.Clients, Duration: cfg.Duration}
	mails := newTracker("ev-")
	hooks := newTracker("ev-")
	recv, err := startHookReceiver(hooks)
	if err != nil {
		return res, err
	}
	defer recv.close()
	env := append([]string{"POSTIE_WEBHOOK_ALLOW=loopback", "POSTIE_WEBHOOK_ALLOW_HTTP=true"}, cfg.ExtraEnv...)
	sink, srv, err := startPhase(ctx, DeliveryConfig{Binary: cfg.Binary, ExtraEnv: env, DatabaseURL: cfg.DatabaseURL,
		Nodes: cfg.Nodes, Pool: cfg.Pool, RelayDelay: cfg.RelayDelay}, func(m smtpsink.Message) { mails.arrived(m) })
	if err != nil {
		return res, err
	}
	defer sink.Close()
	defer srv.stop()
	client := newClient()
	if err := setUpEvents(ctx, client, srv, recv.url); err != nil {
		return res, err
	}
	db, err := newDBCPU(ctx, srv.dbURL)
	if err != nil {
		return res, err
	}
	defer db.close()

	serverCPU, benchCPU := srv.cpuTime(), selfCPU()
	if err := db.sample(ctx); err != nil {
		return res, err
	}
	lat, err := closedLoop(ctx, cfg.Clients, cfg.Duration, func(i int, t0 time.Time) error {
		body := orderPaid(nil, i, mails.addr(i))
		mails.began(i, t0)
		hooks.began(i, t0)
		_, err := srv.post(ctx, client, "/v1/events", body)
		if err != nil {
			mails.forget(i)
			hooks.forget(i)
		}
		return err
	})
	stopped := time.Now()
	res.Mails, res.Webhooks = sink.Count(), recv.count()
	if err != nil {
		return res, err
	}
	res.Accepted = len(lat)
	res.AcceptP50, res.AcceptP99, _ = percentiles(lat)
	if err := waitSink(ctx, sink, res.Accepted); err != nil {
		return res, err
	}
	res.MailDrain = time.Since(stopped)
	if err := recv.wait(ctx, res.Accepted); err != nil {
		return res, err
	}
	res.WebhookDrain = time.Since(stopped)
	res.WebhookSpan = recv.span()
	res.ServerCPU, res.BenchCPU = srv.cpuTime()-serverCPU, selfCPU()-benchCPU
	if res.DatabaseCPU, res.DatabasePID, err = db.since(ctx); err != nil {
		return res, err
	}
	res.MailP50, res.MailP99, _ = percentiles(mails.latencies())
	res.WebhookP50, res.WebhookP99, _ = percentiles(hooks.latencies())
	return res, nil
}

// setUpEvents stores the template, the trigger and the webhook endpoint of the run.
func setUpEvents(ctx context.Context, client *http.Client, srv *server, hookURL string) error {
	steps := []struct {
		method, path string
		body         any
	}{
		{"PUT", "/v1/templates/bench-receipt", map[string]any{
			"subject": "Receipt for order {{.data.order_id}}",
			"html": "<p>Hello,</p><p>we received the payment of {{.data.total}} {{.data.currency}} for order " +
				"<b>{{.data.order_id}}</b>. It ships within two days.</p><p>Thanks for shopping with us.</p>",
		}},
		{"POST", "/v1/triggers", map[string]any{"name": "receipt", "event": "order.paid", "template": "bench-receipt",
			"to": map[string]any{"contact": true}, "from": "Shop <orders@shop.example>", "tags": []string{"bench"}}},
		{"POST", "/v1/webhooks", map[string]any{"url": hookURL, "types": []string{"message.sent"}, "description": "bench receiver"}},
	}
	for _, s := range steps {
		if err := srv.call(ctx, client, s.method, s.path, s.body, nil); err != nil {
			return err
		}
	}
	return nil
}

// orderPaid appends to buf the event of order i paid by to.
func orderPaid(buf []byte, i int, to string) []byte {
	buf = append(buf, `{"name":"order.paid","contact":{"email":"`...)
	buf = append(buf, to...)
	buf = append(buf, `"},"data":{"order_id":"A-`...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, `","total":"59.80","currency":"EUR","items":[{"sku":"TEA-1","quantity":2}]}}`...)
	return buf
}

// hookReceiver is a loopback webhook receiver that answers 204 at once and counts distinct
// webhook-ids. It does not verify signatures (the tests of the real binary do): the benchmark
// measures the sender.
type hookReceiver struct {
	srv *http.Server
	url string
	tr  *tracker

	mu          sync.Mutex
	ids         map[string]struct{}
	first, last time.Time
	changed     chan struct{} // closed (and replaced) at each new webhook-id
}

func startHookReceiver(tr *tracker) (*hookReceiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &hookReceiver{url: "http://" + l.Addr().String() + "/hook", tr: tr, ids: map[string]struct{}{}, changed: make(chan struct{})}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	now := time.Now()
	var p struct {
		Data struct {
			Recipient string `json:"recipient"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &p)
	r.mu.Lock()
	id := req.Header.Get("webhook-id")
	if _, ok := r.ids[id]; !ok {
		r.ids[id] = struct{}{}
		if r.first.IsZero() {
			r.first = now
		}
		r.last = now
		close(r.changed)
		r.changed = make(chan struct{})
	}
	r.mu.Unlock()
	r.tr.arrivedAt(p.Data.Recipient, now)
	w.WriteHeader(http.StatusNoContent)
}

// count is how many distinct webhook-ids have arrived.
func (r *hookReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids)
}

// span is the time from the first webhook to the last.
func (r *hookReceiver) span() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.Sub(r.first)
}

// wait waits until n distinct webhooks have arrived, failing when none arrives for a minute.
func (r *hookReceiver) wait(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		c, changed := len(r.ids), r.changed
		r.mu.Unlock()
		if c >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("the webhook receiver got %d of %d message.sent and nothing more for a minute", c, n)
		}
	}
}

func (r *hookReceiver) close() { _ = r.srv.Close() }

// PrintEvents writes r as a Markdown table.
func PrintEvents(w io.Writer, r EventsResult) {
	fmt.Fprintln(w, "| clients | events accepted/s | accept p50 / p99 | mails at the sink/s | event → mail at sink p50 / p99 | webhooks received/s | event → webhook p50 / p99 | server CPU/event | database CPU/event | load generator, sink, receiver CPU/event |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	per := func(d time.Duration) time.Duration {
		if r.Accepted == 0 {
			return 0
		}
		return d / time.Duration(r.Accepted)
	}
	dbCPU := "–"
	if r.DatabasePID > 0 {
		dbCPU = fmt.Sprintf("%d µs (%d processes)", per(r.DatabaseCPU).Microseconds(), r.DatabasePID)
	}
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	fmt.Fprintf(w, "| %d | %.0f | %s / %s | %.0f | %s / %s | %.0f | %s / %s | %d µs | %s | %d µs |\n", r.Clients,
		float64(r.Accepted)/r.Duration.Seconds(), ms(r.AcceptP50), ms(r.AcceptP99),
		float64(r.Mails)/r.Duration.Seconds(), ms(r.MailP50), ms(r.MailP99),
		r.WebhookRate(), ms(r.WebhookP50), ms(r.WebhookP99),
		per(r.ServerCPU).Microseconds(), dbCPU, per(r.BenchCPU).Microseconds())
	fmt.Fprintf(w, "\n%d events accepted in %s; meanwhile %d mails reached the sink and %d webhooks the receiver; "+
		"the last mail %s and the last webhook %s after the clients stopped.\n", r.Accepted, r.Duration, r.Mails, r.Webhooks,
		r.MailDrain.Round(time.Millisecond), r.WebhookDrain.Round(time.Millisecond))
}
