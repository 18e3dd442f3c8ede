package delivery

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
)

// deliver sends one claimed message and returns its outcome.
func (e *Engine) deliver(ctx context.Context, j job) store.MessageFinishParams {
	m := j.ClaimedMessage
	now := e.cfg.Now()
	if !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt) {
		return e.expired(m, now)
	}

	supp := j.suppressed
	if !j.checked {
		var err error
		if supp, err = e.cfg.Store.SuppressionMatch(ctx, m.Recipients, now); err != nil {
			// Sending to a suppressed address is worse than a short delay.
			e.log.Error("looking up suppressions failed; the message waits", "message", m.ID, "err", err)
			return store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusQueued,
				Attempts: m.Attempts, NextAttemptAt: now.Add(e.cfg.BreakerMin), LastError: m.LastError}
		}
	}
	to, dropped := splitSuppressed(m.Recipients, supp)
	var events []store.Event
	if len(dropped) > 0 {
		events = append(events, event(store.EventSuppressed, now, map[string]any{"recipients": dropped}))
	}
	if len(to) == 0 {
		return store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusSuppressed,
			Attempts: m.Attempts, NextAttemptAt: m.NextAttemptAt, LastError: m.LastError, Events: events}
	}

	if until, open := e.breaker.openUntil(); open && !j.probe {
		// The relay went away after this message was claimed: wait with the others.
		fin := e.unreachable(m, &transport.Error{Class: transport.Unreachable, Stage: "connect",
			Text: "relay unreachable: deliveries paused until it answers again"}, until, now)
		fin.Events = append(events, fin.Events...)
		return fin
	}

	res, err := e.cfg.Transport.Send(ctx, transport.Envelope{MessageID: m.ID, From: m.EnvelopeFrom, To: to}, j.Raw)
	done := e.cfg.Now()
	var fin store.MessageFinishParams
	if te := classified(err); te != nil && te.Class == transport.Unreachable {
		until, changed := e.breaker.failure(done, te.RetryAfter)
		if changed {
			e.log.Warn("relay unreachable: pausing deliveries", "until", until, "err", te.Error())
		}
		fin = e.unreachable(m, te, until, done)
	} else {
		if e.breaker.success() {
			e.log.Info("relay reachable again: resuming deliveries")
		}
		fin = e.outcome(m, to, res, err, done)
	}
	fin.Events = append(events, fin.Events...)
	return fin
}

// splitSuppressed separates the recipients that may be sent to from the suppressed ones.
func splitSuppressed(rcpts []string, supp map[string]store.Suppression) (to []string, dropped []map[string]any) {
	if len(supp) == 0 {
		return rcpts, nil
	}
	for _, r := range rcpts {
		if s, ok := supp[strings.ToLower(r)]; ok {
			dropped = append(dropped, map[string]any{"recipient": r, "reason": s.Reason})
			continue
		}
		to = append(to, r)
	}
	return to, dropped
}

func classified(err error) *transport.Error {
	if err == nil {
		return nil
	}
	return transport.Classify(err)
}

// unreachable defers m until the breaker's next probe without spending an attempt, or fails it
// when that is past its TTL.
func (e *Engine) unreachable(m store.ClaimedMessage, te *transport.Error, until, now time.Time) store.MessageFinishParams {
	if !m.ExpiresAt.IsZero() && !until.Before(m.ExpiresAt) {
		return e.expired(m, now)
	}
	de := deliveryError(te, 0, now)
	return store.MessageFinishParams{
		ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusDeferred, Attempts: m.Attempts,
		NextAttemptAt: until, LastError: de,
		Events: []store.Event{event(store.EventDeferred, now, map[string]any{
			"transport": e.cfg.Transport.Name(), "error": de, "class": te.Class.String(),
			"next_attempt_at": until, "attempt_counted": false,
		})},
	}
}

