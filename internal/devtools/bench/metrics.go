package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the bulk load writes the SQLite file directly

	"github.com/postie/postie/internal/config"
)

// MetricsOverheadResult is one transactional run, with metrics on or off.
type MetricsOverheadResult struct {
	Metrics bool
	TransactionalResult
}

// RunMetricsOverhead runs the transactional benchmark rounds × 2 times, alternating
// POSTIE_METRICS=false and true (off first), so that both see the same machine over the same
// minutes. Each run has a fresh database.
func RunMetricsOverhead(ctx context.Context, cfg TransactionalConfig, rounds int, out io.Writer) ([]MetricsOverheadResult, error) {
	var rs []MetricsOverheadResult
	for i := range 2 * max(1, rounds) {
		on := i%2 == 1
		c := cfg
		c.ExtraEnv = append(slices.Clip(cfg.ExtraEnv), "POSTIE_METRICS="+strconv.FormatBool(on))
		fmt.Fprintf(out, "run %d of %d: POSTIE_METRICS=%v …\n", i+1, 2*max(1, rounds), on)
		r, err := RunTransactional(ctx, c)
		if err != nil {
			return rs, err
		}
		rs = append(rs, MetricsOverheadResult{Metrics: on, TransactionalResult: r})
	}
	return rs, nil
}

