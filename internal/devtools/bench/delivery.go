package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/transport"
)

// DeliveryConfig selects what the delivery benchmark measures. A zero count or duration skips
// its phase.
type DeliveryConfig struct {
	Binary   string // the postie executable to start
	Out      io.Writer
	ExtraEnv []string // passed to every server
	// DatabaseURL and Nodes: as in Config (PostgreSQL, and how many nodes share it; each node
	// keeps its own pool of Pool relay connections).
	DatabaseURL string
	Nodes       int

	Pool int // relay connections, for postie (?pool=N) and for the bare client
	// RelayDelay holds the sink's reply to each message's final "." this long, as a relay's own
	// work on it (queueing it durably) does; 0: none. With it the ceiling is the relay's, as it
	// is with a real relay, rather than the CPU's.
	RelayDelay time.Duration
	BatchSize  int // messages per batch request (fewer for large messages: at most ≈8 MB a request)
	BatchConns int // concurrent batch clients while accepting

	Messages      int // ≈10 KB messages accepted and delivered in the throughput phase
	LargeMessages int // ≈100 KB messages, likewise

	LatencyRate     float64       // single messages per second in the latency phase
	LatencyDuration time.Duration // how long it sends them

	Broadcast int     // broadcast backlog of the transactional-under-load phase
	TxRate    float64 // transactional messages per second while the backlog drains
	// TxMax ends the transactional phase after this many messages even if the backlog is not
	// drained (0: no limit).
	TxMax int
}

// DeliveryResult is one row of the delivery benchmark.
type DeliveryResult struct {
	Name       string
	Messages   int
	Size       int // mean MIME bytes per message as the relay received it
	Elapsed    time.Duration
	P50, P99   time.Duration // latency rows only
	Max        time.Duration
	Conns      int   // most relay connections open at once
	PeakRSSKiB int64 // the postie server's VmHWM in the phase (0: not a server row)
	Note       string
}

// Rate is messages per second (0 for latency rows).
func (r DeliveryResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Messages) / r.Elapsed.Seconds()
}

// RunDelivery measures delivery through a loopback SMTP sink. Each phase starts its own
// server (fresh database) and sink:
//
//   - throughput, for ≈10 KB and ≈100 KB messages: accept N messages in batches as fast as
//     possible and time until the sink has all N (end to end); then push the same MIME from
//     this process straight to the same sink with transport/smtp over as many connections
//     (the bare client: the ceiling on this machine);
//   - latency: single messages at a steady rate, each timed from the start of its POST to the
//     sink's 250;
//   - transactional under load: accept a broadcast backlog, then while it drains send
//     password-reset-sized transactional messages at a steady rate and time them likewise.
//
// Results come as they are measured; an error ends the run with the rows so far.
func RunDelivery(ctx context.Context, cfg DeliveryConfig) ([]DeliveryResult, error) {
	size := func(name string, n, bytes int) func() ([]DeliveryResult, error) {
		return func() ([]DeliveryResult, error) { return throughput(ctx, cfg, name, n, bytes) }
	}
	phases := []struct {
		on    bool
		title string
		run   func() ([]DeliveryResult, error)
	}{
		{cfg.Messages > 0, fmt.Sprintf("delivery throughput: %d messages of 10 KB over %d relay connections", cfg.Messages, cfg.Pool),
			size("10 KB", cfg.Messages, 10<<10)},
		{cfg.LargeMessages > 0, fmt.Sprintf("delivery throughput: %d messages of 100 KB over %d relay connections", cfg.LargeMessages, cfg.Pool),
			size("100 KB", cfg.LargeMessages, 100<<10)},
		{cfg.LatencyRate > 0 && cfg.LatencyDuration > 0, fmt.Sprintf("delivery latency: %.0f messages/s for %s", cfg.LatencyRate, cfg.LatencyDuration),
			func() ([]DeliveryResult, error) { return latency(ctx, cfg) }},
		{cfg.Broadcast > 0 && cfg.TxRate > 0, fmt.Sprintf("transactional under load: %d broadcast messages, then %.0f transactional/s while they drain", cfg.Broadcast, cfg.TxRate),
			func() ([]DeliveryResult, error) { return underLoad(ctx, cfg) }},
	}
	var rs []DeliveryResult
	for _, p := range phases {
		if !p.on {
			continue
		}
		fmt.Fprintln(cfg.Out, p.title, "…")
		r, err := p.run()
		rs = append(rs, r...)
		if err != nil {
			return rs, err
		}
	}
	return rs, nil
}

