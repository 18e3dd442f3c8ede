package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
)

// CampaignConfig selects the campaign benchmark: Contacts contacts on one list, a campaign of a
// personalised ≈10 KB HTML newsletter to that list, started now, delivered to a loopback sink
// over Pool relay connections per node, while password resets are posted at TxRate.
type CampaignConfig struct {
	Binary   string   // the postie executable to start
	ExtraEnv []string // passed to every server
	// DatabaseURL and Nodes: as in Config.
	DatabaseURL string
	Nodes       int
	Out         io.Writer // progress lines; nil: none

	Contacts    int           // the audience
	FillClients int           // concurrent clients creating the contacts (default 4)
	Pool        int           // relay connections per node (postie's ?pool=N)
	RelayDelay  time.Duration // as in DeliveryConfig
	TxRate      float64       // password resets per second while the run delivers (0: none)
	// ProfileDir, when set, receives CPU profiles of every node taken back to back through its
	// POSTIE_DEBUG_LISTEN, each ProfileEvery long (default 10 s), from the start of the run to
	// its end: node<i>-<k>.pprof, profile k covering [k×ProfileEvery, (k+1)×ProfileEvery).
	ProfileDir   string
	ProfileEvery time.Duration
}

// CampaignResult is what one campaign run measured. Times are from the POST that started the
// campaign.
type CampaignResult struct {
	Contacts int
	Nodes    int
	Fill     time.Duration // creating the contacts (set-up, by the batch endpoint, before the run)

	Recipients   int           // the run's recipients once materialised
	FirstMessage time.Duration // start → the first campaign message at the sink
	Materialised time.Duration // start → the node working the run logged it materialised
	Delivered    int           // distinct recipients whose message reached the sink
	Duplicates   int           // messages beyond the first for one recipient
	LastMessage  time.Duration // start → the last campaign message at the sink
	Finished     time.Duration // start → the run's state is finished
	Size         int           // mean MIME bytes of a campaign message at the sink
	Progress     map[string]int

	PeakRSSKiB  int64 // the largest node's VmHWM over the run (the nodes start after the fill)
	ServerCPU   time.Duration
	BenchCPU    time.Duration
	DatabaseCPU time.Duration
	DatabasePID int
	PerNode     []int // campaign messages each node handed to the sink

	TxSent              int
	TxP50, TxP99, TxMax time.Duration // POST → the sink's 250
	Profiles            []string
}

// MaterialiseRate is recipients materialised per second, from the start.
func (r CampaignResult) MaterialiseRate() float64 {
	return perSecond(r.Recipients, r.Materialised)
}

