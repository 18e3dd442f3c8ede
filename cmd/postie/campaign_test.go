package main_test

// Campaigns through the real binary: contacts on lists, a template and a campaign made over the
// API, its messages counted per recipient at a loopback relay, while it is paused, resumed,
// cancelled, unsubscribed from, killed, or worked by three nodes on PostgreSQL.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/store/postgres/pgtest"
)

// campaignRelay is a loopback SMTP sink that records each campaign message by recipient, by
// Message-ID and by node (HELO), and keeps every message's List-Unsubscribe link. A message
// counts as a campaign's when its subject begins with that campaign's subject prefix.
type campaignRelay struct {
	*smtpsink.Sink
	mu      sync.Mutex
	pending map[int]received          // connection → the message its DATA stage read
	got     map[string][]received     // recipient → messages, in arrival order
	unsub   map[string]string         // recipient → the https one-click link of its latest message
	nodes   map[string]map[string]int // subject prefix → HELO → messages
}

type received struct {
	subject, messageID, helo string
}

// startCampaignRelay starts a relay that waits delay before answering each message's data.
func startCampaignRelay(t *testing.T, delay time.Duration) *campaignRelay {
	t.Helper()
	r := &campaignRelay{pending: map[int]received{}, got: map[string][]received{}, unsub: map[string]string{},
		nodes: map[string]map[string]int{}}
	sink, err := smtpsink.Start(smtpsink.Options{
		Script: func(s smtpsink.Step) smtpsink.Action {
			if s.Stage != smtpsink.StageData {
				return smtpsink.Action{}
			}
			m, err := mail.ReadMessage(bytes.NewReader(s.Body))
			if err != nil {
				return smtpsink.Action{Code: 554, Text: "unreadable message"}
			}
			r.mu.Lock()
			r.pending[s.Conn] = received{subject: m.Header.Get("Subject")}
			if link := oneClick(m.Header.Get("List-Unsubscribe")); link != "" && len(s.Recipients) == 1 {
				r.unsub[s.Recipients[0]] = link
			}
			r.mu.Unlock()
			return smtpsink.Action{Delay: delay}
		},
		OnMessage: func(m smtpsink.Message) {
			r.mu.Lock()
			defer r.mu.Unlock()
			rc := r.pending[m.Conn]
			delete(r.pending, m.Conn)
			rc.messageID, rc.helo = m.MessageID, m.Helo
			for _, to := range m.To {
				r.got[to] = append(r.got[to], rc)
			}
			prefix, _, _ := strings.Cut(rc.subject, " ")
			if r.nodes[prefix] == nil {
				r.nodes[prefix] = map[string]int{}
			}
			r.nodes[prefix][m.Helo]++
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	r.Sink = sink
	return r
}

// oneClick is the https link of a List-Unsubscribe header ("" when none).
func oneClick(h string) string {
	for part := range strings.SplitSeq(h, ",") {
		part = strings.Trim(strings.TrimSpace(part), "<>")
		if strings.HasPrefix(part, "http") {
			return part
		}
	}
	return ""
}

// count is how many messages whose subject begins with prefix reached the relay.
func (r *campaignRelay) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, h := range r.nodes[prefix] {
		n += h
	}
	return n
}

// messages returns, for each recipient, the Message-IDs of its messages whose subject begins
// with prefix.
func (r *campaignRelay) messages(prefix string) map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for to, ms := range r.got {
		for _, m := range ms {
			if strings.HasPrefix(m.subject, prefix+" ") {
				out[to] = append(out[to], m.messageID)
			}
		}
	}
	return out
}

// perNode is how many messages whose subject begins with prefix each node (HELO) handed over.
func (r *campaignRelay) perNode(prefix string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for h, n := range r.nodes[prefix] {
		out[h] = n
	}
	return out
}

// waitCampaign waits until n messages whose subject begins with prefix have reached the relay.
// When it fails, it names the state of campaign's latest run on p (unless campaign is "").
func (r *campaignRelay) waitCampaign(t *testing.T, p *proc, campaign, prefix string, n int, within time.Duration) {
	t.Helper()
	waitFor(t, within, func() error {
		if c := r.count(prefix); c < n {
			run := ""
			if campaign != "" {
				_, body, _ := p.tryRequest("GET", "/v1/campaigns/"+campaign+"/runs", nodeKey, nil)
				run = fmt.Sprintf("; runs %s; the node's log: %s", body, tail(p.errOut(), 2000))
			}
			return fmt.Errorf("the relay has %d %q messages, want %d%s", c, prefix, n, run)
		}
		return nil
	})
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// checkOnce fails the test unless each of want (indexes of contacts c<i>@example.com) got
// exactly one message whose subject begins with prefix, and nobody else got one.
func (r *campaignRelay) checkOnce(t *testing.T, prefix string, want map[int]bool) {
	t.Helper()
	got := r.messages(prefix)
	for i := range want {
		if n := len(got[contactAddr(i)]); n != 1 {
			t.Errorf("%s got %d %q messages, want 1", contactAddr(i), n, prefix)
		}
	}
	for to, ids := range got {
		if !want[contactIndex(to)] {
			t.Errorf("%s got %d %q messages, want none", to, len(ids), prefix)
		}
	}
}

func contactAddr(i int) string { return "c" + strconv.Itoa(i) + "@example.com" }

// contactIndex is i of c<i>@example.com (-1 for another address).
func contactIndex(addr string) int {
	s, ok := strings.CutPrefix(addr, "c")
	s, _, _ = strings.Cut(s, "@")
	i, err := strconv.Atoi(s)
	if !ok || err != nil {
		return -1
	}
	return i
}

// campaignEnv is the environment of a campaign test's node.
func campaignEnv(env ...string) []string {
	return append([]string{"POSTIE_LOG_LEVEL=info"}, env...)
}

// call sends body as JSON and decodes the answer into out (when not nil), failing the test
// unless the status is want.
func call(t *testing.T, p *proc, method, path string, body any, want int, out any) {
	t.Helper()
	code, ans := p.request(method, path, nodeKey, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, ans, want)
	}
	if out != nil {
		if err := json.Unmarshal(ans, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, ans)
		}
	}
}