// startPhase starts a sink with onMessage and a server relaying to it over cfg.Pool connections.
func startPhase(ctx context.Context, cfg DeliveryConfig, onMessage func(smtpsink.Message)) (*smtpsink.Sink, *server, error) {
	sink, err := startSink(cfg.RelayDelay, onMessage)
	if err != nil {
		return nil, nil, err
	}
	env := append([]string{"POSTIE_SMTP_URL=" + relayURL(sink, cfg.Pool)}, cfg.ExtraEnv...)
	srv, err := startServer(ctx, Config{Binary: cfg.Binary, ExtraEnv: env, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes})
	if err != nil {
		sink.Close()
		return nil, nil, err
	}
	return sink, srv, nil
}

// startSink starts a sink calling onMessage for each message, holding its reply to each
// message's data for delay (none when 0).
func startSink(delay time.Duration, onMessage func(smtpsink.Message)) (*smtpsink.Sink, error) {
	o := smtpsink.Options{OnMessage: onMessage}
	if delay > 0 {
		o.Script = func(st smtpsink.Step) smtpsink.Action {
			if st.Stage == smtpsink.StageData {
				return smtpsink.Action{Delay: delay}
			}
			return smtpsink.Action{}
		}
	}
	return smtpsink.Start(o)
}

func relayURL(sink *smtpsink.Sink, pool int) string {
	return sink.URL() + "&pool=" + strconv.Itoa(pool)
}

// throughput runs the throughput phase for n messages of about size bytes.
func throughput(ctx context.Context, cfg DeliveryConfig, name string, n, size int) ([]DeliveryResult, error) {
	var bytesIn atomic.Int64
	sink, srv, err := startPhase(ctx, cfg, func(m smtpsink.Message) { bytesIn.Add(int64(m.Size)) })
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	defer srv.stop() // a second stop does nothing
	client := newClient()

	msg := newMessage(size, "transactional")
	batch := max(1, min(cfg.BatchSize, (8<<20)/len(msg.tail)))
	serverCPU, benchCPU := srv.cpuTime(), selfCPU()
	start := time.Now()
	ids, err := acceptAll(ctx, client, srv, cfg.BatchConns, n, batch, func(i int) string { return fmt.Sprintf("t%d@example.com", i) }, msg)
	if err != nil {
		return nil, err
	}
	accepted := time.Since(start)
	deliveredDuring := sink.Count()
	if err := waitSink(ctx, sink, n); err != nil {
		return nil, err
	}
	e2e := time.Since(start)
	serverCPU, benchCPU = srv.cpuTime()-serverCPU, selfCPU()-benchCPU
	rss := srv.peakRSS()
	conns := sink.PeakConns()
	mean := int(bytesIn.Load() / int64(n))

	// The bare client: the same MIME, straight from here to the same sink, with the server
	// stopped so that it has the machine to itself.
	raw, err := srv.do(ctx, client, "GET", "/v1/messages/"+ids[0]+"/raw", nil)
	if err != nil {
		return nil, err
	}
	srv.stop()
	bare, err := bareClient(ctx, sink, cfg.Pool, raw, n)
	if err != nil {
		return nil, err
	}
	ratio := bare.Seconds() / e2e.Seconds() * 100
	return []DeliveryResult{
		{Name: name + ": accept (batches of " + strconv.Itoa(batch) + ")", Messages: n, Size: mean, Elapsed: accepted, PeakRSSKiB: rss,
			Note: fmt.Sprintf("%d delivered meanwhile", deliveredDuring)},
		{Name: name + ": delivered end to end", Messages: n, Size: mean, Elapsed: e2e, Conns: conns, PeakRSSKiB: rss,
			Note: fmt.Sprintf("%.0f%% of the bare client; the %d left after the last accept at %.0f/s%s", ratio,
				n-deliveredDuring, float64(n-deliveredDuring)/(e2e-accepted).Seconds(), cpuNote(serverCPU, benchCPU, n))},
		{Name: name + ": bare SMTP client (ceiling)", Messages: n, Size: len(raw), Elapsed: bare, Conns: cfg.Pool,
			Note: "transport/smtp, pool=" + strconv.Itoa(cfg.Pool) + relayDelayNote(cfg.RelayDelay)},
	}, nil
}

