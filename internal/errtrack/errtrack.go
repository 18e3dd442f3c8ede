// Package errtrack reports panics and unexpected errors (a 500, a store failure): always to the
// log, and to Sentry when POSTIE_SENTRY_DSN is set. A report never carries a message body, an
// email address or a key.
package errtrack

import (
	"context"
	"log/slog"
)

// Reporter takes the reports. where names the place in a few words ("http POST
// /v1/messages", "delivery worker"): bounded, never an id or an address. Implementations are
// safe for concurrent use, and a nil Reporter is never passed: use Log.
type Reporter interface {
	// Panic reports a recovered panic v with the stack of the goroutine that panicked.
	Panic(ctx context.Context, where string, v any, stack []byte)
	// Error reports an error that should not have happened.
	Error(ctx context.Context, where string, err error)
}

// Log is the Reporter that only logs, at level error.
func Log(log *slog.Logger) Reporter { return logReporter{log} }

type logReporter struct{ log *slog.Logger }

func (l logReporter) Panic(ctx context.Context, where string, v any, stack []byte) {
	l.log.ErrorContext(ctx, "panic recovered", "where", where, "panic", v, "stack", string(stack))
}

func (l logReporter) Error(ctx context.Context, where string, err error) {
	l.log.ErrorContext(ctx, "unexpected error", "where", where, "err", err)
}

// OrLog is r, or Log(log) when r is nil: the default of a service's Errors setting.
func OrLog(r Reporter, log *slog.Logger) Reporter {
	if r == nil {
		return Log(log)
	}
	return r
}
