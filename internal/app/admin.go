package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/metrics"
)

// The admin listener (POSTIE_ADMIN_LISTEN): /metrics, /healthz and /readyz with no API key, for
// Prometheus and the orchestrator's probes, on an address of its own that an internet-facing
// proxy never exposes. Without it, /metrics is an ordinary API route behind an API key.

// listenAdmin listens on POSTIE_ADMIN_LISTEN (nothing when it is empty).
func (a *App) listenAdmin() error {
	if a.cfg.AdminAddr() == "" {
		return nil
	}
	l, err := net.Listen("tcp", a.cfg.AdminAddr())
	if err != nil {
		return fmt.Errorf("POSTIE_ADMIN_LISTEN %s: %w", a.cfg.AdminListen, err)
	}
	a.adminListener = l
	a.log.Info("admin listener (metrics and probes, no API key)", "addr", l.Addr().String(), "metrics", a.metrics != nil)
	return nil
}

// AdminAddr is the address the admin listener listens on ("" when off).
func (a *App) AdminAddr() string {
	if a.adminListener == nil {
		return ""
	}
	return a.adminListener.Addr().String()
}

// adminHandler serves the admin listener. /readyz answers 503 once stopping is set, so that a
// load balancer stops sending work while the node drains.
func adminHandler(m *metrics.Metrics, ready http.Handler, stopping *atomic.Bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler()) // 404 when metrics are off (nil)
	mux.HandleFunc("GET /healthz", httpapi.Healthz)
	mux.Handle("GET /readyz", httpapi.ReadyUnlessStopping(stopping, ready))
	return mux
}

// serveAdmin serves the admin listener until ctx ends (the end of Run, after the drain).
func (a *App) serveAdmin(ctx context.Context, stopping *atomic.Bool) {
	if a.adminListener == nil {
		return
	}
	srv := &http.Server{
		Handler:           adminHandler(a.metrics, httpapi.Readyz(a.store, a.log), stopping),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(a.adminListener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("admin listener failed", "err", err)
	}
}
