// Package reputation owns the bounce and complaint rates of each stream and the breaker that
// pauses the broadcast stream before the mailbox providers' thresholds (email-rules §1.6).
//
// # Rates
//
// A stream's rates are its bounced and complained recipients over those delivered (the relay
// accepted them), from the hourly counts the store keeps (store.Inbound.DeliveryCounts), over
// two rolling windows: the last 24 hours and the last 7 days.
//
// # The breaker
//
// Check runs every minute on every node (StreamPause is idempotent: a second node's pause
// changes nothing). For each stream and window that has at least MinVolume delivered, a
// complaint rate at or over ComplaintWarn logs a warning (once, when it is crossed). For the
// broadcast stream, a complaint rate at or over ComplaintPause, or a bounce rate at or over
// BouncePause, pauses it (store.StreamPause, which reports stream.paused): its messages wait,
// queued, until an operator resumes it. Transactional mail is never paused. After a resume only
// what was counted from the resume on counts toward pausing again: from the first whole hour
// after it (the counts are hourly, and the hour of the resume still holds what paused the
// stream); the API still shows the whole windows.
package reputation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
)

// Store is the slice of the store the service uses.
type Store interface {
	DeliveryCounts(ctx context.Context, stream string, since time.Time) (store.DeliveryCounts, error)
	StreamPause(ctx context.Context, p store.StreamPauseParams) (bool, error)
	StreamResume(ctx context.Context, stream string, now time.Time) error
	StreamStates(ctx context.Context) ([]store.StreamState, error)
}

// Config configures a Service.
type Config struct {
	Store Store
	// ComplaintWarn is the complaint rate that logs a warning (0: never).
	ComplaintWarn float64
	// ComplaintPause and BouncePause are the rates that pause the broadcast stream (0: never).
	ComplaintPause, BouncePause float64
	// MinVolume is the delivered recipients a window needs before its rates warn or pause
	// (default 1000).
	MinVolume int
	Interval  time.Duration // how often Serve checks (default 1 minute)
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service computes rates and pauses the broadcast stream. It is safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	warned map[string]bool // stream/window → its complaint rate is over ComplaintWarn
}

// New returns a Service, filling defaults into cfg.
func New(cfg Config) *Service {
	if cfg.MinVolume <= 0 {
		cfg.MinVolume = 1000
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "reputation"), warned: map[string]bool{}}
}

// Windows are the rolling windows rates are computed over, shortest first.
var Windows = []Window{{Name: "24h", Length: 24 * time.Hour}, {Name: "7d", Length: 7 * 24 * time.Hour}}

// Window is a rolling window.
type Window struct {
	Name   string
	Length time.Duration
}

// WindowStats are a stream's counts and rates over one window.
type WindowStats struct {
	Window string // Windows[i].Name
	Since  time.Time
	store.DeliveryCounts
	BounceRate, ComplaintRate float64 // over Delivered; 0 when nothing was delivered
	// Enough: Delivered reached MinVolume, so the rates may warn or pause.
	Enough bool
}

// StreamStats are a stream's state and rates.
type StreamStats struct {
	Stream string
	// State is the stream's pause (Paused false when it runs; zero times when it never paused).
	State   store.StreamState
	Windows []WindowStats // one per Windows entry, in order
	// Warning: some window with enough volume has a complaint rate at or over ComplaintWarn.
	Warning bool
}

// ErrUnknownStream is returned for a stream name postie does not have.
var ErrUnknownStream = errors.New("reputation: unknown stream")

// ErrNotPaused is returned by Resume for a stream that is not paused.
var ErrNotPaused = errors.New("reputation: the stream is not paused")

// Rates returns bounced and complained over delivered, 0 when nothing was delivered.
func Rates(delivered, bounced, complained int) (bounceRate, complaintRate float64) {
	if delivered <= 0 {
		return 0, 0
	}
	return float64(bounced) / float64(delivered), float64(complained) / float64(delivered)
}