// PrintMetricsOverhead writes each run and the means of accepted/s and server CPU per message
// with metrics on against off.
func PrintMetricsOverhead(w io.Writer, rs []MetricsOverheadResult) {
	fmt.Fprintln(w, "| run | POSTIE_METRICS | accepted/s | delivered/s | accept p99 | server CPU/msg |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	var rate, cpu [2]float64
	var n [2]int
	for i, r := range rs {
		secs := r.Duration.Seconds()
		acc, del := float64(r.Accepted)/secs, float64(r.Delivered)/secs
		perMsg := time.Duration(0)
		if r.Accepted > 0 {
			perMsg = r.ServerCPU / time.Duration(r.Accepted)
		}
		fmt.Fprintf(w, "| %d | %v | %.0f | %.0f | %s | %s |\n", i+1, r.Metrics, acc, del, r.AcceptP99.Round(100*time.Microsecond), perMsg.Round(time.Microsecond))
		k := 0
		if r.Metrics {
			k = 1
		}
		rate[k] += acc
		cpu[k] += float64(perMsg)
		n[k]++
	}
	if n[0] == 0 || n[1] == 0 {
		return
	}
	offRate, onRate := rate[0]/float64(n[0]), rate[1]/float64(n[1])
	offCPU, onCPU := cpu[0]/float64(n[0]), cpu[1]/float64(n[1])
	fmt.Fprintf(w, "\nmean accepted/s: off %.0f, on %.0f (%+.1f%%); server CPU/msg: off %s, on %s (%+.1f%%)\n",
		offRate, onRate, 100*(onRate/offRate-1), time.Duration(offCPU).Round(time.Microsecond), time.Duration(onCPU).Round(time.Microsecond), 100*(onCPU/offCPU-1))
}

// ScrapeConfig configures the scrape benchmark.
type ScrapeConfig struct {
	Binary      string
	DatabaseURL string // as in Config ("" → SQLite)
	Messages    int    // finished messages in the history
	Backlog     int    // messages due and waiting (the queues)
	Scrapes     int    // GET /metrics, one after another
	Out         io.Writer
}

// ScrapeResult is what the scrape benchmark measured.
type ScrapeResult struct {
	Messages, Backlog int
	Load              time.Duration // the bulk load
	Scrapes           int
	P50, P99, Max     time.Duration // GET /metrics → the whole answer read
	Bytes             int           // of one answer
	Depth             string        // the transactional postie_queue_depth line the node served
}

// RunScrape stores cfg.Messages finished messages and cfg.Backlog due ones (a quick bulk load:
// copies of one message accepted through the API, written by SQL while no node runs), starts a
// node on them and times cfg.Scrapes scrapes of its admin listener's /metrics.
func RunScrape(ctx context.Context, cfg ScrapeConfig) (ScrapeResult, error) {
	res := ScrapeResult{Messages: cfg.Messages, Backlog: cfg.Backlog, Scrapes: cfg.Scrapes}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	admin := "127.0.0.1:" + strconv.Itoa(port)
	// An unreachable relay: the backlog stays due (the breaker holds it) instead of draining.
	scfg := Config{Binary: cfg.Binary, DatabaseURL: cfg.DatabaseURL, Out: cfg.Out,
		ExtraEnv: []string{"POSTIE_SMTP_URL=smtp://127.0.0.1:1?tls=none", "POSTIE_ADMIN_LISTEN=" + admin}}
	srv, err := startServer(ctx, scfg)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	client := newClient()
	body := message(0)
	if _, err := srv.post(ctx, client, "/v1/messages", body); err != nil {
		return res, fmt.Errorf("the template message: %w", err)
	}
	srv.stopNodes()

	fmt.Fprintf(cfg.Out, "bulk load: %d finished messages and %d due ones …\n", cfg.Messages, cfg.Backlog)
	start := time.Now()
	if err := bulkLoad(ctx, srv.nodeURL, cfg.Messages, cfg.Backlog); err != nil {
		return res, err
	}
	res.Load = time.Since(start)
	fmt.Fprintf(cfg.Out, "loaded in %s; starting the node …\n", res.Load.Round(time.Second))
	if err := srv.startNodes(ctx, scfg); err != nil {
		return res, err
	}
	// The queue statistics are read at start, in the background: wait for the first.
	url := "http://" + admin + "/metrics"
	deadline := time.Now().Add(5 * time.Minute)
	for {
		b, _, err := scrape(ctx, url)
		if err != nil {
			return res, err
		}
		if line := metricLine(b, `postie_queue_depth{stream="transactional"}`); line != "" {
			res.Depth = line
			break
		}
		if time.Now().After(deadline) {
			return res, errors.New("no queue statistics in /metrics after 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(cfg.Out, "%d scrapes …\n", cfg.Scrapes)
	ds := make([]time.Duration, 0, cfg.Scrapes)
	for range cfg.Scrapes {
		b, d, err := scrape(ctx, url)
		if err != nil {
			return res, err
		}
		ds = append(ds, d)
		res.Bytes = len(b)
	}
	slices.Sort(ds)
	if len(ds) > 0 {
		res.P50, res.P99, res.Max = ds[len(ds)/2], ds[len(ds)*99/100], ds[len(ds)-1]
	}
	return res, nil
}

// PrintScrape writes the scrape benchmark's figures.
func PrintScrape(w io.Writer, r ScrapeResult) {
	fmt.Fprintln(w, "| messages stored | due | scrapes | /metrics p50 | p99 | max | bytes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d | %d | %d | %s | %s | %s | %d |\n", r.Messages+r.Backlog+1, r.Backlog, r.Scrapes,
		r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond), r.Bytes)
	fmt.Fprintf(w, "(bulk load %s; the node served %s)\n", r.Load.Round(time.Second), r.Depth)
}

func scrape(ctx context.Context, url string) ([]byte, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	d := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, d, err
}

// metricLine is the line of the scrape b that begins with series, "" when none.
func metricLine(b []byte, series string) string {
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// bulkLoad copies the one message in the database of dbURL: finished copies (status sent) and
// due copies (queued), in statements of at most a million rows. Only the messages table is
// filled: the copies have no body, recipients or events, which the metrics never read.
func bulkLoad(ctx context.Context, dbURL string, finished, due int) error {
	db, err := (&config.Config{DatabaseURL: dbURL}).Database()
	if err != nil {
		return err
	}
	var exec func(q string, args ...any) error
	var columns []string
	var series string // a row source of n (from $1 to $2)
	switch db.Driver {
	case "sqlite":
		conn, err := sql.Open("sqlite", db.Path)
		if err != nil {
			return err
		}
		defer conn.Close()
		exec = func(q string, args ...any) error { _, err := conn.ExecContext(ctx, q, args...); return err }
		rows, err := conn.QueryContext(ctx, `SELECT name FROM pragma_table_info('messages')`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				return err
			}
			columns = append(columns, c)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		series = `(WITH RECURSIVE s(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM s WHERE n < ?) SELECT n FROM s) AS s`
	case "postgres":
		conn, err := pgx.Connect(ctx, db.URL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		exec = func(q string, args ...any) error { _, err := conn.Exec(ctx, q, args...); return err }
		rows, err := conn.Query(ctx, `SELECT column_name FROM information_schema.columns
			WHERE table_name = 'messages' AND table_schema = current_schema() ORDER BY ordinal_position`)
		if err != nil {
			return err
		}
		columns, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		series = `generate_series($1::bigint, $2::bigint) AS s(n)`
	default:
		return fmt.Errorf("bulk load: unknown driver %q", db.Driver)
	}
	load := func(prefix, status string, count int) error {
		exprs := make([]string, len(columns))
		for i, c := range columns {
			switch c {
			case "id":
				exprs[i] = "'" + prefix + "' || lpad_n"
			case "status":
				exprs[i] = "'" + status + "'"
			case "idempotency_key", "lease_owner":
				exprs[i] = "''"
			case "lease_until", "campaign_id":
				exprs[i] = "NULL"
			default:
				exprs[i] = "t." + c
			}
		}
		pad := `substr('0000000000' || s.n, -10, 10)` // SQLite
		if db.Driver == "postgres" {
			pad = `lpad(s.n::text, 10, '0')`
		}
		q := `INSERT INTO messages (` + strings.Join(columns, ", ") + `) SELECT ` +
			strings.ReplaceAll(strings.Join(exprs, ", "), "lpad_n", pad) +
			` FROM (SELECT * FROM messages ORDER BY id LIMIT 1) AS t, ` + series
		const step = 1_000_000
		for from := 1; from <= count; from += step {
			if err := exec(q, from, min(from+step-1, count)); err != nil {
				return fmt.Errorf("bulk load: %w", err)
			}
		}
		return nil
	}
	// The copies' ids (msg_z…) sort after the template's (msg_0…), so "ORDER BY id LIMIT 1"
	// keeps finding the template. Both keep its due time, which has passed.
	if err := load("msg_zz", "sent", finished); err != nil {
		return err
	}
	return load("msg_zq", "queued", due)
}