// DeliveryRate is campaign messages at the sink per second, from the first to the last.
func (r CampaignResult) DeliveryRate() float64 {
	return perSecond(r.Delivered+r.Duplicates, r.LastMessage-r.FirstMessage)
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// campaignSink counts the campaign's messages at the sink by recipient (r<i>@example.com) and
// by node (the HELO name), and times the password resets (tx-<i>@example.com).
type campaignSink struct {
	counts   []atomic.Int32
	distinct atomic.Int64
	dups     atomic.Int64
	bytes    atomic.Int64
	first    atomic.Int64 // UnixNano of the first campaign message, 0 before
	last     atomic.Int64
	all      chan struct{} // closed when every recipient has a message
	tx       *tracker

	mu    sync.Mutex
	nodes map[string]int
}

func newCampaignSink(contacts int) *campaignSink {
	return &campaignSink{counts: make([]atomic.Int32, contacts), all: make(chan struct{}),
		tx: newTracker("tx-"), nodes: map[string]int{}}
}

func (c *campaignSink) arrived(m smtpsink.Message) {
	if c.tx.arrived(m) || len(m.To) == 0 {
		return
	}
	rest, ok := strings.CutPrefix(m.To[0], "r")
	seq, _, _ := strings.Cut(rest, "@")
	i, err := strconv.Atoi(seq)
	if !ok || err != nil || i < 0 || i >= len(c.counts) {
		return
	}
	at := m.At.UnixNano()
	c.first.CompareAndSwap(0, at)
	for l := c.last.Load(); at > l && !c.last.CompareAndSwap(l, at); l = c.last.Load() {
	}
	c.bytes.Add(int64(m.Size))
	c.mu.Lock()
	c.nodes[m.Helo]++
	c.mu.Unlock()
	if c.counts[i].Add(1) > 1 {
		c.dups.Add(1)
		return
	}
	if int(c.distinct.Add(1)) == len(c.counts) {
		close(c.all)
	}
}

// RunCampaign runs the campaign benchmark once: a fresh database gets the contacts, the list,
// the template and the campaign; fresh nodes then start it and deliver it.
func RunCampaign(ctx context.Context, cfg CampaignConfig) (CampaignResult, error) {
	res := CampaignResult{Contacts: cfg.Contacts, Nodes: max(1, cfg.Nodes)}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	cs := newCampaignSink(cfg.Contacts)
	sink, err := startSink(cfg.RelayDelay, cs.arrived)
	if err != nil {
		return res, err
	}
	defer sink.Close()
	var debug []string // node i's debug listener
	var events runEvents
	scfg := Config{Binary: cfg.Binary, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes, Logs: events.note,
		ExtraEnv: append([]string{"POSTIE_SMTP_URL=" + relayURL(sink, cfg.Pool), "POSTIE_LOG_LEVEL=info"}, cfg.ExtraEnv...),
		NodeEnv: func(i int) []string {
			env := []string{fmt.Sprintf("POSTIE_SMTP_URL=%s&helo=node%d.bench.test", relayURL(sink, cfg.Pool), i)}
			if i < len(debug) {
				env = append(env, "POSTIE_DEBUG_LISTEN="+debug[i])
			}
			return env
		}}
	srv, err := startServer(ctx, scfg)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	client := newClient()

	var list struct{ ID string }
	if err := srv.call(ctx, client, "POST", "/v1/lists", map[string]any{"name": "bench news"}, &list); err != nil {
		return res, err
	}
	fmt.Fprintf(out, "creating %d contacts on list %s through /v1/contacts/batch …\n", cfg.Contacts, list.ID)
	t0 := time.Now()
	if err := fillContacts(ctx, client, srv, max(1, cfg.FillClients), cfg.Contacts, list.ID); err != nil {
		return res, err
	}
	res.Fill = time.Since(t0)
	fmt.Fprintf(out, "  %s (%.0f contacts/s); restarting the node(s) for the run …\n", res.Fill.Round(time.Millisecond),
		perSecond(cfg.Contacts, res.Fill))

	// Fresh processes for the run, so its peak RSS is the run's alone.
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return res, err
		}
		for range res.Nodes {
			p, err := freePort()
			if err != nil {
				return res, err
			}
			debug = append(debug, "127.0.0.1:"+strconv.Itoa(p))
		}
	}
	if err := srv.restart(ctx, scfg); err != nil {
		return res, err
	}
	if err := srv.call(ctx, client, "PUT", "/v1/templates/bench-news", newsletterTemplate(), nil); err != nil {
		return res, err
	}
	var camp struct{ ID string }
	if err := srv.call(ctx, client, "POST", "/v1/campaigns", map[string]any{
		"name": "bench newsletter", "template": "bench-news", "audience": map[string]any{"lists": []string{list.ID}},
		"from": "Shop News <news@shop.example>", "tags": []string{"bench"},
		"data":     map[string]any{"issue": 42},
		"schedule": map[string]any{"kind": "now"},
	}, &camp); err != nil {
		return res, err
	}
	db, err := newDBCPU(ctx, srv.dbURL)
	if err != nil {
		return res, err
	}
	defer db.close()
	if err := db.sample(ctx); err != nil {
		return res, err
	}
	serverCPU, benchCPU := srv.cpuTime(), selfCPU()

	runCtx, endRun := context.WithCancel(ctx)
	defer endRun()
	var profiles sync.WaitGroup
	var profMu sync.Mutex
	for i, addr := range debug {
		profiles.Go(func() {
			files := takeProfiles(runCtx, addr, cfg.ProfileDir, i, cmp.Or(cfg.ProfileEvery, 10*time.Second))
			profMu.Lock()
			res.Profiles = append(res.Profiles, files...)
			profMu.Unlock()
		})
	}

	fmt.Fprintf(out, "starting campaign %s …\n", camp.ID)
	start := time.Now()
	if err := srv.call(ctx, client, "POST", "/v1/campaigns/"+camp.ID+"/start", nil, nil); err != nil {
		return res, err
	}
	since := func(unixNano int64) time.Duration { return time.Unix(0, unixNano).Sub(start) }

	// Password resets from the first campaign message until the last.
	var tx sync.WaitGroup
	var txErr error
	if cfg.TxRate > 0 {
		tx.Go(func() {
			for cs.first.Load() == 0 && runCtx.Err() == nil {
				select {
				case <-time.After(5 * time.Millisecond):
				case <-cs.all:
				case <-runCtx.Done():
				}
			}
			tctx, stop := context.WithCancel(runCtx)
			defer stop()
			go func() {
				select {
				case <-cs.all:
				case <-tctx.Done():
				}
				stop()
			}()
			_, txErr = steady(tctx, client, srv, cfg.TxRate, int(cfg.TxRate*3600), cs.tx, newMessage(2<<10, "transactional"))
		})
	}

	// Follow the run: materialised, then every message at the sink, then finished.
	runPath := ""
	var run campaignRun
	lastPrint, lastCount := start, 0
	// A run that shows no change for this long has stalled: the benchmark ends with an error.
	const stall = 30 * time.Second
	lastSeen, lastChange := "", start
	// Not often: a run's progress counts its recipients and messages, which costs the server
	// more CPU the larger the run.
	const poll = 10 * time.Second
	for {
		if runPath == "" {
			var runs struct{ Data []campaignRun }
			if err := srv.call(ctx, client, "GET", "/v1/campaigns/"+camp.ID+"/runs", nil, &runs); err != nil {
				return res, err
			}
			if len(runs.Data) > 0 {
				runPath = "/v1/campaigns/" + camp.ID + "/runs/" + runs.Data[0].ID
			}
		}
		if runPath != "" {
			if err := srv.call(ctx, client, "GET", runPath, nil, &run); err != nil {
				return res, err
			}
			if run.Materialised && res.Recipients == 0 {
				res.Recipients = run.Recipients
			}
			if run.State == "finished" || run.State == "cancelled" {
				res.Finished = time.Since(start)
				break
			}
		}
		n := int(cs.distinct.Load())
		if seen := fmt.Sprint(run.ID, run.State, run.Recipients, n); seen != lastSeen {
			lastSeen, lastChange = seen, time.Now()
		} else if time.Since(lastChange) > stall {
			endRun()
			return res, fmt.Errorf("the run changed nothing for %s: %d of %d at the sink, run %+v", stall, n, cfg.Contacts, run)
		}
		if time.Since(lastPrint) >= 10*time.Second {
			fmt.Fprintf(out, "  %4.0fs: %d recipients materialised, %d at the sink (%.0f/s), run %s, in flight %d\n",
				time.Since(start).Seconds(), run.Recipients, n, perSecond(n-lastCount, time.Since(lastPrint)), run.State, run.InFlight)
			lastPrint, lastCount = time.Now(), n
		}
		select {
		case <-time.After(poll):
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	res.Progress = run.Progress
	select {
	case <-cs.all:
	case <-time.After(10 * time.Second):
	}
	tx.Wait()
	if txErr != nil {
		endRun()
		return res, fmt.Errorf("password resets: %w", txErr)
	}
	// The resets still on their way.
	for deadline := time.Now().Add(time.Minute); len(cs.tx.latencies()) < cs.tx.sent() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	endRun()
	res.ServerCPU, res.BenchCPU = srv.cpuTime()-serverCPU, selfCPU()-benchCPU
	if res.DatabaseCPU, res.DatabasePID, err = db.since(ctx); err != nil {
		return res, err
	}
	for _, n := range srv.nodes {
		res.PeakRSSKiB = max(res.PeakRSSKiB, n.peakRSS())
	}
	profiles.Wait()

	if at := events.materialised(); !at.IsZero() {
		res.Materialised = at.Sub(start)
	}
	res.Delivered, res.Duplicates = int(cs.distinct.Load()), int(cs.dups.Load())
	res.FirstMessage, res.LastMessage = since(cs.first.Load()), since(cs.last.Load())
	if n := res.Delivered + res.Duplicates; n > 0 {
		res.Size = int(cs.bytes.Load() / int64(n))
	}
	cs.mu.Lock()
	for i := range res.Nodes {
		res.PerNode = append(res.PerNode, cs.nodes[fmt.Sprintf("node%d.bench.test", i)])
	}
	cs.mu.Unlock()
	lat := cs.tx.latencies()
	res.TxSent = cs.tx.sent()
	res.TxP50, res.TxP99, res.TxMax = percentiles(lat)
	if len(lat) < res.TxSent {
		return res, fmt.Errorf("%d of %d password resets reached the sink", len(lat), res.TxSent)
	}
	if res.Delivered != cfg.Contacts || run.State != "finished" {
		return res, fmt.Errorf("run %s with %d of %d recipients at the sink", run.State, res.Delivered, cfg.Contacts)
	}
	return res, nil
}

// runEvents reads the nodes' logs for when the run was materialised: the node working the run
// logs it at once, which costs nothing, where reading the run's progress often enough to time it
// would take the server's CPU from the materialisation it times.
type runEvents struct {
	mu sync.Mutex
	at time.Time
}

func (e *runEvents) note(line string) {
	if !strings.Contains(line, `msg="campaign run materialised"`) {
		return
	}
	ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return
	}
	e.mu.Lock()
	e.at = at
	e.mu.Unlock()
}

