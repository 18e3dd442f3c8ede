package app

import (
	"context"
	"time"

	"github.com/postie/postie/internal/errtrack"
)

// flushTimeout bounds how long shutdown waits for the last error reports to reach Sentry.
const flushTimeout = 5 * time.Second

// setupErrors builds the node's error reporter: the log, and Sentry when POSTIE_SENTRY_DSN is
// set, with postie's version as the release, POSTIE_ENVIRONMENT and the node id as server name.
func (a *App) setupErrors(node string) error {
	a.errors = errtrack.Log(a.log)
	if a.cfg.SentryDSN == "" {
		return nil
	}
	s, err := errtrack.NewSentry(errtrack.SentryConfig{DSN: a.cfg.SentryDSN, Release: "postie@" + ReadVersion().Version,
		Environment: a.cfg.Environment, ServerName: node, Logger: a.log})
	if err != nil {
		return err
	}
	a.errors, a.sentry = s, s
	a.log.Info("reporting panics and unexpected errors to Sentry (POSTIE_SENTRY_DSN)", "environment", a.cfg.Environment)
	return nil
}

// Errors is the node's error reporter (for in-process tests and the parts app wires).
func (a *App) Errors() errtrack.Reporter { return a.errors }

// flushErrors waits, at most flushTimeout, for the reports still being sent to Sentry.
func (a *App) flushErrors(ctx context.Context) {
	if a.sentry == nil {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
	defer cancel()
	if !a.sentry.Flush(fctx) {
		a.log.Warn("some error reports were not sent to Sentry before shutdown", "timeout", flushTimeout)
	}
}
