package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ContactsConfig selects the contacts benchmark: Clients clients posting batches of BatchSize
// contacts to /v1/contacts/batch, back to back, for Duration: first new contacts, then the same
// contacts again with changed attributes (updates).
type ContactsConfig struct {
	Binary      string
	ExtraEnv    []string
	DatabaseURL string // as in Config
	Nodes       int
	Clients     int
	BatchSize   int // contacts per request, at most 1,000
	Duration    time.Duration
	Out         io.Writer
}

// ContactsResult is one phase of the contacts benchmark.
type ContactsResult struct {
	Name       string
	Requests   int
	Contacts   int
	Elapsed    time.Duration
	P50, P99   time.Duration
	ServerCPU  time.Duration // the postie node(s) during the phase
	PeakRSSKiB int64
}

// PerSecond is contacts upserted per second.
func (r ContactsResult) PerSecond() float64 { return float64(r.Contacts) / r.Elapsed.Seconds() }

// RunContacts starts a server and runs the create phase, then the update phase over the
// contacts the first one created.
func RunContacts(ctx context.Context, cfg ContactsConfig) ([]ContactsResult, error) {
	cfg.BatchSize = min(max(cfg.BatchSize, 1), 1000)
	srv, err := startServer(ctx, Config{Binary: cfg.Binary, ExtraEnv: cfg.ExtraEnv, DatabaseURL: cfg.DatabaseURL, Nodes: cfg.Nodes})
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	var results []ContactsResult
	var created atomic.Int64 // batches of the create phase, numbered from 0
	for _, phase := range []struct {
		name   string
		update bool
	}{{"create", false}, {"update", true}} {
		fmt.Fprintf(cfg.Out, "contacts %s: %d clients × %d contacts per batch for %s …\n", phase.name, cfg.Clients, cfg.BatchSize, cfg.Duration)
		var next atomic.Int64
		limit := created.Load()
		batch := func() (int64, bool) {
			n := next.Add(1) - 1
			if phase.update && n >= limit {
				return 0, false
			}
			return n, true
		}
		r, err := contactsPhase(ctx, srv, cfg, phase.name, func(buf []byte) ([]byte, bool) {
			n, ok := batch()
			if !ok {
				return nil, false
			}
			return contactsBatch(buf, n, cfg.BatchSize, phase.update), true
		})
		if !phase.update {
			created.Store(next.Load())
		}
		results = append(results, r)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// contactsPhase runs cfg.Clients loops posting the batches body makes until cfg.Duration is
// over or body has no more, and checks that every contact of every answer was upserted.
func contactsPhase(ctx context.Context, s *server, cfg ContactsConfig, name string,
	body func([]byte) ([]byte, bool)) (ContactsResult, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	hc := newClient()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		contacts atomic.Int64
		firstErr error
		wg       sync.WaitGroup
	)
	cpu0 := s.cpuTime()
	start := time.Now()
	for range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for ctx.Err() == nil {
				b, ok := body(buf[:0])
				if !ok {
					return
				}
				buf = b
				t0 := time.Now()
				out, err := s.post(context.WithoutCancel(ctx), hc, "/v1/contacts/batch", b)
				d := time.Since(t0)
				var ans struct {
					Counts struct{ Created, Updated, Merged, Unchanged, Failed int } `json:"counts"`
				}
				if err == nil {
					err = json.Unmarshal(out, &ans)
				}
				if err == nil && ans.Counts.Failed > 0 {
					err = fmt.Errorf("%d contacts of a batch failed: %.300s", ans.Counts.Failed, out)
				}
				mu.Lock()
				lat = append(lat, d)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					cancel()
					return
				}
				contacts.Add(int64(ans.Counts.Created + ans.Counts.Updated + ans.Counts.Merged + ans.Counts.Unchanged))
			}
		}()
	}
	wg.Wait()
	r := ContactsResult{Name: name, Requests: len(lat), Contacts: int(contacts.Load()), Elapsed: time.Since(start),
		ServerCPU: s.cpuTime() - cpu0, PeakRSSKiB: s.peakRSS()}
	r.P50, r.P99, _ = percentiles(lat)
	return r, firstErr
}

// contactsBatch appends to buf the body of batch n: size contacts with a few attributes, the
// n-th batch's addresses; an update changes their attributes and activity.
func contactsBatch(buf []byte, n int64, size int, update bool) []byte {
	plans := []string{"free", "pro", "team"}
	countries := []string{"FR", "DE", "US", "BR", "JP"}
	buf = append(buf, `{"contacts":[`...)
	for j := range size {
		k := n*int64(size) + int64(j)
		if j > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"email":"user`...)
		buf = strconv.AppendInt(buf, k, 10)
		buf = append(buf, `@example.com","name":"User `...)
		buf = strconv.AppendInt(buf, k, 10)
		buf = append(buf, `","attributes":{"plan":"`...)
		plan := k % 3
		if update {
			plan = (k + 1) % 3
		}
		buf = append(buf, plans[plan]...)
		buf = append(buf, `","seats":`...)
		buf = strconv.AppendInt(buf, k%50+1, 10)
		buf = append(buf, `,"country":"`...)
		buf = append(buf, countries[k%5]...)
		buf = append(buf, `"},"last_active_at":"2026-11-`...)
		day := 10 + k%10
		if update {
			day += 5
		}
		buf = strconv.AppendInt(buf, day, 10)
		buf = append(buf, `T10:00:00Z"}`...)
	}
	return append(buf, "]}"...)
}

// PrintContacts writes the contacts results as a Markdown table.
func PrintContacts(w io.Writer, rs []ContactsResult) {
	fmt.Fprintln(w, "| phase | batches | contacts | contacts/s | p50 | p99 | server CPU (cores busy) | server CPU per 1,000 | server peak RSS |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		per := time.Duration(0)
		if r.Contacts > 0 {
			per = r.ServerCPU * 1000 / time.Duration(r.Contacts)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %.2f | %s | %d MiB |\n", r.Name, r.Requests, r.Contacts, r.PerSecond(),
			r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.ServerCPU.Seconds()/r.Elapsed.Seconds(),
			per.Round(100*time.Microsecond), r.PeakRSSKiB/1024)
	}
}
