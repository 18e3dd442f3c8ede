package delivery

import (
	"context"
	"log/slog"
	"time"

	"github.com/postie/postie/internal/errtrack"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
)

// deliverReported is deliver guarded against a panic, and logged: one line per outcome.
//
// A panic while delivering one message is reported (Config.Errors) and costs that message an
// attempt, deferred along the retry ladder like a temporary error (failed once the attempts are
// used up, so a message that always panics does not loop); the sender goes on with the next.
func (e *Engine) deliverReported(ctx context.Context, j job) (fin store.MessageFinishParams) {
	start := time.Now()
	if errtrack.Guard(ctx, e.cfg.Errors, "delivery worker", func() { fin = e.deliver(ctx, j) }) {
		fin = e.panicked(ctx, j.ClaimedMessage, e.cfg.Now())
	}
	e.logOutcome(ctx, j.ClaimedMessage, fin, time.Since(start))
	return fin
}

// panickedError is the reason recorded for an attempt that ended in a panic.
var panickedError = transport.Error{Class: transport.Temporary, Stage: "internal",
	Text: "internal error while delivering (reported to the operator); the message will be tried again"}

// panicked is the outcome of an attempt at m that panicked; see deliverReported. If judging
// that outcome panics too, the message is left queued for a lease time, its attempt counted.
func (e *Engine) panicked(ctx context.Context, m store.ClaimedMessage, now time.Time) (fin store.MessageFinishParams) {
	te := panickedError
	if !errtrack.Guard(ctx, e.cfg.Errors, "delivery worker", func() {
		fin = e.outcome(m, m.Recipients, nil, transport.Result{}, &te, now)
	}) {
		return fin
	}
	fin = store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusQueued, Attempts: m.Attempts + 1,
		NextAttemptAt: now.Add(e.cfg.Lease), LastError: deliveryError(&te, m.Attempts+1, now)}
	if m.Split {
		fin.Split, fin.Pending = true, m.Recipients
	}
	return fin
}

// logOutcome writes the line of one delivery outcome: ids, stream, transport, status, attempt,
// the relay's reply codes, and its text with the addresses masked unless Config.LogPII. The
// recipients are named only with LogPII; otherwise they are counted.
func (e *Engine) logOutcome(ctx context.Context, m store.ClaimedMessage, fin store.MessageFinishParams, took time.Duration) {
	level := slog.LevelInfo
	if fin.Status == store.StatusFailed || fin.Status == store.StatusPartiallyFailed {
		level = slog.LevelWarn
	}
	if !e.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("message_id", m.ID), slog.String("stream", m.Stream),
		slog.String("transport", e.cfg.Transport.Name()), slog.String("outcome", string(fin.Status)),
		slog.Int("attempt", fin.Attempts), slog.Duration("duration", took),
	}
	if e.cfg.LogPII {
		attrs = append(attrs, slog.Any("recipients", m.Recipients))
	} else {
		attrs = append(attrs, slog.Int("recipients", len(m.Recipients)))
	}
	if fin.ProviderID != "" {
		attrs = append(attrs, slog.String("provider_id", fin.ProviderID))
	}
	if de := fin.LastError; de != nil && fin.Status != store.StatusSent {
		text := de.Text
		if !e.cfg.LogPII {
			text = errtrack.Scrub(text)
		}
		attrs = append(attrs, slog.Int("smtp_code", de.Code), slog.String("enhanced_code", de.Enhanced),
			slog.String("stage", de.Stage), slog.String("reply", text))
	}
	if !fin.NextAttemptAt.IsZero() && (fin.Status == store.StatusDeferred || fin.Status == store.StatusQueued) {
		attrs = append(attrs, slog.Time("next_attempt_at", fin.NextAttemptAt))
	}
	e.log.LogAttrs(ctx, level, "delivery outcome", attrs...)
}
