package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/app"
	"github.com/postie/postie/internal/config"
	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// PurgeConfig selects the retention benchmark: a SQLite database holding Old messages that
// finished 60 days ago, on which a server delivers transactional mail at TxRate to a loopback
// sink; first for Duration with retention out of reach (the baseline), then, restarted with
// POSTIE_RETAIN_BODIES and POSTIE_RETAIN_MESSAGES of 30 days, while it purges every old body
// and message.
type PurgeConfig struct {
	Binary   string
	ExtraEnv []string
	Out      io.Writer
	Old      int           // old finished messages to purge
	Size     int           // MIME bytes of each old message, about
	TxRate   float64       // transactional messages per second, both phases
	Duration time.Duration // the baseline phase
	Pool     int           // relay connections
	DataDir  string        // where the database goes ("" → a temp dir, removed after)
}

// PurgeResult is what the two phases measured.
type PurgeResult struct {
	Old                   int
	Load                  time.Duration // writing the old messages into the database
	Base, During          DeliveryResult
	Purge                 time.Duration // from the server's start until no old message was left
	BaseTx, DuringTx      int
	BaseAccP99, DurAccP99 time.Duration // POST → 202
}

// RunPurge runs the retention benchmark once.
func RunPurge(ctx context.Context, cfg PurgeConfig) (PurgeResult, error) {
	res := PurgeResult{Old: cfg.Old}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "postie-bench-purge-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	finished := time.Now().Add(-60 * 24 * time.Hour)
	fmt.Fprintf(cfg.Out, "writing %d messages finished on %s …\n", cfg.Old, finished.Format(time.DateOnly))
	start := time.Now()
	if err := loadOld(ctx, filepath.Join(dir, "postie.db"), cfg.Old, cfg.Size, finished); err != nil {
		return res, err
	}
	res.Load = time.Since(start)

	var cur atomic.Pointer[tracker]
	sink, err := startSink(0, func(m smtpsink.Message) {
		if t := cur.Load(); t != nil {
			t.arrived(m)
		}
	})
	if err != nil {
		return res, err
	}
	defer sink.Close()
	env := append([]string{"POSTIE_SMTP_URL=" + relayURL(sink, cfg.Pool)}, cfg.ExtraEnv...)
	keep := append(env, "POSTIE_RETAIN_BODIES=87600h", "POSTIE_RETAIN_MESSAGES=87600h")
	purge := append(env, "POSTIE_RETAIN_BODIES=720h", "POSTIE_RETAIN_MESSAGES=720h", "POSTIE_RETENTION_INTERVAL=1s")
	srv, err := startServer(ctx, Config{Binary: cfg.Binary, ExtraEnv: keep, DataDir: dir})
	if err != nil {
		return res, err
	}
	defer srv.stop()
	client := newClient()
	msg := newMessage(2<<10, "transactional")
	cutoff := finished.Add(time.Hour).UTC().Format(time.RFC3339)
	oldLeft := func() (bool, error) {
		out, err := srv.do(ctx, client, "GET", "/v1/messages?limit=1&created_before="+cutoff, nil)
		if err != nil {
			return false, err
		}
		var page struct{ Data []json.RawMessage }
		if err := json.Unmarshal(out, &page); err != nil {
			return false, err
		}
		return len(page.Data) > 0, nil
	}
	if left, err := oldLeft(); err != nil || !left {
		return res, fmt.Errorf("the old messages are not there: %v", err)
	}

	phase := func(name string, stop func(context.Context) error) (DeliveryResult, int, time.Duration, error) {
		tr := newTracker(name + "-")
		cur.Store(tr)
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stopped := make(chan error, 1)
		go func() { stopped <- stop(pctx); cancel() }()
		acc, err := steady(pctx, client, srv, cfg.TxRate, int(cfg.TxRate*24*3600), tr, msg)
		if err != nil {
			return DeliveryResult{}, 0, 0, err
		}
		if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
			return DeliveryResult{}, 0, 0, err
		}
		if err := waitArrived(ctx, tr); err != nil {
			return DeliveryResult{}, 0, 0, err
		}
		r := DeliveryResult{Messages: len(tr.latencies())}
		r.P50, r.P99, r.Max = percentiles(tr.latencies())
		_, accP99, _ := percentiles(acc)
		return r, len(acc), accP99, nil
	}

	fmt.Fprintf(cfg.Out, "baseline: %.0f transactional/s for %s, retention out of reach …\n", cfg.TxRate, cfg.Duration)
	res.Base, res.BaseTx, res.BaseAccP99, err = phase("base", func(ctx context.Context) error {
		select {
		case <-time.After(cfg.Duration):
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil {
		return res, err
	}

	fmt.Fprintf(cfg.Out, "purge: %.0f transactional/s while the %d old bodies and messages are purged …\n", cfg.TxRate, cfg.Old)
	start = time.Now()
	if err := srv.restart(ctx, Config{Binary: cfg.Binary, ExtraEnv: purge, DataDir: dir}); err != nil {
		return res, err
	}
	res.During, res.DuringTx, res.DurAccP99, err = phase("purge", func(ctx context.Context) error {
		for {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			left, err := oldLeft()
			if err != nil || !left {
				res.Purge = time.Since(start)
				return err
			}
		}
	})
	return res, err
}

// waitArrived waits until every message tr began has arrived (a minute at most).
func waitArrived(ctx context.Context, tr *tracker) error {
	deadline := time.Now().Add(time.Minute)
	for {
		tr.mu.Lock()
		left := len(tr.start)
		tr.mu.Unlock()
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d transactional messages did not arrive within a minute", left)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// loadOld writes n messages of about size bytes, accepted and sent at finished, into a new
// SQLite database at path, through the store (a thousand a transaction).
func loadOld(ctx context.Context, path string, n, size int, finished time.Time) error {
	st, err := app.OpenStore(ctx, config.Config{DatabaseURL: "sqlite:" + path}, slog.New(slog.DiscardHandler), true)
	if err != nil {
		return err
	}
	defer st.Close()
	body := strings.Repeat("Your order has shipped. Track it at https://shop.example/track.\r\n", max(1, size/64))
	const batch = 1000
	for done := 0; done < n; done += batch {
		k := min(batch, n-done)
		msgs := make([]store.NewMessage, k)
		for i := range msgs {
			mid := id.New(id.Message)
			rcpt := fmt.Sprintf("old-%d@example.com", done+i)
			raw := []byte("From: Shop <orders@shop.example>\r\nTo: " + rcpt + "\r\nSubject: Your order has shipped\r\n" +
				"Message-ID: <" + mid + "@shop.example>\r\nContent-Type: text/plain\r\n\r\n" + body)
			msgs[i] = store.NewMessage{Raw: raw, Message: store.Message{ID: mid, Stream: store.StreamTransactional,
				Status: store.StatusQueued, From: "Shop <orders@shop.example>", To: []string{rcpt},
				Subject: "Your order has shipped", EnvelopeFrom: "bounces@shop.example", Recipients: []string{rcpt},
				Size: len(raw), MaxAttempts: 4, NextAttemptAt: finished, MessageID: mid + "@shop.example",
				CreatedAt: finished, ExpiresAt: finished.Add(24 * time.Hour), UpdatedAt: finished}}
		}
		if _, err := st.MessagesAccept(ctx, store.MessagesAcceptParams{Messages: msgs, Now: finished}); err != nil {
			return err
		}
		claimed, err := st.MessageClaim(ctx, store.MessageClaimParams{Owner: "bench", Stream: store.StreamTransactional,
			Limit: k, Now: finished, LeaseUntil: finished.Add(time.Minute)})
		if err != nil {
			return err
		}
		ps := make([]store.MessageFinishParams, len(claimed))
		for i, c := range claimed {
			ps[i] = store.MessageFinishParams{ID: c.ID, Owner: "bench", Status: store.StatusSent, Attempts: 1,
				SentAt: finished, Events: []store.Event{{Type: store.EventSent, At: finished}}}
		}
		if _, err := st.MessageFinish(ctx, finished, ps); err != nil {
			return err
		}
	}
	return nil
}

// PrintPurge writes r as a Markdown table.
func PrintPurge(w io.Writer, r PurgeResult) {
	ms := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	fmt.Fprintln(w, "| phase | transactional messages | POST → relay 250 p50 / p99 / max | POST → 202 p99 |")
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	fmt.Fprintf(w, "| no purge | %d | %s / %s / %s | %s |\n", r.Base.Messages, ms(r.Base.P50), ms(r.Base.P99), ms(r.Base.Max), ms(r.BaseAccP99))
	fmt.Fprintf(w, "| purging %d messages | %d | %s / %s / %s | %s |\n", r.Old, r.During.Messages, ms(r.During.P50), ms(r.During.P99), ms(r.During.Max), ms(r.DurAccP99))
	fmt.Fprintf(w, "\np99 raised by %s. %d old messages (bodies, then messages) purged in %s (%.0f/s), written in %s.\n",
		ms(r.During.P99-r.Base.P99), r.Old, r.Purge.Round(time.Second), float64(r.Old)/max(r.Purge.Seconds(), 1e-9), r.Load.Round(time.Second))
}