// relayDelayNote names the sink's delay per message, if any.
func relayDelayNote(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return ", the relay taking " + d.String() + " per message"
}

// cpuNote gives the CPU time spent per message, by the server and by this process (load generator
// and sink), or nothing where it could not be read: on a shared machine it compares binaries
// better than rates do.
func cpuNote(server, bench time.Duration, n int) string {
	if server <= 0 || n <= 0 {
		return ""
	}
	return fmt.Sprintf("; CPU per message: server %d µs, load generator and sink %d µs",
		server.Microseconds()/int64(n), bench.Microseconds()/int64(n))
}

// bareClient sends raw n times to sink through the relay transport postie builds for the
// sink's URL (a pool of pool connections), from 4×pool goroutines, and returns how long it
// took.
func bareClient(ctx context.Context, sink *smtpsink.Sink, pool int, raw []byte, n int) (time.Duration, error) {
	cfg := config.Default()
	cfg.SMTPURL = relayURL(sink, pool) + "&helo=bench.localhost"
	tr, err := app.NewTransport(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, err
	}
	defer tr.Close()
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 * pool {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				env := transport.Envelope{From: "bounce@shop.example", To: []string{fmt.Sprintf("b%d@example.com", i)}}
				if _, err := tr.Send(ctx, env, raw); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("bare client: %w", firstErr)
	}
	return time.Since(start), ctx.Err()
}

// latency runs the steady-rate phase.
func latency(ctx context.Context, cfg DeliveryConfig) ([]DeliveryResult, error) {
	n := int(cfg.LatencyRate * cfg.LatencyDuration.Seconds())
	tr := newTracker("lat-")
	sink, srv, err := startPhase(ctx, cfg, func(m smtpsink.Message) { tr.arrived(m) })
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	defer srv.stop()
	msg := newMessage(10<<10, "transactional")
	acc, err := steady(ctx, newClient(), srv, cfg.LatencyRate, n, tr, msg)
	if err != nil {
		return nil, err
	}
	if err := waitSink(ctx, sink, n); err != nil {
		return nil, err
	}
	lat := tr.latencies()
	r := DeliveryResult{Name: fmt.Sprintf("10 KB at %.0f/s: POST → relay 250", cfg.LatencyRate), Messages: n,
		Conns: sink.PeakConns(), PeakRSSKiB: srv.peakRSS()}
	r.P50, r.P99, r.Max = percentiles(lat)
	a := DeliveryResult{Name: fmt.Sprintf("10 KB at %.0f/s: POST → 202", cfg.LatencyRate), Messages: n}
	a.P50, a.P99, a.Max = percentiles(acc)
	return []DeliveryResult{a, r}, nil
}

