package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ImportConfig selects the CSV import benchmark: a generated CSV of Rows contacts is uploaded
// to POST /v1/imports (subscribing every row to one list) and timed until the import is done,
// while TxClients clients post single transactional messages back to back.
type ImportConfig struct {
	Binary      string   // the postie executable to start
	ExtraEnv    []string // passed to the server
	DatabaseURL string   // as in Config ("" → a fresh SQLite file)
	Rows        int
	TxClients   int // 0: no transactional load
}

// ImportResult is what one import run measured.
type ImportResult struct {
	Rows      int
	Upload    time.Duration // from the first byte sent to the 202 (the upload checked and spooled)
	Elapsed   time.Duration // from the first byte sent until the import was done
	Counts    map[string]int
	Status    string
	BaseRSS   int64 // the server's peak RSS (KiB) before the upload
	PeakRSS   int64 // its peak RSS (KiB) once the import was done
	TxSent    int   // transactional messages accepted meanwhile
	TxErrors  int
	TxP50     time.Duration
	TxP99     time.Duration
	TxMax     time.Duration
	ListID    string
	ImportID  string
	CSVBytes  int64
	FirstErrs []string // the import's first bad rows, if any
}

// RowsPerSecond is rows imported per second, upload included.
func (r ImportResult) RowsPerSecond() float64 { return float64(r.Rows) / r.Elapsed.Seconds() }

