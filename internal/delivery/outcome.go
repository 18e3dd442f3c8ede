package delivery

import (
	"context"
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
		if supp, err = e.lookupSuppressions(ctx, []store.ClaimedMessage{m}, now); err != nil {
			// Sending to a suppressed address is worse than a short delay.
			e.log.Error("looking up suppressions failed; the message waits", "message", m.ID, "err", err)
			fin := store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusQueued,
				Attempts: m.Attempts, NextAttemptAt: now.Add(e.cfg.BreakerMin), LastError: m.LastError}
			if m.Split {
				fin.Split, fin.Pending = true, m.Recipients
			}
			return fin
		}
	}
	to, dropped := splitSuppressed(m, supp)
	var events []store.Event
	var suppressed []string
	if len(dropped) > 0 {
		events = append(events, store.NewEvent(store.EventSuppressed, now, &store.EventDetail{Recipients: dropped}))
		for _, d := range dropped {
			suppressed = append(suppressed, d.Recipient)
		}
	}
	if len(to) == 0 {
		fin := store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusSuppressed,
			Attempts: m.Attempts, NextAttemptAt: m.NextAttemptAt, LastError: m.LastError, Events: events}
		return e.settle(m, fin, suppressedVerdicts(suppressed), now)
	}

	if until, open := e.breaker.openUntil(); open && !j.probe {
		// The relay went away after this message was claimed: wait with the others.
		fin := e.unreachable(m, to, suppressed, &transport.Error{Class: transport.Unreachable, Stage: "connect",
			Text: "relay unreachable: deliveries paused until it answers again"}, until, now)
		fin.Events = append(events, fin.Events...)
		return fin
	}

	if e.cfg.BounceAddress != nil {
		if from := e.cfg.BounceAddress(m.ID, to[0], m.EnvelopeFrom); from != "" {
			fin := e.deliverEach(ctx, m, to, suppressed, j.Raw)
			fin.Events = append(events, fin.Events...)
			return fin
		}
	}
	res, err := e.cfg.Transport.Send(ctx, transport.Envelope{MessageID: m.ID, From: m.EnvelopeFrom, To: to}, j.Raw)
	done := e.cfg.Now()
	var fin store.MessageFinishParams
	if te := classified(err); te != nil && te.Class == transport.Unreachable {
		until, changed := e.breaker.failure(done, te.RetryAfter)
		if changed {
			e.log.Warn("relay unreachable: pausing deliveries", "until", until, "err", te.Error())
		}
		fin = e.unreachable(m, to, suppressed, te, until, done)
	} else {
		if e.breaker.success() {
			e.log.Info("relay reachable again: resuming deliveries")
		}
		fin = e.outcome(m, to, suppressed, res, err, done)
	}
	fin.Events = append(events, fin.Events...)
	return fin
}