// Stats returns every stream's state and rates, in store.Streams order.
func (s *Service) Stats(ctx context.Context) ([]StreamStats, error) {
	states, err := s.states(ctx)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	out := make([]StreamStats, 0, len(store.Streams))
	for _, name := range store.Streams {
		st, err := s.stats(ctx, name, states[name], now)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Stream returns one stream's state and rates; ErrUnknownStream when there is no such stream.
func (s *Service) Stream(ctx context.Context, name string) (StreamStats, error) {
	if !slices.Contains(store.Streams, name) {
		return StreamStats{}, ErrUnknownStream
	}
	states, err := s.states(ctx)
	if err != nil {
		return StreamStats{}, err
	}
	return s.stats(ctx, name, states[name], s.cfg.Now())
}

// Resume ends a stream's pause and returns its state afterwards: ErrUnknownStream, or
// ErrNotPaused when it is not paused.
func (s *Service) Resume(ctx context.Context, name string) (StreamStats, error) {
	if !slices.Contains(store.Streams, name) {
		return StreamStats{}, ErrUnknownStream
	}
	err := s.cfg.Store.StreamResume(ctx, name, s.cfg.Now())
	if errors.Is(err, store.ErrConflict) {
		return StreamStats{}, ErrNotPaused
	}
	if err != nil {
		return StreamStats{}, err
	}
	s.log.Info("stream resumed", "stream", name)
	return s.Stream(ctx, name)
}

func (s *Service) states(ctx context.Context) (map[string]store.StreamState, error) {
	list, err := s.cfg.Store.StreamStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.StreamState, len(list))
	for _, st := range list {
		out[st.Stream] = st
	}
	return out, nil
}

// stats counts one stream's windows at now.
func (s *Service) stats(ctx context.Context, name string, state store.StreamState, now time.Time) (StreamStats, error) {
	state.Stream = name
	out := StreamStats{Stream: name, State: state}
	for _, w := range Windows {
		ws, err := s.window(ctx, name, w.Name, now.Add(-w.Length))
		if err != nil {
			return StreamStats{}, err
		}
		out.Warning = out.Warning || s.warns(ws)
		out.Windows = append(out.Windows, ws)
	}
	return out, nil
}

func (s *Service) window(ctx context.Context, stream, name string, since time.Time) (WindowStats, error) {
	c, err := s.cfg.Store.DeliveryCounts(ctx, stream, since)
	if err != nil {
		return WindowStats{}, fmt.Errorf("counting the %s stream's deliveries: %w", stream, err)
	}
	ws := WindowStats{Window: name, Since: since.Truncate(time.Hour), DeliveryCounts: c, Enough: c.Delivered >= s.cfg.MinVolume}
	ws.BounceRate, ws.ComplaintRate = Rates(c.Delivered, c.Bounced, c.Complained)
	return ws, nil
}

func (s *Service) warns(ws WindowStats) bool {
	return ws.Enough && s.cfg.ComplaintWarn > 0 && ws.ComplaintRate >= s.cfg.ComplaintWarn
}

// pauses returns the pause reason and detail a window's counts call for, "" for none.
func (s *Service) pauses(ws WindowStats) (reason, detail string) {
	if !ws.Enough {
		return "", ""
	}
	switch {
	case s.cfg.ComplaintPause > 0 && ws.ComplaintRate >= s.cfg.ComplaintPause:
		return store.PauseComplaintRate, fmt.Sprintf("complaint rate %.3f%% over the last %s (%d complaints, %d delivered), at or over %.3f%%",
			100*ws.ComplaintRate, ws.Window, ws.Complained, ws.Delivered, 100*s.cfg.ComplaintPause)
	case s.cfg.BouncePause > 0 && ws.BounceRate >= s.cfg.BouncePause:
		return store.PauseBounceRate, fmt.Sprintf("bounce rate %.2f%% over the last %s (%d bounces, %d delivered), at or over %.2f%%",
			100*ws.BounceRate, ws.Window, ws.Bounced, ws.Delivered, 100*s.cfg.BouncePause)
	}
	return "", ""
}

// Check looks at every stream's rates once: it logs warnings, and pauses the broadcast stream
// when its rates call for it. It returns the first store error.
func (s *Service) Check(ctx context.Context) error {
	states, err := s.states(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	for _, name := range store.Streams {
		st, err := s.stats(ctx, name, states[name], now)
		if err != nil {
			return err
		}
		s.logWarnings(st)
		if name != store.StreamBroadcast || st.State.Paused {
			continue
		}
		if err := s.breaker(ctx, st, now); err != nil {
			return err
		}
	}
	return nil
}

// breaker pauses the broadcast stream when a window's rates call for it. Since its last
// resume, a window counts only from the first whole hour after it.
func (s *Service) breaker(ctx context.Context, st StreamStats, now time.Time) error {
	var resumed time.Time
	if r := st.State.ResumedAt; !r.IsZero() {
		resumed = r.Truncate(time.Hour)
		if !resumed.Equal(r) {
			resumed = resumed.Add(time.Hour)
		}
	}
	for i, w := range Windows {
		ws := st.Windows[i]
		if since := now.Add(-w.Length); since.Before(resumed) {
			var err error
			if ws, err = s.window(ctx, st.Stream, w.Name, resumed); err != nil {
				return err
			}
		}
		reason, detail := s.pauses(ws)
		if reason == "" {
			continue
		}
		paused, err := s.cfg.Store.StreamPause(ctx, store.StreamPauseParams{Stream: st.Stream, Reason: reason, Detail: detail, Now: now})
		if err != nil {
			return fmt.Errorf("pausing the %s stream: %w", st.Stream, err)
		}
		if paused {
			s.log.Warn("stream paused: its messages wait until it is resumed (POST /v1/streams/"+st.Stream+"/resume)",
				"stream", st.Stream, "reason", reason, "detail", detail)
		}
		return nil
	}
	return nil
}

// logWarnings logs a window's complaint rate when it crosses ComplaintWarn, and when it is
// back under.
func (s *Service) logWarnings(st StreamStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ws := range st.Windows {
		key, over := st.Stream+"/"+ws.Window, s.warns(ws)
		if over == s.warned[key] {
			continue
		}
		s.warned[key] = over
		if over {
			s.log.Warn("complaint rate at or over POSTIE_COMPLAINT_WARN", "stream", st.Stream, "window", ws.Window,
				"complaint_rate", ws.ComplaintRate, "complaints", ws.Complained, "delivered", ws.Delivered, "warn_at", s.cfg.ComplaintWarn)
		} else {
			s.log.Info("complaint rate back under POSTIE_COMPLAINT_WARN", "stream", st.Stream, "window", ws.Window,
				"complaint_rate", ws.ComplaintRate)
		}
	}
}

// Serve runs Check every Interval until ctx ends. A failed check is logged and tried again at
// the next tick.
func (s *Service) Serve(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("checking bounce and complaint rates failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