// underLoad runs the transactional-under-load phase.
func underLoad(ctx context.Context, cfg DeliveryConfig) ([]DeliveryResult, error) {
	maxTx := cfg.TxMax
	if maxTx <= 0 {
		maxTx = int(cfg.TxRate * 3600)
	}
	tr := newTracker("tx-")
	var bulk atomic.Int64
	var bulkDone atomic.Int64 // UnixNano when the last broadcast message arrived
	done := make(chan struct{})
	sink, srv, err := startPhase(ctx, cfg, func(m smtpsink.Message) {
		if !tr.arrived(m) && int(bulk.Add(1)) == cfg.Broadcast {
			bulkDone.Store(m.At.UnixNano())
			close(done)
		}
	})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	defer srv.stop()
	client := newClient()

	bmsg := newMessage(10<<10, "broadcast")
	start := time.Now()
	_, err = acceptAll(ctx, client, srv, cfg.BatchConns, cfg.Broadcast, cfg.BatchSize,
		func(i int) string { return fmt.Sprintf("bulk-%d@example.com", i) }, bmsg)
	if err != nil {
		return nil, err
	}
	accepted := time.Since(start)
	backlog := cfg.Broadcast - int(bulk.Load())

	tmsg := newMessage(2<<10, "transactional")
	tctx, stop := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
		case <-tctx.Done():
		}
		stop()
	}()
	_, err = steady(tctx, client, srv, cfg.TxRate, maxTx, tr, tmsg)
	stop()
	if err != nil {
		return nil, err
	}
	if err := waitSink(ctx, sink, cfg.Broadcast+tr.sent()); err != nil {
		return nil, err
	}
	drained := time.Unix(0, bulkDone.Load()).Sub(start)
	rss := srv.peakRSS()
	lat := tr.latencies()
	tx := DeliveryResult{Name: fmt.Sprintf("2 KB transactional at %.0f/s while broadcast drains: POST → relay 250", cfg.TxRate),
		Messages: len(lat), Conns: sink.PeakConns(), PeakRSSKiB: rss, Note: fmt.Sprintf("backlog %d when they started", backlog)}
	tx.P50, tx.P99, tx.Max = percentiles(lat)
	return []DeliveryResult{
		{Name: fmt.Sprintf("10 KB broadcast: accept %d", cfg.Broadcast), Messages: cfg.Broadcast, Elapsed: accepted, PeakRSSKiB: rss},
		{Name: fmt.Sprintf("10 KB broadcast: %d delivered end to end", cfg.Broadcast), Messages: cfg.Broadcast, Elapsed: drained, Conns: sink.PeakConns(), PeakRSSKiB: rss},
		tx,
	}, nil
}

// msgTemplate is a request body with the recipient left out: head + address + tail.
type msgTemplate struct{ head, tail []byte }

func (m msgTemplate) with(to string) []byte {
	b := make([]byte, 0, len(m.head)+len(to)+len(m.tail))
	return append(append(append(b, m.head...), to...), m.tail...)
}

// newMessage is a message of the stream whose text and HTML parts make about size bytes of MIME.
func newMessage(size int, stream string) msgTemplate {
	const words = "shipping order parcel tracking delivery customer thanks update account invoice receipt "
	var text, html strings.Builder
	for k := 0; text.Len() < size*45/100; k++ {
		line := (words + words)[k%17 : k%17+70]
		text.WriteString(line + "\n")
		html.WriteString("<p>" + line + "</p>\n")
	}
	tail, _ := json.Marshal(map[string]any{
		"from":    "Shop <orders@shop.example>",
		"subject": "Your order has shipped",
		"text":    text.String(),
		"html":    html.String(),
		"stream":  stream,
		"tags":    []string{"bench"},
	})
	return msgTemplate{head: []byte(`{"to":["`), tail: append([]byte(`"],`), tail[1:]...)}
}

