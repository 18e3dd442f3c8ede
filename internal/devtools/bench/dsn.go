package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postie/postie/internal/devtools/smtpsink"
)

// DSNConfig selects the DSN intake benchmark: Messages messages are accepted and delivered to a
// loopback SMTP sink (each recipient with its own bounce address, POSTIE_BOUNCE_DOMAIN), then
// Clients SMTP connections send one RFC 3464 hard-bounce DSN per message to the inbound listener
// (POSTIE_INBOUND_LISTEN), back to back, each answered 250 only once its bounce, suppression and
// webhook row are committed.
type DSNConfig struct {
	Binary   string   // the postie executable to start
	ExtraEnv []string // passed to every server
	// DatabaseURL and Nodes: as in Config; the clients spread over the nodes' listeners.
	DatabaseURL string
	Nodes       int

	Messages int // messages sent, then bounced
	Clients  int // concurrent SMTP connections sending DSNs
	Pool     int // relay connections delivering the messages first
}

// DSNResult is what one DSN intake run measured.
type DSNResult struct {
	Clients  int
	DSNs     int           // answered 250
	Elapsed  time.Duration // from the first DSN to the last 250
	P50, P99 time.Duration // end of DATA → 250
	// ToBounceAddress counts the DSNs sent to a bounce address (the others went to postmaster@
	// with the original Message-ID, when the relay saw no bounce address).
	ToBounceAddress int
	Bounced         int // messages whose recipient ended bounced, of those checked
	Checked         int
	// ServerCPU and BenchCPU cover the intake phase only.
	ServerCPU, BenchCPU time.Duration
	PeakRSSKiB          int64
}

// dsnBounceDomain is the bounce domain of the benchmark's server.
const dsnBounceDomain = "bounce.bench.example"

