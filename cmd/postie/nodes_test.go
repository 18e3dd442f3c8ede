package main_test

// Helpers for the tests that run `postie serve` processes (nodes) against a loopback relay, kill
// them or cut them off their database mid-delivery, and count what reached the relay:
// crash_test.go (one node on SQLite) and multinode_test.go (several on PostgreSQL).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/store"
)

// nodeKey is the API key of every node startNode starts.
const nodeKey = "pk_node_test_key_0123456789"

// relay is a loopback SMTP sink that counts deliveries per Message-ID and per node.
type relay struct {
	*smtpsink.Sink
	mu    sync.Mutex
	seen  map[string]int // Message-ID → deliveries
	nodes map[string]int // HELO name (one per node) → deliveries
}

// startRelay starts a relay that waits delay before answering each message's data, so that a
// delivery lasts long enough to be interrupted.
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

// waitCount fails the test unless the relay has accepted n messages before ctx ends.
func (r *relay) waitCount(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	if err := r.WaitCount(ctx, n); err != nil {
		t.Fatalf("relay got %d of %d messages: %v", r.Count(), n, err)
	}
}

// check fails the test unless the relay saw exactly want distinct messages, each of them once,
// except those in inflight: the messages leased by a process, their outcome not recorded, when it
// was killed. Each of those may have reached the relay before the kill and again after it, so
// it may arrive twice, never more. (In flight means claimed: a node keeps a local queue of
// claimed messages, so some of them had not been handed to the relay yet.) It returns the
// number of duplicates.
func (r *relay) check(t *testing.T, want int, inflight []store.Message) int {
	t.Helper()
	claimed := make(map[string]bool, len(inflight))
	for _, m := range inflight {
		claimed[m.MessageID] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seen) != want {
		t.Errorf("relay saw %d distinct messages, want %d", len(r.seen), want)
	}
	dups := 0
	for id, n := range r.seen {
		if n > 1 && (!claimed[id] || n > 2) {
			t.Errorf("message %s reached the relay %d times; in flight at the kill: %v", id, n, claimed[id])
		}
		dups += n - 1
	}
	if dups > len(inflight) {
		t.Errorf("%d duplicates, more than the %d messages in flight", dups, len(inflight))
	}
	return dups
}

// startNode starts `postie serve` in dir, delivering to the relay (a relay, or another sink)
// over up to 4 connections and greeting it as helo.
func startNode(t *testing.T, dir string, r interface{ URL() string }, helo string, env ...string) *proc {
	t.Helper()
	return startNodeBinary(t, binary(t), dir, r, helo, env...)
}

// startNodeBinary is startNode with the postie binary at bin.
func startNodeBinary(t *testing.T, bin, dir string, r interface{ URL() string }, helo string, env ...string) *proc {
	t.Helper()
	return startBinary(t, bin, dir, append([]string{
		"POSTIE_API_KEY=" + nodeKey, "POSTIE_FROM=node@postie.example", "POSTIE_POSTAL_ADDRESS=1 Test Street",
		fmt.Sprintf("POSTIE_SMTP_URL=%s&pool=4&helo=%s", r.URL(), helo),
	}, env...)...)
}

// startNodes starts n nodes on the database at url; node i greets the relay as
// node<i>.postie.test.
func startNodes(t *testing.T, n int, url string, r *relay, env ...string) []*proc {
	t.Helper()
	// One after another: start fails the test with t.Fatal, which only the test's goroutine may
	// call. (Nodes migrating at once is TestMigrateTwiceAndConcurrently in the driver.)
	nodes := make([]*proc, n)
	for i := range nodes {
		nodes[i] = startNode(t, t.TempDir(), r, fmt.Sprintf("node%d.postie.test", i),
			append([]string{"POSTIE_DATABASE_URL=" + url}, env...)...)
	}
	return nodes
}

// acceptAcross sends total broadcast messages in batches of 500, spread over the nodes
// round-robin, from several clients at once, and fails the test unless every batch is accepted
// whole.
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
					"subject": fmt.Sprintf("message %d", first+i), "text": "hello", "stream": "broadcast"}
			}
			code, body, err := node.tryRequest("POST", "/v1/messages/batch", nodeKey, map[string]any{"messages": batch})
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

// killMidDelivery waits until the relay has a quarter of the total messages, then SIGKILLs p and
// returns when it died. It fails the test if the relay had all of them by then: the kill must
// interrupt the delivery.
func killMidDelivery(ctx context.Context, t *testing.T, p *proc, r *relay, total int) time.Time {
	t.Helper()
	r.waitCount(ctx, t, total/4)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	killed := time.Now()
	atKill := r.Count()
	if atKill >= total {
		t.Fatalf("everything was delivered before the kill (%d); slow the relay down", atKill)
	}
	t.Logf("killed a node with %d of %d messages at the relay", atKill, total)
	return killed
}

// leasedBy returns the messages in st that the (dead) process p holds leased: status sending,
// its pid in the lease owner (host/pid/random).
func leasedBy(ctx context.Context, t *testing.T, st store.Store, p *proc) []store.Message {
	t.Helper()
	owner := fmt.Sprintf("/%d/", p.cmd.Process.Pid)
	var leased []store.Message
	// Page by page: one listing returns at most store.MaxListLimit messages.
	params := store.MessageListParams{Statuses: []store.Status{store.StatusSending}, Limit: store.MaxListLimit}
	for {
		page, err := st.MessageList(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if strings.Contains(m.LeaseOwner, owner) {
				leased = append(leased, m)
			}
		}
		if len(page) < params.Limit {
			return leased
		}
		params.Cursor = page[len(page)-1].ID
	}
}

// settled waits until no message is pending (queued, sending, deferred), and fails the test at
// once if one failed.
func settled(t *testing.T, p *proc, within time.Duration) {
	t.Helper()
	waitFor(t, within, func() error {
		code, body := p.request("GET", "/v1/messages?status=queued,sending,deferred,failed&limit=5", nodeKey, nil)
		var page struct {
			Data []struct{ ID, Status string }
		}
		_ = json.Unmarshal(body, &page)
		for _, m := range page.Data {
			if m.Status == "failed" {
				t.Fatalf("message %s failed: %s", m.ID, body)
			}
		}
		if code != 200 || len(page.Data) != 0 {
			return fmt.Errorf("messages still pending: %d %s", code, body)
		}
		return nil
	})
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