// acceptAll accepts n messages to addr(0…n-1) in batches of batch from conns clients and returns
// their ids in order.
func acceptAll(ctx context.Context, client *http.Client, srv *server, conns, n, batch int, addr func(int) string, m msgTemplate) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			var buf []byte
			for {
				from := int(next.Add(int64(batch))) - batch
				if from >= n || ctx.Err() != nil {
					return
				}
				to := min(n, from+batch)
				buf = append(buf[:0], `{"messages":[`...)
				for i := from; i < to; i++ {
					if i > from {
						buf = append(buf, ',')
					}
					buf = append(buf, m.with(addr(i))...)
				}
				buf = append(buf, "]}"...)
				out, err := srv.post(ctx, client, "/v1/messages/batch", buf)
				if err == nil {
					err = batchIDs(out, ids[from:to])
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return ids, ctx.Err()
}

// batchIDs reads a batch answer into ids and fails on the first refused item.
func batchIDs(out []byte, ids []string) error {
	var resp struct {
		Results []struct {
			ID    string          `json:"id"`
			Error json.RawMessage `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return fmt.Errorf("batch answer: %w", err)
	}
	if len(resp.Results) != len(ids) {
		return fmt.Errorf("batch answer has %d results for %d messages", len(resp.Results), len(ids))
	}
	for i, r := range resp.Results {
		if r.ID == "" {
			return fmt.Errorf("batch item refused: %s", r.Error)
		}
		ids[i] = r.ID
	}
	return nil
}

// waitSink waits until the sink has n messages, failing when it gains none for 60s.
func waitSink(ctx context.Context, sink *smtpsink.Sink, n int) error {
	last, since := sink.Count(), time.Now()
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := sink.WaitCount(wctx, n)
		cancel()
		if err == nil || ctx.Err() != nil {
			return ctx.Err()
		}
		if c := sink.Count(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) > time.Minute {
			return fmt.Errorf("the relay received %d of %d messages and nothing more for a minute", c, n)
		}
	}
}

// tracker times messages addressed prefix<seq>@… from their POST to the sink.
type tracker struct {
	prefix string
	mu     sync.Mutex
	start  map[int]time.Time // POSTs begun whose message has not arrived
	lat    []time.Duration   // of the messages arrived, in arrival order
	n      atomic.Int64      // sent so far
}

func newTracker(prefix string) *tracker {
	return &tracker{prefix: prefix, start: map[int]time.Time{}}
}

func (t *tracker) addr(i int) string { return t.prefix + strconv.Itoa(i) + "@example.com" }

func (t *tracker) sent() int { return int(t.n.Load()) }

// began records when message i's POST started.
func (t *tracker) began(i int, at time.Time) {
	t.mu.Lock()
	t.start[i] = at
	t.mu.Unlock()
}

// forget drops message i, whose POST failed.
func (t *tracker) forget(i int) {
	t.mu.Lock()
	delete(t.start, i)
	t.mu.Unlock()
}

// arrived records m if it is one of the tracker's and reports whether it was.
func (t *tracker) arrived(m smtpsink.Message) bool {
	if len(m.To) == 0 {
		return false
	}
	return t.arrivedAt(m.To[0], m.At)
}

// arrivedAt records that the message to address to arrived at, if it is one of the tracker's,
// and reports whether it was.
func (t *tracker) arrivedAt(to string, at time.Time) bool {
	rest, ok := strings.CutPrefix(to, t.prefix)
	if !ok {
		return false
	}
	seq, _, _ := strings.Cut(rest, "@")
	i, err := strconv.Atoi(seq)
	if err != nil {
		return true
	}
	t.mu.Lock()
	if t0, ok := t.start[i]; ok {
		t.lat = append(t.lat, at.Sub(t0))
		delete(t.start, i)
	}
	t.mu.Unlock()
	return true
}

// latencies of the messages arrived so far.
func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.lat...)
}

// steady posts up to n single messages at rate per second, each on its own goroutine so a slow
// answer does not slow the rate, until n are sent or ctx ends; it returns the POST latencies.
func steady(ctx context.Context, client *http.Client, srv *server, rate float64, n int, tr *tracker, m msgTemplate) ([]time.Duration, error) {
	interval := time.Duration(float64(time.Second) / rate)
	acc := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		tr.n.Add(1)
		wg.Go(func() {
			t0 := time.Now()
			tr.began(i, t0)
			_, err := srv.post(context.WithoutCancel(ctx), client, "/v1/messages", m.with(tr.addr(i)))
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			acc = append(acc, d)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	return acc, firstErr
}

// PrintDelivery writes delivery results as a Markdown table.
func PrintDelivery(w io.Writer, rs []DeliveryResult) {
	fmt.Fprintln(w, "| scenario | messages | MIME size | messages/s | p50 | p99 | max | relay conns | server peak RSS | note |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	dash := func(ok bool, s string) string {
		if !ok {
			return "–"
		}
		return s
	}
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name, r.Messages,
			dash(r.Size > 0, fmt.Sprintf("%.1f KB", float64(r.Size)/1024)),
			dash(r.Elapsed > 0, fmt.Sprintf("%.0f", r.Rate())),
			dash(r.P50 > 0, r.P50.Round(100*time.Microsecond).String()),
			dash(r.P99 > 0, r.P99.Round(100*time.Microsecond).String()),
			dash(r.Max > 0, r.Max.Round(100*time.Microsecond).String()),
			dash(r.Conns > 0, strconv.Itoa(r.Conns)),
			dash(r.PeakRSSKiB > 0, fmt.Sprintf("%d MiB", r.PeakRSSKiB/1024)),
			r.Note)
	}
}
