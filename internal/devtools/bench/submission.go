package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SubmissionConfig selects the SMTP submission benchmark: Clients connections, each
// authenticated once, sending Size-byte messages back to back over SMTP submission for
// Duration, as legacy applications relaying through postie do.
type SubmissionConfig struct {
	Binary   string   // the postie executable to start
	ExtraEnv []string // passed to every server
	// DatabaseURL and Nodes: as in Config. Each node gets its own submission port; the
	// connections are spread over them.
	DatabaseURL string
	Nodes       int

	Clients  int           // SMTP connections
	Duration time.Duration // how long they send
	Size     int           // MIME bytes per message, about
}

// SubmissionResult is what one submission run measured.
type SubmissionResult struct {
	Clients    int
	Size       int // MIME bytes per message
	Accepted   int // 250s
	Duration   time.Duration
	P50, P99   time.Duration // MAIL FROM → the 250 after the data (the commit)
	ServerCPU  time.Duration // the postie node(s) over the run
	BenchCPU   time.Duration // this process (the clients)
	PeakRSSKiB int64
}

// RunSubmission runs the submission benchmark once.
func RunSubmission(ctx context.Context, cfg SubmissionConfig) (SubmissionResult, error) {
	res := SubmissionResult{Clients: cfg.Clients, Duration: cfg.Duration}
	addrs := make([]string, max(1, cfg.Nodes))
	for i := range addrs {
		port, err := freePort()
		if err != nil {
			return res, err
		}
		addrs[i] = "127.0.0.1:" + strconv.Itoa(port)
	}
	srv, err := startServer(ctx, Config{Binary: cfg.Binary, ExtraEnv: cfg.ExtraEnv, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes,
		NodeEnv: func(i int) []string { return []string{"POSTIE_SUBMISSION_LISTEN=" + addrs[i]} }})
	if err != nil {
		return res, err
	}
	defer srv.stop()

	body := submissionBody(cfg.Size)
	res.Size = len(body) + len(submissionHeader(0, 0))
	clients := make([]*smtp.Client, cfg.Clients)
	for i := range clients {
		c, err := smtp.Dial(addrs[i%len(addrs)])
		if err != nil {
			return res, err
		}
		defer c.Close()
		if err := c.Hello("bench.postie.test"); err != nil {
			return res, err
		}
		if err := c.Auth(sasl.NewPlainClient("", "api", srv.key)); err != nil {
			return res, fmt.Errorf("AUTH: %w", err)
		}
		clients[i] = c
	}

	serverCPU, benchCPU := srv.cpuTime(), selfCPU()
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var firstErr error
	var once sync.Once
	var seq atomic.Int64
	lat := make([][]time.Duration, len(clients))
	var wg sync.WaitGroup
	start := time.Now()
	for ci, c := range clients {
		wg.Go(func() {
			for lctx.Err() == nil {
				t0 := time.Now()
				if err := submit(c, ci, int(seq.Add(1)), body); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				lat[ci] = append(lat[ci], time.Since(t0))
			}
		})
	}
	wg.Wait()
	res.Duration = time.Since(start)
	res.ServerCPU, res.BenchCPU = srv.cpuTime()-serverCPU, selfCPU()-benchCPU
	res.PeakRSSKiB = srv.peakRSS()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	res.Accepted = len(all)
	res.P50, res.P99, _ = percentiles(all)
	for _, c := range clients {
		_ = c.Quit()
	}
	return res, firstErr
}

// submit sends message n over c and checks the 250 names the stored message.
func submit(c *smtp.Client, client, n int, body []byte) error {
	to := fmt.Sprintf("customer%d@example.com", n)
	if err := c.Mail("orders@shop.example", nil); err != nil {
		return fmt.Errorf("MAIL: %w", err)
	}
	if err := c.Rcpt(to, nil); err != nil {
		return fmt.Errorf("RCPT: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.WriteString(w, submissionHeader(client, n)); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	resp, err := w.CloseWithResponse()
	if err != nil {
		return fmt.Errorf("end of data: %w", err)
	}
	if !strings.Contains(resp.StatusText, "queued as msg_") {
		return errors.New("unexpected 250: " + resp.StatusText)
	}
	return nil
}

// submissionHeader is the header of message n of a client: its own Message-ID, as a mail
// library sets (postie keeps each as an idempotency key).
func submissionHeader(client, n int) string {
	return fmt.Sprintf("From: Shop <orders@shop.example>\r\nTo: customer%d@example.com\r\nSubject: Your order has shipped\r\n"+
		"Message-ID: <bench.%d.%d@shop.example>\r\nDate: Sun, 06 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"+
		"X-Postie-Tag: bench\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", n, client, n)
}

// submissionBody is a text body of about size octets in 70-character lines.
func submissionBody(size int) []byte {
	const words = "shipping order parcel tracking delivery customer thanks update account invoice receipt "
	var b strings.Builder
	for k := 0; b.Len() < size-300; k++ {
		b.WriteString((words + words)[k%17 : k%17+70])
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// PrintSubmission writes r as a Markdown table.
func PrintSubmission(w io.Writer, r SubmissionResult) {
	fmt.Fprintln(w, "| connections | MIME size | accepted/s | MAIL → 250 p50 / p99 | server CPU/msg | client CPU/msg | server peak RSS |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|")
	per := func(d time.Duration) int64 {
		if r.Accepted == 0 {
			return 0
		}
		return (d / time.Duration(r.Accepted)).Microseconds()
	}
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	fmt.Fprintf(w, "| %d | %.1f KB | %.0f | %s / %s | %d µs | %d µs | %d MiB |\n", r.Clients, float64(r.Size)/1024,
		float64(r.Accepted)/r.Duration.Seconds(), ms(r.P50), ms(r.P99), per(r.ServerCPU), per(r.BenchCPU), r.PeakRSSKiB/1024)
	fmt.Fprintf(w, "\n%d messages accepted in %s, each committed before its 250.\n", r.Accepted, r.Duration.Round(time.Millisecond))
}