// splitSuppressed separates the recipients that may be sent to from the suppressed ones.
func splitSuppressed(m store.ClaimedMessage, supp suppressions) (to []string, dropped []store.EventRecipient) {
	if len(supp.found) == 0 {
		return m.Recipients, nil
	}
	scopes := scopesOf(m)
	for _, r := range m.Recipients {
		if s, ok := supp.suppressedIn(scopes, r); ok {
			dropped = append(dropped, store.EventRecipient{Recipient: r, Reason: s.Reason})
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

// verdict is one recipient's outcome of an attempt.
type verdict struct {
	rcpt  string // as addressed
	state store.RecipientStatus
	err   *store.DeliveryError // why it was not sent (deferred, failed)
}

func suppressedVerdicts(rcpts []string) []verdict {
	vs := make([]verdict, len(rcpts))
	for i, r := range rcpts {
		vs[i] = verdict{rcpt: r, state: store.RecipientSuppressed}
	}
	return vs
}

// settle completes fin, the outcome of an attempt at m as a whole, with vs, the outcome for each
// of m's recipients (those sent to and those suppressed). When they all share one outcome (one
// state and one reason) and m is not split, fin stands alone: the recipients' states are the
// message's, and nothing per recipient is written. Otherwise the outcome is split: each
// recipient's state goes in fin.Recipients, those still to be sent to in fin.Pending, and with
// none pending the store derives the message's status from all its recipients (store.DeriveStatus).
func (e *Engine) settle(m store.ClaimedMessage, fin store.MessageFinishParams, vs []verdict, now time.Time) store.MessageFinishParams {
	if len(vs) == 0 {
		return fin
	}
	uniform := !m.Split
	for _, v := range vs[1:] {
		if !uniform {
			break
		}
		uniform = v.state == vs[0].state && sameError(v.err, vs[0].err)
	}
	if uniform {
		return fin
	}
	fin.Split = true
	seen := make(map[string]struct{}, len(vs))
	states := make([]store.RecipientStatus, 0, len(vs))
	for _, v := range vs {
		email := strings.ToLower(v.rcpt)
		if _, dup := seen[email]; dup {
			continue
		}
		seen[email] = struct{}{}
		r := store.Recipient{Email: email, Status: v.state, Attempts: fin.Attempts, LastError: v.err}
		switch v.state {
		case store.RecipientSent:
			r.SentAt = now
		case store.RecipientSuppressed:
			r.Attempts = m.Attempts
		case store.RecipientQueued, store.RecipientDeferred:
			fin.Pending = append(fin.Pending, v.rcpt)
		}
		fin.Recipients = append(fin.Recipients, r)
		states = append(states, v.state)
	}
	if len(fin.Pending) == 0 {
		// Provisional: the store derives it from every recipient of the message.
		fin.Status = store.DeriveStatus(fin.Status, states)
	}
	return fin
}

// errorEntries are the event entries of recipients that share one error.
func errorEntries(rcpts []string, de *store.DeliveryError) []store.EventRecipient {
	out := make([]store.EventRecipient, len(rcpts))
	for i, r := range rcpts {
		out[i] = store.EventRecipient{Recipient: r, Error: de}
	}
	return out
}

// sameError reports whether a and b are the same reason (or both none).
func sameError(a, b *store.DeliveryError) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Code == b.Code && a.Enhanced == b.Enhanced && a.Text == b.Text && a.Stage == b.Stage
}

// unreachable defers m's recipients to until, the breaker's next probe, without spending an
// attempt, or fails them when that is past m's TTL.
func (e *Engine) unreachable(m store.ClaimedMessage, to, suppressed []string, te *transport.Error, until, now time.Time) store.MessageFinishParams {
	if !m.ExpiresAt.IsZero() && !until.Before(m.ExpiresAt) {
		return e.expired(m, now)
	}
	de := deliveryError(te, 0, now)
	fin := store.MessageFinishParams{
		ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusDeferred, Attempts: m.Attempts,
		NextAttemptAt: until, LastError: de,
		Events: []store.Event{store.NewEvent(store.EventDeferred, now, &store.EventDetail{
			Transport: e.cfg.Transport.Name(), Error: de, Class: te.Class.String(),
			NextAttemptAt: &until, AttemptCounted: new(false), Recipients: errorEntries(to, de),
		})},
	}
	vs := suppressedVerdicts(suppressed)
	for _, r := range to {
		vs = append(vs, verdict{rcpt: r, state: store.RecipientDeferred, err: de})
	}
	return e.settle(m, fin, vs, now)
}

// outcome turns the result of a send to `to` into the message's next state, each recipient of
// `to` judged on its own where the relay answered for it alone (RCPT): accepted ones are sent; a
// refused one failed when the refusal is permanent (a hard bounce also suppresses the address)
// and deferred on the retry ladder when temporary, failed when its attempts or TTL are used up.
// An error of the whole transaction (DATA, a lost connection) applies to every recipient of
// `to`. suppressed are the recipients dropped before the send. It is pure, for testing.
// Unreachable errors are handled by deliver (they depend on the breaker).
func (e *Engine) outcome(m store.ClaimedMessage, to, suppressed []string, res transport.Result, err error, now time.Time) store.MessageFinishParams {
	if te := classified(err); te != nil && te.Class == transport.Unreachable {
		// Not the message's fault (deliver normally handles these with the breaker).
		return e.unreachable(m, to, suppressed, te, now.Add(e.cfg.BreakerMin), now)
	}
	fin, vs := e.judge(m, to, suppressed, res, err, now)
	return e.settle(m, fin, vs, now)
}

// judge is outcome before settle: the message's outcome, and each recipient's verdict. err is
// not Unreachable.
func (e *Engine) judge(m store.ClaimedMessage, to, suppressed []string, res transport.Result, err error, now time.Time) (store.MessageFinishParams, []verdict) {
	fin := store.MessageFinishParams{ID: m.ID, Owner: e.cfg.Owner, Attempts: m.Attempts + 1, NextAttemptAt: m.NextAttemptAt}
	var te *transport.Error
	refused := map[string]*transport.Error{} // by recipient as addressed
	if err == nil {
		for _, r := range res.Rejected {
			refused[r.Recipient] = r.Err
		}
	} else {
		te = transport.Classify(err)
		for _, r := range te.Rejected {
			refused[r.Recipient] = r.Err
		}
	}

	// The next attempt is chosen once, for every recipient deferred.
	var (
		next         time.Time
		nextOK, seen bool
	)
	retry := func() bool {
		if !seen {
			next, nextOK = e.nextAttempt(m, fin.Attempts, now)
			seen = true
		}
		return nextOK
	}
	vs := suppressedVerdicts(suppressed)
	var sent []string
	var deferred, failed []store.EventRecipient
	var firstDeferred, firstFailed *store.DeliveryError
	var failedClass, deferredClass string
	possibleDuplicate := false
	for _, r := range to {
		rte, alone := refused[r], true
		if rte == nil && te != nil {
			rte, alone = te, false
		}
		if rte == nil {
			sent = append(sent, r)
			vs = append(vs, verdict{rcpt: r, state: store.RecipientSent})
			continue
		}
		possibleDuplicate = possibleDuplicate || rte.MaybeDelivered
		de := deliveryError(rte, fin.Attempts, now)
		entry := store.EventRecipient{Recipient: r, Error: de}
		if rte.Class != transport.Permanent && retry() {
			deferred = append(deferred, entry)
			vs = append(vs, verdict{rcpt: r, state: store.RecipientDeferred, err: de})
			if firstDeferred == nil {
				firstDeferred, deferredClass = de, rte.Class.String()
			}
			continue
		}
		if (alone || len(to) == 1) && rte.HardBounce() {
			fin.Suppress = append(fin.Suppress, hardBounce(r, rte, m.ID, now))
			entry.Suppressed = true
		}
		failed = append(failed, entry)
		vs = append(vs, verdict{rcpt: r, state: store.RecipientFailed, err: de})
		if firstFailed == nil {
			firstFailed, failedClass = de, rte.Class.String()
		}
	}

	name := e.cfg.Transport.Name()
	if len(sent) > 0 {
		fin.SentAt = now
		fin.ProviderID = transport.CleanText(res.ProviderID)
		fin.Events = append(fin.Events, store.NewEvent(store.EventSent, now, &store.EventDetail{Transport: name,
			Response: transport.CleanText(res.Response), ProviderID: fin.ProviderID, Attempt: fin.Attempts,
			Recipients: store.Recipients(sent)}))
	}
	if len(deferred) > 0 {
		fin.Events = append(fin.Events, store.NewEvent(store.EventDeferred, now, &store.EventDetail{Transport: name,
			Error: firstDeferred, Class: deferredClass, Attempt: fin.Attempts, NextAttemptAt: &next,
			PossibleDuplicate: possibleDuplicate, Recipients: deferred}))
	}
	if len(failed) > 0 {
		detail := &store.EventDetail{Transport: name, Error: firstFailed, Class: failedClass,
			Attempt: fin.Attempts, PossibleDuplicate: possibleDuplicate && len(deferred) == 0, Recipients: failed}
		if failedClass != transport.Permanent.String() {
			detail.Reason = "attempts exhausted"
			if !m.ExpiresAt.IsZero() && attemptsLeft(m, fin.Attempts, len(e.cfg.RetryDelays)) {
				detail.Reason = "the next attempt would be after the message expires"
			}
		}
		fin.Events = append(fin.Events, store.NewEvent(store.EventFailed, now, detail))
	}

	switch {
	case len(deferred) > 0:
		fin.Status, fin.NextAttemptAt, fin.LastError = store.StatusDeferred, next, firstDeferred
	case len(failed) > 0:
		fin.LastError = firstFailed
		fin.Status = store.StatusFailed
		if len(sent) > 0 {
			fin.Status = store.StatusPartiallyFailed
		}
	default:
		fin.Status = store.StatusSent
	}
	return fin, vs
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

// expired fails a message whose TTL has passed (RFC 3463 4.4.7: delivery time expired): every
// recipient still to be sent to.
func (e *Engine) expired(m store.ClaimedMessage, now time.Time) store.MessageFinishParams {
	de := expiredError(m, now)
	fin := store.MessageFinishParams{
		ID: m.ID, Owner: e.cfg.Owner, Status: store.StatusFailed, Attempts: m.Attempts,
		NextAttemptAt: m.NextAttemptAt, LastError: de,
		Events: []store.Event{store.NewEvent(store.EventFailed, now, &store.EventDetail{Error: de, Reason: "expired",
			Recipients: errorEntries(m.Recipients, de)})},
	}
	vs := make([]verdict, len(m.Recipients))
	for i, r := range m.Recipients {
		vs[i] = verdict{rcpt: r, state: store.RecipientFailed, err: de}
	}
	return e.settle(m, fin, vs, now)
}

// expiredError is the error of recipients of m that fail because its TTL has passed.
func expiredError(m store.ClaimedMessage, now time.Time) *store.DeliveryError {
	return &store.DeliveryError{Enhanced: "4.4.7", Text: "message expired before it could be delivered", Stage: "queue", Attempt: m.Attempts, At: now}
}

// deliveryError is te as the store records it. Everything a transport reports is cleaned here
// (transport.CleanText), where it becomes store data: the text is the remote server's to choose,
// and PostgreSQL refuses U+0000.
func deliveryError(te *transport.Error, attempt int, now time.Time) *store.DeliveryError {
	return &store.DeliveryError{Code: te.Code, Enhanced: transport.CleanText(te.Enhanced), Text: transport.CleanText(te.Text),
		Stage: te.Stage, Attempt: attempt, At: now}
}