// RunImport runs the import benchmark once on a fresh server.
func RunImport(ctx context.Context, cfg ImportConfig) (ImportResult, error) {
	res := ImportResult{Rows: cfg.Rows}
	srv, err := startServer(ctx, Config{Binary: cfg.Binary, ExtraEnv: cfg.ExtraEnv, DatabaseURL: cfg.DatabaseURL})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	client := newClient()
	client.Timeout = 0 // the upload takes as long as it takes

	out, err := srv.post(ctx, client, "/v1/lists", []byte(`{"name":"bench import"}`))
	if err != nil {
		return res, fmt.Errorf("creating the list: %w", err)
	}
	var list struct{ ID string }
	if err := json.Unmarshal(out, &list); err != nil || list.ID == "" {
		return res, fmt.Errorf("creating the list: %s", out)
	}
	res.ListID = list.ID
	res.BaseRSS = srv.peakRSS()

	// Transactional load for as long as the import runs.
	txCtx, stopTx := context.WithCancel(ctx)
	defer stopTx()
	var (
		txWG   sync.WaitGroup
		txLat  = make([][]time.Duration, cfg.TxClients)
		txErrs atomic.Int64
	)
	for c := range cfg.TxClients {
		txWG.Go(func() {
			for i := 0; txCtx.Err() == nil; i++ {
				t0 := time.Now()
				_, err := srv.post(context.WithoutCancel(txCtx), client, "/v1/messages", message(c*1_000_000+i))
				if err != nil {
					txErrs.Add(1)
					continue
				}
				txLat[c] = append(txLat[c], time.Since(t0))
			}
		})
	}

	pr, pw := io.Pipe()
	var written atomic.Int64
	go func() { pw.CloseWithError(writeCSV(pw, cfg.Rows, &written)) }()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.nodes[0].base+"/v1/imports?lists="+list.ID, pr)
	if err != nil {
		return res, err
	}
	req.Header.Set("Authorization", "Bearer "+srv.key)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := client.Do(req)
	if err != nil {
		return res, fmt.Errorf("uploading: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.Upload = time.Since(start)
	res.CSVBytes = written.Load()
	if resp.StatusCode != http.StatusAccepted {
		return res, fmt.Errorf("POST /v1/imports: %s: %.300s", resp.Status, body)
	}
	var imp struct {
		ID     string
		Status string
		Counts map[string]int
		Errors []struct {
			Row    int
			Field  string
			Reason string
		}
		Reason string
	}
	if err := json.Unmarshal(body, &imp); err != nil {
		return res, err
	}
	res.ImportID = imp.ID
	for imp.Status != "done" && imp.Status != "failed" {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		b, err := srv.do(ctx, client, http.MethodGet, "/v1/imports/"+imp.ID, nil)
		if err != nil {
			return res, err
		}
		if err := json.Unmarshal(b, &imp); err != nil {
			return res, err
		}
	}
	res.Elapsed = time.Since(start)
	res.PeakRSS = srv.peakRSS()
	stopTx()
	txWG.Wait()
	res.Status, res.Counts = imp.Status, imp.Counts
	for _, e := range imp.Errors[:min(3, len(imp.Errors))] {
		res.FirstErrs = append(res.FirstErrs, fmt.Sprintf("row %d %s: %s", e.Row, e.Field, e.Reason))
	}
	var all []time.Duration
	for _, l := range txLat {
		all = append(all, l...)
	}
	res.TxSent, res.TxErrors = len(all), int(txErrs.Load())
	res.TxP50, res.TxP99, res.TxMax = percentiles(all)
	if imp.Status != "done" {
		return res, fmt.Errorf("the import %s: %s", imp.Status, imp.Reason)
	}
	if imp.Counts["rows"] != cfg.Rows || imp.Counts["failed"] != 0 {
		return res, errors.New("the import did not apply every row")
	}
	return res, nil
}

// writeCSV writes a CSV of rows contacts as an export from an application would look: an
// email, an external id, a name, a locale, a time zone, a last activity time and three
// attributes.
func writeCSV(w io.Writer, rows int, written *atomic.Int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw, n: written}
	locales := []string{"en", "fr", "de", "pt-BR", "ko"}
	zones := []string{"Europe/Paris", "America/New_York", "Asia/Seoul", "UTC", "Europe/Berlin"}
	plans := []string{"free", "pro", "team"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := io.WriteString(cw, "email,external_id,name,locale,timezone,last_active_at,plan,seats,company\n"); err != nil {
		return err
	}
	var line []byte
	for i := range rows {
		line = line[:0]
		line = fmt.Appendf(line, "user%07d@example.com,u-%d,\"User %d, Example\",%s,%s,%s,%s,%d,Company %d\n",
			i, i, i, locales[i%5], zones[i%5], base.Add(time.Duration(i)*time.Second).Format(time.RFC3339),
			plans[i%3], 1+i%50, i%1000)
		if _, err := cw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// PrintImport writes an import result as a Markdown table.
func PrintImport(w io.Writer, r ImportResult) {
	fmt.Fprintln(w, "| rows | CSV | upload (checked, spooled) | done after | rows/s | server peak RSS: before → after (growth) | tx accepts meanwhile | tx p50 | tx p99 |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Fprintf(w, "| %d | %.1f MB | %s | %s | %.0f | %d → %d MiB (+%d MiB) | %d | %s | %s |\n", r.Rows, float64(r.CSVBytes)/1e6,
		r.Upload.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), r.RowsPerSecond(), r.BaseRSS/1024, r.PeakRSS/1024,
		(r.PeakRSS-r.BaseRSS)/1024, r.TxSent, r.TxP50.Round(10*time.Microsecond), r.TxP99.Round(10*time.Microsecond))
	fmt.Fprintf(w, "\nimport %s: %s, counts %s\n", r.ImportID, r.Status, formatCounts(r.Counts))
	for _, e := range r.FirstErrs {
		fmt.Fprintln(w, "  bad row:", e)
	}
	if r.TxErrors > 0 {
		fmt.Fprintf(w, "%d transactional requests failed\n", r.TxErrors)
	}
}

func formatCounts(c map[string]int) string {
	s := ""
	for _, k := range []string{"rows", "created", "updated", "merged", "skipped", "failed", "kept"} {
		s += k + "=" + strconv.Itoa(c[k]) + " "
	}
	return s
}