// outcome turns the result of a send to `to` into the message's next state. It is pure, for
// testing. Unreachable errors are handled by deliver (they depend on the breaker).
func (e *Engine) outcome(m store.ClaimedMessage, to []string, res transport.Result, err error, now time.Time) store.MessageFinishParams {
	fin := store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Attempts: m.Attempts + 1, NextAttemptAt: m.NextAttemptAt}
	if err == nil {
		fin.Status = store.StatusSent
		fin.SentAt = now
		fin.ProviderID = transport.CleanText(res.ProviderID)
		detail := map[string]any{"transport": e.cfg.Transport.Name(), "response": transport.CleanText(res.Response), "attempt": fin.Attempts}
		if fin.ProviderID != "" {
			detail["provider_id"] = fin.ProviderID
		}
		if len(res.Rejected) > 0 {
			detail["rejected"] = e.rejections(&fin, m, res.Rejected, now)
		}
		fin.Events = []store.Event{event(store.EventSent, now, detail)}
		return fin
	}

	te := transport.Classify(err)
	de := deliveryError(te, fin.Attempts, now)
	fin.LastError = de
	detail := map[string]any{"transport": e.cfg.Transport.Name(), "error": de, "class": te.Class.String(), "attempt": fin.Attempts}
	if te.MaybeDelivered {
		detail["possible_duplicate"] = true
	}
	switch te.Class {
	case transport.Unreachable:
		// Not the message's fault (deliver normally handles these with the breaker).
		return e.unreachable(m, te, now.Add(e.cfg.BreakerMin), now)
	case transport.Permanent:
		fin.Status = store.StatusFailed
		switch {
		case len(te.Rejected) > 0:
			detail["rejected"] = e.rejections(&fin, m, te.Rejected, now)
		case len(to) == 1 && te.HardBounce():
			fin.Suppress = []store.Suppression{hardBounce(to[0], te, m.ID, now)}
			detail["suppressed"] = to
		}
		fin.Events = []store.Event{event(store.EventFailed, now, detail)}
	default:
		next, ok := e.nextAttempt(m, fin.Attempts, now)
		if !ok {
			fin.Status = store.StatusFailed
			detail["reason"] = "attempts exhausted"
			if !m.ExpiresAt.IsZero() && attemptsLeft(m, fin.Attempts, len(e.cfg.RetryDelays)) {
				detail["reason"] = "the next attempt would be after the message expires"
			}
			fin.Events = []store.Event{event(store.EventFailed, now, detail)}
			break
		}
		fin.Status, fin.NextAttemptAt = store.StatusDeferred, next
		detail["next_attempt_at"] = next
		fin.Events = []store.Event{event(store.EventDeferred, now, detail)}
	}
	return fin
}

// rejections describes recipients refused one by one, and suppresses the hard bounces among
// them in fin.
func (e *Engine) rejections(fin *store.MessageFinishParams, m store.ClaimedMessage, rej []transport.RecipientError, now time.Time) []map[string]any {
	out := make([]map[string]any, len(rej))
	for i, r := range rej {
		entry := map[string]any{"recipient": r.Recipient, "error": deliveryError(r.Err, fin.Attempts, now)}
		if r.Err.HardBounce() {
			fin.Suppress = append(fin.Suppress, hardBounce(r.Recipient, r.Err, m.ID, now))
			entry["suppressed"] = true
		}
		out[i] = entry
	}
	return out
}

func hardBounce(rcpt string, te *transport.Error, messageID string, now time.Time) store.Suppression {
	detail := transport.CleanText(te.Text)
	if te.Code != 0 {
		detail = strings.TrimSpace(strings.Join([]string{strconv.Itoa(te.Code), te.Enhanced, detail}, " "))
	}
	return store.Suppression{Email: strings.ToLower(rcpt), Reason: store.ReasonHardBounce, Detail: detail,
		MessageID: messageID, CreatedAt: now}
}

// nextAttempt returns when to try again after `attempts` failed attempts, or false when the
// attempts or the TTL are used up.
func (e *Engine) nextAttempt(m store.ClaimedMessage, attempts int, now time.Time) (time.Time, bool) {
	if !attemptsLeft(m, attempts, len(e.cfg.RetryDelays)) {
		return time.Time{}, false
	}
	i := min(attempts-1, len(e.cfg.RetryDelays)-1)
	d := e.cfg.RetryDelays[i]
	d += time.Duration((e.cfg.Jitter()*0.4 - 0.2) * float64(d)) // ±20%
	next := now.Add(d)
	if !m.ExpiresAt.IsZero() && !next.Before(m.ExpiresAt) {
		return time.Time{}, false
	}
	return next, true
}

func attemptsLeft(m store.ClaimedMessage, attempts, delays int) bool {
	maxAttempts := m.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = delays + 1
	}
	return attempts < maxAttempts && delays > 0
}

// expired fails a message whose TTL has passed (RFC 3463 4.4.7: delivery time expired).
func (e *Engine) expired(m store.ClaimedMessage, now time.Time) store.MessageFinishParams {
	de := &store.DeliveryError{Enhanced: "4.4.7", Text: "message expired before it could be delivered", Stage: "queue", Attempt: m.Attempts, At: now}
	return store.MessageFinishParams{
		ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusFailed, Attempts: m.Attempts,
		NextAttemptAt: m.NextAttemptAt, LastError: de,
		Events: []store.Event{event(store.EventFailed, now, map[string]any{"error": de, "reason": "expired"})},
	}
}

// deliveryError is te as the store records it. Everything a transport reports is cleaned here
// (transport.CleanText), where it becomes store data: the text is the remote server's to choose,
// and PostgreSQL refuses U+0000.
func deliveryError(te *transport.Error, attempt int, now time.Time) *store.DeliveryError {
	return &store.DeliveryError{Code: te.Code, Enhanced: transport.CleanText(te.Enhanced), Text: transport.CleanText(te.Text),
		Stage: te.Stage, Attempt: attempt, At: now}
}

func event(typ string, at time.Time, detail map[string]any) store.Event {
	b, err := json.Marshal(detail)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	return store.Event{Type: typ, At: at, Detail: b}
}