// makeLists creates n lists and returns their ids.
func makeLists(t *testing.T, p *proc, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		var l struct{ ID string }
		call(t, p, "POST", "/v1/lists", map[string]any{"name": fmt.Sprintf("list %d", i)}, 201, &l)
		ids[i] = l.ID
	}
	return ids
}

// makeContacts creates contacts c0…c<n-1>@example.com, contact i subscribed to the lists
// lists(i) returns, in batches of 1,000 from two clients.
func makeContacts(t *testing.T, p *proc, n int, lists func(i int) []string) {
	t.Helper()
	const size = 1000
	var wg sync.WaitGroup
	errs := make(chan string, n/size+1)
	sem := make(chan struct{}, 2)
	for first := 0; first < n; first += size {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			batch := make([]map[string]any, min(size, n-first))
			for j := range batch {
				i := first + j
				batch[j] = map[string]any{"email": contactAddr(i), "name": fmt.Sprintf("Reader %d", i),
					"attributes": map[string]any{"n": i}, "lists": lists(i)}
			}
			code, body, err := p.tryRequest("POST", "/v1/contacts/batch", nodeKey, map[string]any{"contacts": batch})
			var ans struct{ Counts struct{ Created int } }
			_ = json.Unmarshal(body, &ans)
			if err != nil || code != 200 || ans.Counts.Created != len(batch) {
				errs <- fmt.Sprintf("contacts at %d: %v %d %.300s", first, err, code, body)
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

// newsTemplate stores the campaigns' template: personalised with the contact's name and an
// attribute, with an unsubscribe link.
func newsTemplate(t *testing.T, p *proc) {
	t.Helper()
	call(t, p, "PUT", "/v1/templates/news", map[string]any{
		"subject": "{{.data.prefix}} for {{.contact.name}}",
		"html":    `<p>Hello {{.contact.name}}, reader number {{.contact.attributes.n}}.</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>`,
		"text":    "Hello {{.contact.name}}, reader number {{.contact.attributes.n}}.\nUnsubscribe: {{unsubscribe_url}}\n",
	}, 201, nil)
}

// startCampaign creates a campaign of the news template to lists whose messages' subjects
// begin with prefix (one word), starts it now, and returns its id.
func startCampaign(t *testing.T, p *proc, prefix string, lists []string) string {
	t.Helper()
	var c struct{ ID, State string }
	call(t, p, "POST", "/v1/campaigns", map[string]any{
		"name": prefix, "template": "news", "audience": map[string]any{"lists": lists},
		"from": "News <news@shop.example>", "data": map[string]any{"prefix": prefix},
		"schedule": map[string]any{"kind": "now"},
	}, 201, &c)
	call(t, p, "POST", "/v1/campaigns/"+c.ID+"/start", nil, 200, &c)
	if c.State != "running" {
		t.Fatalf("campaign %s started: state %q, want running", c.ID, c.State)
	}
	return c.ID
}

// runView is the part of a run resource the tests read.
type runView struct {
	ID           string         `json:"id"`
	State        string         `json:"state"`
	Materialised bool           `json:"materialised"`
	Recipients   int            `json:"recipients"`
	Progress     map[string]int `json:"progress"`
	InFlight     int            `json:"in_flight"`
}

// campaignRun returns the campaign's latest run.
func campaignRun(t *testing.T, p *proc, campaign string) runView {
	t.Helper()
	var runs struct{ Data []runView }
	call(t, p, "GET", "/v1/campaigns/"+campaign+"/runs", nil, 200, &runs)
	if len(runs.Data) == 0 {
		t.Fatalf("campaign %s has no run", campaign)
	}
	return runs.Data[0]
}

// waitRunState waits until the campaign's latest run is in state, and returns it.
func waitRunState(t *testing.T, p *proc, campaign, state string, within time.Duration) runView {
	t.Helper()
	var r runView
	waitFor(t, within, func() error {
		var runs struct{ Data []runView }
		code, body := p.request("GET", "/v1/campaigns/"+campaign+"/runs", nodeKey, nil)
		if err := json.Unmarshal(body, &runs); code != 200 || err != nil || len(runs.Data) == 0 {
			return fmt.Errorf("runs of %s: %d %s", campaign, code, body)
		}
		if r = runs.Data[0]; r.State != state {
			return fmt.Errorf("run %s is %s, want %s: %+v", r.ID, r.State, state, r)
		}
		return nil
	})
	return r
}

// nothingSending waits until no message is being handed to the relay, so that what reached it
// is all that will while nothing is due.
func nothingSending(t *testing.T, p *proc) {
	t.Helper()
	waitFor(t, 30*time.Second, func() error {
		code, body := p.request("GET", "/v1/messages?status=sending&limit=1", nodeKey, nil)
		var page struct{ Data []json.RawMessage }
		if err := json.Unmarshal(body, &page); code != 200 || err != nil || len(page.Data) > 0 {
			return fmt.Errorf("messages still sending: %d %s", code, body)
		}
		return nil
	})
}

// quiet fails the test if the relay gets another message whose subject begins with prefix
// within d. (Nothing arriving can only be watched for a while.)
func (r *campaignRelay) quiet(t *testing.T, prefix string, d time.Duration) {
	t.Helper()
	before := r.count(prefix)
	time.Sleep(d)
	if after := r.count(prefix); after != before {
		t.Errorf("%d %q messages reached the relay while none should, %d before", after-before, prefix, before)
	}
}

// sumExcept adds the counts of progress but those named.
func sumExcept(progress map[string]int, except ...string) int {
	n := 0
	for k, v := range progress {
		skip := false
		for _, e := range except {
			skip = skip || k == e
		}
		if !skip {
			n += v
		}
	}
	return n
}

// TestCampaignOverlappingLists: 20,000 contacts on three overlapping lists, each of them on one,
// two or three; a campaign to the three lists reaches each contact exactly once. The node is
// built without the race detector, which slows composing and storing 20,000 messages tenfold
// (the other campaign tests run the race build).
func TestCampaignOverlappingLists(t *testing.T) {
	t.Parallel()
	const total = 20000
	relay := startCampaignRelay(t, 0)
	p := startNodeBinary(t, plainBuild.get(t), t.TempDir(), relay, "node0.postie.test", campaignEnv()...)
	lists := makeLists(t, p, 3)
	makeContacts(t, p, total, func(i int) []string {
		var on []string
		if i%2 == 0 {
			on = append(on, lists[0])
		}
		if i%3 == 0 {
			on = append(on, lists[1])
		}
		if i%2 == 1 || i%5 == 0 {
			on = append(on, lists[2])
		}
		return on
	})
	newsTemplate(t, p)
	id := startCampaign(t, p, "Overlap", lists)
	relay.waitCampaign(t, p, id, "Overlap", total, 5*time.Minute)
	run := waitRunState(t, p, id, "finished", time.Minute)
	p.stop()

	want := make(map[int]bool, total)
	for i := range total {
		want[i] = true
	}
	relay.checkOnce(t, "Overlap", want)
	if run.Recipients != total || run.Progress["sent"] != total || sumExcept(run.Progress, "sent") != 0 {
		t.Errorf("run %+v: want %d recipients, all sent", run, total)
	}
}

// TestCampaignPauseResumeUnsubscribeCancel: a run paused mid-way sends nothing more until it is
// resumed, then everything; a contact who unsubscribes (the one-click link of an earlier
// message) while it is paused gets nothing; a second run cancelled mid-way sends nothing more,
// and its progress shows the rest cancelled.
func TestCampaignPauseResumeUnsubscribeCancel(t *testing.T) {
	t.Parallel()
	const total = 3000
	const leaver = total - 1 // the last contact: created last, its message among the last
	relay := startCampaignRelay(t, 2*time.Millisecond)
	p := startNode(t, t.TempDir(), relay, "node0.postie.test", campaignEnv("POSTIE_CAMPAIGN_WINDOW=100")...)
	lists := makeLists(t, p, 1)
	makeContacts(t, p, total, func(int) []string { return lists })
	newsTemplate(t, p)

	// An earlier message of the list to the leaver, whose one-click link they use later.
	call(t, p, "POST", "/v1/messages", map[string]any{"to": []string{contactAddr(leaver)}, "stream": "broadcast",
		"list_id": lists[0], "from": "News <news@shop.example>", "subject": "Welcome aboard", "text": "Hello"}, 202, nil)
	relay.waitCampaign(t, p, "", "Welcome", 1, 30*time.Second)
	relay.mu.Lock()
	link := relay.unsub[contactAddr(leaver)]
	relay.mu.Unlock()
	if link == "" {
		t.Fatal("the welcome message has no https List-Unsubscribe link")
	}

	id := startCampaign(t, p, "First", lists)
	relay.waitCampaign(t, p, id, "First", total/10, time.Minute)
	var c struct{ State string }
	call(t, p, "POST", "/v1/campaigns/"+id+"/pause", nil, 200, &c)
	if c.State != "paused" {
		t.Fatalf("paused campaign in state %q", c.State)
	}
	call(t, p, "POST", "/v1/campaigns/"+id+"/pause", nil, 409, nil)
	nothingSending(t, p)
	atPause := relay.count("First")
	if atPause >= total-1 {
		t.Fatalf("%d of %d messages were sent before the pause took hold; slow the relay down", atPause, total)
	}
	t.Logf("%d of %d messages at the relay when the pause took hold", atPause, total)
	if got := relay.messages("First")[contactAddr(leaver)]; len(got) > 0 {
		t.Fatalf("the leaver's message went out before the pause")
	}

	// The leaver unsubscribes with the one-click POST of RFC 8058.
	req, _ := http.NewRequest("POST", link, strings.NewReader("List-Unsubscribe=One-Click"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("one-click unsubscribe: %d", resp.StatusCode)
	}

	relay.quiet(t, "First", 1500*time.Millisecond)
	if r := campaignRun(t, p, id); r.State != "paused" {
		t.Errorf("run %+v, want paused", r)
	}
	call(t, p, "POST", "/v1/campaigns/"+id+"/resume", map[string]any{"reasons": []string{"manual"}}, 200, &c)
	if c.State != "running" {
		t.Errorf("resumed campaign in state %q", c.State)
	}
	run := waitRunState(t, p, id, "finished", 2*time.Minute)
	want := map[int]bool{}
	for i := range total - 1 {
		want[i] = true
	}
	relay.checkOnce(t, "First", want)
	left := run.Progress["unsubscribed"] + run.Progress["suppressed"]
	if run.Progress["sent"] != total-1 || left != 1 || sumExcept(run.Progress, "sent", "unsubscribed", "suppressed") != 0 {
		t.Errorf("run progress %v: want %d sent and the leaver unsubscribed (or suppressed)", run.Progress, total-1)
	}
	call(t, p, "POST", "/v1/campaigns/"+id+"/resume", nil, 409, nil)

	// A second campaign to the same list, cancelled mid-way.
	id2 := startCampaign(t, p, "Second", lists)
	relay.waitCampaign(t, p, id2, "Second", total/10, time.Minute)
	call(t, p, "POST", "/v1/campaigns/"+id2+"/cancel", nil, 200, &c)
	if c.State != "cancelled" {
		t.Fatalf("cancelled campaign in state %q", c.State)
	}
	nothingSending(t, p)
	atCancel := relay.count("Second")
	relay.quiet(t, "Second", 1500*time.Millisecond)
	run = waitRunState(t, p, id2, "cancelled", 30*time.Second)
	t.Logf("%d messages at the relay when the cancel took hold; progress %v", atCancel, run.Progress)
	// The audience is materialised in chunks beside the sending: a cancel may come before the
	// last contacts were reached, and those are no recipients of the run.
	if run.Recipients > total-1 || (run.Materialised && run.Recipients != total-1) {
		t.Errorf("cancelled run with %d recipients (materialised %v), want %d once materialised", run.Recipients,
			run.Materialised, total-1)
	}
	if run.Progress["sent"] != atCancel || run.Progress["cancelled"] == 0 ||
		run.Progress["sent"]+run.Progress["cancelled"] != run.Recipients {
		t.Errorf("cancelled run progress %v: want %d sent (as the relay got), the other %d recipients cancelled",
			run.Progress, atCancel, run.Recipients-atCancel)
	}
	if got := relay.messages("Second"); len(got) != atCancel {
		t.Errorf("%d recipients got the cancelled campaign's message, %d messages", len(got), atCancel)
	}
	call(t, p, "POST", "/v1/campaigns/"+id2+"/resume", nil, 409, nil)
	p.stop()
}

// TestCampaignCrash: the node is SIGKILLed while a run is being sent and started again: every
// recipient gets the message, and only those whose message was in flight at the kill may get
// it twice (the same message, never a second one).
func TestCampaignCrash(t *testing.T) {
	t.Parallel()
	const total = 4000
	relay := startCampaignRelay(t, 2*time.Millisecond)
	dir := t.TempDir()
	p := startNode(t, dir, relay, "node0.postie.test", campaignEnv()...)
	lists := makeLists(t, p, 1)
	makeContacts(t, p, total, func(int) []string { return lists })
	newsTemplate(t, p)
	id := startCampaign(t, p, "Crash", lists)

	relay.waitCampaign(t, p, id, "Crash", total/4, time.Minute)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	atKill := relay.count("Crash")
	if atKill >= total {
		t.Fatalf("everything was delivered before the kill (%d); slow the relay down", atKill)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	inflight := inflightAtKill(ctx, t, dir, p)
	t.Logf("killed with %d of %d messages at the relay, %d in flight", atKill, total, len(inflight))

	p2 := startNode(t, dir, relay, "node0.postie.test", campaignEnv()...)
	relay.waitCampaign(t, p2, id, "Crash", total, 3*time.Minute)
	run := waitRunState(t, p2, id, "finished", time.Minute)
	p2.stop()

	claimed := map[string]bool{}
	for _, m := range inflight {
		claimed[m.MessageID] = true
	}
	got := relay.messages("Crash")
	dups := 0
	for i := range total {
		ids := got[contactAddr(i)]
		switch {
		case len(ids) == 0:
			t.Errorf("%s got nothing", contactAddr(i))
		case len(ids) > 2 || (len(ids) == 2 && (ids[0] != ids[1] || !claimed[ids[0]])):
			t.Errorf("%s got %v; in flight at the kill: %v", contactAddr(i), ids, claimed[ids[0]])
		}
		dups += max(0, len(ids)-1)
	}
	if len(got) != total || dups > len(inflight) {
		t.Errorf("%d recipients, %d duplicates: want %d, at most the %d in flight", len(got), dups, total, len(inflight))
	}
	if run.Progress["sent"] != total || sumExcept(run.Progress, "sent") != 0 {
		t.Errorf("run progress %v: want all %d sent", run.Progress, total)
	}
	t.Logf("%d duplicates", dups)
}

// TestCampaignCluster: three nodes on one PostgreSQL database; a campaign started on one of them
// reaches each recipient exactly once, and every node delivers part of it. The node working the
// run takes the messages it creates for its own delivery while it has room (claimed at accept),
// so the relay is slow enough here (10 ms a message, 4 connections a node) that it cannot send
// them all itself: the others claim the rest. Built without the race detector, so that creating
// the messages outpaces one node's delivery.
func TestCampaignCluster(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	const total = 10000
	relay := startCampaignRelay(t, 10*time.Millisecond)
	nodes := make([]*proc, 3)
	for i := range nodes {
		nodes[i] = startNodeBinary(t, plainBuild.get(t), t.TempDir(), relay, fmt.Sprintf("node%d.postie.test", i),
			campaignEnv("POSTIE_DATABASE_URL="+url)...)
	}
	lists := makeLists(t, nodes[0], 1)
	makeContacts(t, nodes[0], total, func(int) []string { return lists })
	newsTemplate(t, nodes[0])
	id := startCampaign(t, nodes[1], "Cluster", lists)
	relay.waitCampaign(t, nodes[0], id, "Cluster", total, 5*time.Minute)
	run := waitRunState(t, nodes[2], id, "finished", time.Minute)
	for _, n := range nodes {
		n.stop()
	}
	want := make(map[int]bool, total)
	for i := range total {
		want[i] = true
	}
	relay.checkOnce(t, "Cluster", want)
	if run.Progress["sent"] != total || sumExcept(run.Progress, "sent") != 0 {
		t.Errorf("run progress %v: want all %d sent", run.Progress, total)
	}
	per := relay.perNode("Cluster")
	t.Logf("deliveries per node: %v", per)
	for i := range nodes {
		if per[fmt.Sprintf("node%d.postie.test", i)] == 0 {
			t.Errorf("node %d delivered none of the campaign: %v", i, per)
		}
	}
}
