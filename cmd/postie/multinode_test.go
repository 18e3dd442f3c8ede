package main_test

// Many postie processes on one PostgreSQL database (issue 5): the work spreads across them, each
// message goes out once in normal operation, and a node's death or a database outage loses nothing.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postie/postie/internal/smtpsink"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

const clusterKey = "pk_cluster_test_key_0123456789"

// relay is a loopback SMTP sink that counts deliveries per Message-ID.
type relay struct {
	*smtpsink.Sink
	mu    sync.Mutex
	seen  map[string]int // Message-ID → deliveries
	nodes map[string]int // HELO name (one per node) → deliveries
}

func startRelay(t *testing.T, delay time.Duration) *relay {
	t.Helper()
	r := &relay{seen: map[string]int{}, nodes: map[string]int{}}
	sink, err := smtpsink.Start(smtpsink.Options{
		Script: func(s smtpsink.Step) smtpsink.Action {
			if s.Stage == "data" && delay > 0 {
				return smtpsink.Action{Delay: delay}
			}
			return smtpsink.Action{}
		},
		OnMessage: func(m smtpsink.Message) {
			r.mu.Lock()
			r.seen[m.MessageID]++
			r.nodes[m.Helo]++
			r.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	r.Sink = sink
	return r
}

// check fails unless the relay saw exactly want distinct messages and at most maxDups
// duplicates; it returns the number of duplicates.
func (r *relay) check(t *testing.T, want, maxDups int) int {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	dups := 0
	for _, n := range r.seen {
		dups += n - 1
	}
	if len(r.seen) != want {
		t.Errorf("relay saw %d distinct messages, want %d", len(r.seen), want)
	}
	if dups > maxDups {
		t.Errorf("%d duplicates, more than the %d allowed", dups, maxDups)
	}
	return dups
}

// startNodes starts n `postie serve` processes on the database at url; node i greets the relay
// as node<i>.postie.test.
func startNodes(t *testing.T, n int, url string, sink *relay, env ...string) []*proc {
	t.Helper()
	// One after another: start fails the test with t.Fatal, which only the test's goroutine may
	// call. (Nodes migrating at once is TestMigrateTwiceAndConcurrently in the driver.)
	nodes := make([]*proc, n)
	for i := range nodes {
		nodes[i] = start(t, t.TempDir(), append([]string{
			"POSTIE_API_KEY=" + clusterKey, "POSTIE_FROM=cluster@postie.example",
			"POSTIE_DATABASE_URL=" + url,
			fmt.Sprintf("POSTIE_SMTP_URL=%s&pool=4&helo=node%d.postie.test", sink.URL(), i),
		}, env...)...)
	}
	return nodes
}

// acceptAcross sends total broadcast messages in batches of 500, spread over the nodes
// round-robin, from several clients at once.
func acceptAcross(t *testing.T, nodes []*proc, total int) {
	t.Helper()
	const size = 500
	var wg sync.WaitGroup
	errs := make(chan string, total/size+1)
	for first := 0; first < total; first += size {
		node := nodes[(first/size)%len(nodes)]
		wg.Go(func() {
			batch := make([]map[string]any, min(size, total-first))
			for i := range batch {
				batch[i] = map[string]any{"to": []string{fmt.Sprintf("user%d@example.com", first+i)},
					"subject": fmt.Sprintf("cluster %d", first+i), "text": "hello", "stream": "broadcast"}
			}
			code, body, err := node.tryRequest("POST", "/v1/messages/batch", clusterKey, map[string]any{"messages": batch})
			if err != nil || code != 200 || bytes.Contains(body, []byte(`"error"`)) {
				errs <- fmt.Sprintf("batch at %d: %v %d %.300s", first, err, code, body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// settled waits until no message is pending (queued, sending, deferred) and none failed.
func settled(t *testing.T, p *proc, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, body := p.request("GET", "/v1/messages?status=queued,sending,deferred,failed&limit=5", clusterKey, nil)
		var page struct {
			Data []struct{ ID, Status string }
		}
		_ = json.Unmarshal(body, &page)
		for _, m := range page.Data {
			if m.Status == "failed" {
				t.Fatalf("message %s failed: %s", m.ID, body)
			}
		}
		if code == 200 && len(page.Data) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages still pending after %v: %d %s", within, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterExactlyOnce: three nodes on one PostgreSQL, 10,000 messages accepted through all
// three, each delivered exactly once, and every node did part of the work.
func TestClusterExactlyOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 10000
	sink := startRelay(t, 0)
	nodes := startNodes(t, 3, url, sink)
	acceptAcross(t, nodes, total)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sink.WaitCount(ctx, total); err != nil {
		t.Fatalf("relay got %d of %d messages: %v", sink.Count(), total, err)
	}
	settled(t, nodes[0], time.Minute)
	for i, n := range nodes {
		if code := n.stop(); code != 0 {
			t.Errorf("node %d: exit %d after SIGTERM:\n%s", i, code, n.errOut())
		}
	}
	sink.check(t, total, 0)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	t.Logf("deliveries per node: %v", sink.nodes)
	if len(sink.nodes) != len(nodes) {
		t.Errorf("deliveries per node: %v; want every node to take part", sink.nodes)
	}
}

// TestClusterNodeKilled: one of three nodes is SIGKILLed mid-flow. Nothing is lost, the
// duplicates stay within what that node had in flight, and the survivors take its leases over
// once they expire.
func TestClusterNodeKilled(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 10000
	const lease = 5 * time.Second
	sink := startRelay(t, time.Millisecond)
	nodes := startNodes(t, 3, url, sink, "POSTIE_LEASE="+lease.String())
	acceptAcross(t, nodes, total)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sink.WaitCount(ctx, total/4); err != nil {
		t.Fatalf("relay got %d messages: %v", sink.Count(), err)
	}
	victim := nodes[1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.done
	killed := time.Now()
	atKill := sink.Count()
	if atKill >= total {
		t.Fatalf("everything was delivered before the kill (%d); slow the relay down", atKill)
	}

	// What the dead node had in flight: messages still leased to it.
	st, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sending, err := st.MessageList(ctx, store.MessageListParams{Statuses: []store.Status{store.StatusSending}, Limit: total})
	if err != nil {
		t.Fatal(err)
	}
	owner := fmt.Sprintf("/%d/", victim.cmd.Process.Pid)
	var orphans []store.Message
	for _, m := range sending {
		if strings.Contains(m.LeaseOwner, owner) {
			orphans = append(orphans, m)
		}
	}
	t.Logf("killed a node with %d messages at the relay; it held %d leases", atKill, len(orphans))

	if err := sink.WaitCount(ctx, total); err != nil {
		t.Fatalf("after the kill the relay has %d of %d messages: %v", sink.Count(), total, err)
	}
	settled(t, nodes[0], time.Minute)
	for _, i := range []int{0, 2} {
		if code := nodes[i].stop(); code != 0 {
			t.Errorf("node %d: exit %d after SIGTERM:\n%s", i, code, nodes[i].errOut())
		}
	}
	sink.check(t, total, len(orphans))

	// The orphans were taken over after their lease ended, not before and not much later: the
	// rescue loop runs every lease/4 (at least every second) on each survivor.
	for _, m := range orphans {
		events, err := st.MessageEvents(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		var expired, finished time.Time
		for _, e := range events {
			switch e.Type {
			case store.EventLeaseExpired:
				expired = e.At
			case store.EventSent, store.EventDeferred, store.EventFailed:
				if finished.IsZero() {
					finished = e.At
				}
			}
		}
		if expired.IsZero() && !finished.IsZero() && finished.Before(killed) {
			// The dead node's last commit was still running in the server when the snapshot
			// was read: its outcome landed after all, timed by the node before it died.
			continue
		}
		if expired.IsZero() {
			t.Errorf("message %s: no lease_expired event in %v", m.ID, events)
			continue
		}
		if expired.Before(m.LeaseUntil) || expired.After(m.LeaseUntil.Add(lease)) {
			t.Errorf("message %s: lease until %v, taken over at %v", m.ID, m.LeaseUntil, expired)
		}
	}
	t.Logf("orphans delivered by the survivors %v after the kill", time.Since(killed).Round(time.Millisecond))
}

// TestDatabaseOutage cuts a node off its database for a few seconds mid-delivery: nothing is
// lost, nothing is marked failed because of it, and the node carries on when the database is
// back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 2000
	px := startProxy(t, url)
	sink := startRelay(t, time.Millisecond)
	nodes := startNodes(t, 1, px.url, sink)
	acceptAcross(t, nodes, total)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sink.WaitCount(ctx, total/5); err != nil {
		t.Fatalf("relay got %d messages: %v", sink.Count(), err)
	}
	px.cut()
	time.Sleep(5 * time.Second)
	if code, _ := nodes[0].request("GET", "/readyz", "", nil); code != 503 {
		t.Errorf("/readyz answers %d while the database is unreachable, want 503", code)
	}
	msg := map[string]any{"to": []string{"late@example.com"}, "subject": "during the outage", "text": "hi"}
	if code, body := nodes[0].request("POST", "/v1/messages", clusterKey, msg); code != 503 {
		t.Errorf("accepting during the outage: %d %s, want 503", code, body)
	}
	px.restore()

	if err := sink.WaitCount(ctx, total); err != nil {
		t.Fatalf("after the outage the relay has %d of %d messages: %v", sink.Count(), total, err)
	}
	settled(t, nodes[0], 2*time.Minute)
	if code := nodes[0].stop(); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, nodes[0].errOut())
	}
	// Outcomes refused during the outage are retried for a lease time (60 s here, longer than the
	// outage) and recorded when the database is back; a claim whose answer was lost leaves its
	// messages leased, unsent, until the lease ends. So nothing goes out twice.
	dups := sink.check(t, total, 0)
	t.Logf("%d duplicates after a 5 s outage", dups)
}

// proxy forwards TCP connections to the database and can cut them all (an outage) and refuse
// new ones until restored.
type proxy struct {
	l      net.Listener
	target string
	url    string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
}

func startProxy(t *testing.T, dbURL string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// postgres://user@host:port/db?… → the same through the proxy.
	rest := dbURL[strings.Index(dbURL, "@")+1:]
	target := rest[:strings.IndexAny(rest, "/?")]
	p := &proxy{l: l, target: target, conns: map[net.Conn]bool{},
		url: strings.Replace(dbURL, "@"+target, "@"+l.Addr().String(), 1)}
	go p.serve()
	t.Cleanup(func() { _ = l.Close(); p.cut() })
	return p
}

func (p *proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = true
		}
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *proxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	p.conns[up] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_ = c.Close()
	_ = up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// cut closes every open connection and refuses new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