// RunDSN runs the DSN intake benchmark once.
func RunDSN(ctx context.Context, cfg DSNConfig) (DSNResult, error) {
	res := DSNResult{Clients: cfg.Clients}
	var mu sync.Mutex
	var sent []smtpsink.Message
	addrs, err := freeAddrs(cfg.Nodes)
	if err != nil {
		return res, err
	}
	sink, err := startSink(0, func(m smtpsink.Message) {
		mu.Lock()
		sent = append(sent, m)
		mu.Unlock()
	})
	if err != nil {
		return res, err
	}
	defer sink.Close()
	env := append([]string{"POSTIE_SMTP_URL=" + relayURL(sink, max(1, cfg.Pool)), "POSTIE_BOUNCE_DOMAIN=" + dsnBounceDomain},
		cfg.ExtraEnv...)
	srv, err := startServer(ctx, Config{Binary: cfg.Binary, ExtraEnv: env, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
		NodeEnv: func(i int) []string { return []string{"POSTIE_INBOUND_LISTEN=" + addrs[i]} }})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	client := newClient()

	ids, err := acceptAll(ctx, client, srv, 4, cfg.Messages, 500, func(i int) string { return fmt.Sprintf("d%d@example.com", i) },
		newMessage(2<<10, "transactional"))
	if err != nil {
		return res, err
	}
	if err := waitSink(ctx, sink, cfg.Messages); err != nil {
		return res, err
	}
	// The sink has them before postie records them sent; a bounce applies to sent recipients.
	if err := waitSent(ctx, client, srv); err != nil {
		return res, err
	}

	// One DSN per message, to its bounce address (or, when the relay saw no bounce address,
	// to postmaster@ with the original Message-ID).
	dsns := make([]dsnJob, len(sent))
	for i, m := range sent {
		rcpt := "postmaster@" + dsnBounceDomain
		if strings.HasSuffix(strings.ToLower(m.From), "@"+dsnBounceDomain) {
			rcpt = m.From
			res.ToBounceAddress++
		}
		dsns[i] = dsnJob{rcpt: rcpt, body: benchDSN(i, m.To[0], m.MessageID)}
	}
	var next atomic.Int64
	lat := make([][]time.Duration, cfg.Clients)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	serverCPU, benchCPU := srv.cpuTime(), selfCPU()
	start := time.Now()
	for c := range cfg.Clients {
		wg.Go(func() {
			err := sendDSNs(ctx, addrs[c%len(addrs)], dsns, &next, &lat[c])
			if err != nil {
				once.Do(func() { firstErr = err })
			}
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.ServerCPU, res.BenchCPU = srv.cpuTime()-serverCPU, selfCPU()-benchCPU
	res.PeakRSSKiB = srv.peakRSS()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res.DSNs = len(all)
	res.P50, res.P99, _ = percentiles(all)
	if firstErr != nil {
		return res, firstErr
	}
	// The DSNs did what they say: a sample of the messages ended bounced.
	for i := 0; i < len(ids); i += max(1, len(ids)/50) {
		out, err := srv.do(ctx, client, "GET", "/v1/messages/"+ids[i], nil)
		if err != nil {
			return res, err
		}
		var m struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			return res, err
		}
		res.Checked++
		if m.Status == "bounced" {
			res.Bounced++
		}
	}
	if res.Bounced != res.Checked {
		return res, fmt.Errorf("%d of %d messages checked ended bounced", res.Bounced, res.Checked)
	}
	return res, nil
}

// waitSent waits until no message is left to send.
func waitSent(ctx context.Context, client *http.Client, srv *server) error {
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := srv.do(ctx, client, http.MethodGet, "/v1/messages?status=scheduled,queued,sending,deferred&limit=1", nil)
		if err != nil {
			return err
		}
		var page struct {
			Data []json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(out, &page); err != nil {
			return err
		}
		if len(page.Data) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("messages still unsent a minute after the relay had them all")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type dsnJob struct {
	rcpt string
	body []byte
}

// sendDSNs sends DSNs from dsns (taking the next one from next) over one connection until
// there are none left, recording each DATA → 250.
func sendDSNs(ctx context.Context, addr string, dsns []dsnJob, next *atomic.Int64, lat *[]time.Duration) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("mx.bench.example"); err != nil {
		return err
	}
	for ctx.Err() == nil {
		i := int(next.Add(1)) - 1
		if i >= len(dsns) {
			return c.Quit()
		}
		if err := c.Mail("", nil); err != nil {
			return err
		}
		if err := c.Rcpt(dsns[i].rcpt, nil); err != nil {
			return err
		}
		w, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := w.Write(dsns[i].body); err != nil {
			return err
		}
		t0 := time.Now()
		if err := w.Close(); err != nil {
			return fmt.Errorf("DSN to %s: %w", dsns[i].rcpt, err)
		}
		*lat = append(*lat, time.Since(t0))
	}
	return ctx.Err()
}

// benchDSN is a Postfix-style hard bounce of rcpt's copy of the message msgID.
func benchDSN(i int, rcpt, msgID string) []byte {
	s := fmt.Sprintf(`From: MAILER-DAEMON@mx.bench.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-%d@mx.bench.example>
Date: Mon, 01 Jun 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.bench.example.
I'm sorry to have to inform you that your message could not be delivered.

<%s>: host mx2.bench.example said: 550 5.1.1 User unknown

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.bench.example
Arrival-Date: Mon, 01 Jun 2026 09:59:59 +0000

Final-Recipient: rfc822; %s
Original-Recipient: rfc822;%s
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx2.bench.example
Diagnostic-Code: smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown

--b1
Content-Type: text/rfc822-headers

From: Shop <orders@shop.example>
To: %s
Subject: Your order has shipped
Message-ID: <%s>

--b1--
`, i, rcpt, rcpt, rcpt, rcpt, rcpt, msgID)
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// PrintDSN writes the DSN intake result as a Markdown table.
func PrintDSN(w io.Writer, r DSNResult) {
	fmt.Fprintln(w, "| clients | DSNs | DSNs/s | DATA → 250 p50 / p99 | server CPU/DSN | load generator CPU/DSN | server peak RSS |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	per := func(d time.Duration) int64 {
		if r.DSNs == 0 {
			return 0
		}
		return (d / time.Duration(r.DSNs)).Microseconds()
	}
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(r.DSNs) / r.Elapsed.Seconds()
	}
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	fmt.Fprintf(w, "| %d | %d | %.0f | %s / %s | %d µs | %d µs | %d MiB |\n", r.Clients, r.DSNs, rate, ms(r.P50), ms(r.P99),
		per(r.ServerCPU), per(r.BenchCPU), r.PeakRSSKiB>>10)
	fmt.Fprintf(w, "\n%d DSNs went to the recipient's bounce address; %d of %d messages checked ended bounced.\n",
		r.ToBounceAddress, r.Bounced, r.Checked)
}