// materialised is when a node logged the run materialised (zero before).
func (e *runEvents) materialised() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.at
}

// campaignRun is the part of a run resource the benchmark reads.
type campaignRun struct {
	ID           string         `json:"id"`
	State        string         `json:"state"`
	Materialised bool           `json:"materialised"`
	Recipients   int            `json:"recipients"`
	Progress     map[string]int `json:"progress"`
	InFlight     int            `json:"in_flight"`
}

// call sends body (JSON; nil for none) and decodes a 2xx answer into out (nil: ignored).
func (s *server) call(ctx context.Context, client *http.Client, method, path string, body, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	ans, err := s.do(ctx, client, method, path, b)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(ans, out); err != nil {
		return fmt.Errorf("%s %s: %w: %.200s", method, path, err, ans)
	}
	return nil
}

// fillContacts creates contacts r0…r<n-1>@example.com, each with a name and two attributes,
// subscribed to list, in batches of 1,000 from clients clients.
func fillContacts(ctx context.Context, client *http.Client, srv *server, clients, n int, list string) error {
	const batch = 1000
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	plans := []string{"free", "pro", "team"}
	cities := []string{"Lyon", "Porto", "Busan", "Austin", "Kraków"}
	for range clients {
		wg.Go(func() {
			var buf []byte
			for {
				from := int(next.Add(batch)) - batch
				if from >= n || ctx.Err() != nil {
					return
				}
				buf = append(buf[:0], `{"contacts":[`...)
				for i := from; i < min(n, from+batch); i++ {
					if i > from {
						buf = append(buf, ',')
					}
					buf = fmt.Appendf(buf, `{"email":"r%d@example.com","name":"Reader %d","attributes":{"plan":%q,"city":%q},"lists":[%q]}`,
						i, i, plans[i%3], cities[i%5], list)
				}
				buf = append(buf, "]}"...)
				ans, err := srv.post(ctx, client, "/v1/contacts/batch", buf)
				var r struct{ Counts struct{ Created, Failed int } }
				if err == nil {
					err = json.Unmarshal(ans, &r)
				}
				if err == nil && (r.Counts.Failed > 0 || r.Counts.Created != min(n, from+batch)-from) {
					err = fmt.Errorf("contacts batch at %d: %.300s", from, ans)
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
		return firstErr
	}
	return ctx.Err()
}

// newsletterTemplate is a newsletter of about 10 KB of HTML, personalised with the contact's
// name and an attribute, with its unsubscribe link, and a short text part.
func newsletterTemplate() map[string]any {
	var html strings.Builder
	html.WriteString(`<!doctype html><html><body style="font-family:Helvetica,Arial,sans-serif;color:#222">` + "\n")
	html.WriteString(`<h1>Shop News #{{.data.issue}}</h1><p>Hello {{.contact.name}},</p>` + "\n")
	html.WriteString(`<p>As a member of our <b>{{.contact.attributes.plan}}</b> plan, here is what is new this month.</p>` + "\n")
	const story = `<p>Our workshop has been busy: new parcels, faster tracking, and a delivery window you choose at checkout. ` +
		`Customers told us what they wanted from an order update, and this month we shipped most of it. ` +
		`Read on for the details, the new prices and a few words from the team.</p>` + "\n"
	for k := 0; html.Len() < 9800; k++ {
		fmt.Fprintf(&html, `<h2 style="font-size:18px">Story %d</h2>`+"\n"+story+`<p><a href="https://shop.example/news/%d">Read more</a></p>`+"\n", k+1, k+1)
	}
	html.WriteString(`<p style="font-size:12px;color:#777">You get this because you subscribed. <a href="{{unsubscribe_url}}">Unsubscribe</a>.</p></body></html>`)
	return map[string]any{
		"subject": "Shop News #{{.data.issue}} for {{.contact.name}}",
		"html":    html.String(),
		"text":    "Hello {{.contact.name}},\n\nthis month's Shop News is best read in HTML: https://shop.example/news\n\nUnsubscribe: {{unsubscribe_url}}\n",
	}
}

// takeProfiles takes CPU profiles of the node whose debug listener is at addr, every long, back
// to back until ctx ends, into dir/node<i>-<k>.pprof, and returns the files written.
func takeProfiles(ctx context.Context, addr, dir string, i int, every time.Duration) []string {
	var files []string
	for k := 0; ctx.Err() == nil; k++ {
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(every.Seconds()))
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return files
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return files
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return files
		}
		name := filepath.Join(dir, fmt.Sprintf("node%d-%03d.pprof", i, k))
		if err := os.WriteFile(name, b, 0o644); err != nil {
			return files
		}
		files = append(files, name)
	}
	return files
}

// PrintCampaign writes r as Markdown tables.
func PrintCampaign(w io.Writer, r CampaignResult) {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	fmt.Fprintln(w, "| contacts | nodes | first message at the sink | materialised | recipients/s | delivered/s (first → last) | run | server peak RSS | password reset POST → sink p50 / p99 (max) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| %d | %d | %s | %s | %.0f | %.0f | %s | %d MiB | %s / %s (%s), %d sent |\n", r.Contacts, r.Nodes,
		ms(r.FirstMessage), ms(r.Materialised), r.MaterialiseRate(), r.DeliveryRate(), ms(r.Finished), r.PeakRSSKiB/1024,
		ms(r.TxP50), ms(r.TxP99), ms(r.TxMax), r.TxSent)
	per := func(d time.Duration) string {
		if r.Delivered == 0 {
			return "–"
		}
		return strconv.FormatInt((d/time.Duration(r.Delivered)).Microseconds(), 10) + " µs"
	}
	dbCPU := "–"
	if r.DatabasePID > 0 {
		dbCPU = fmt.Sprintf("%s (%d processes)", per(r.DatabaseCPU), r.DatabasePID)
	}
	fmt.Fprintf(w, "\n%d delivered (%d duplicates), %.1f KB of MIME each, the last %s after the start; contacts created in %s (%.0f/s, not part of the run).\n",
		r.Delivered, r.Duplicates, float64(r.Size)/1024, ms(r.LastMessage), ms(r.Fill), perSecond(r.Contacts, r.Fill))
	fmt.Fprintf(w, "CPU per recipient: server %s, database %s, load generator and sink %s. Messages per node: %v. Progress: %v.\n",
		per(r.ServerCPU), dbCPU, per(r.BenchCPU), r.PerNode, r.Progress)
	if len(r.Profiles) > 0 {
		fmt.Fprintf(w, "CPU profiles: %s\n", strings.Join(r.Profiles, " "))
	}
}
