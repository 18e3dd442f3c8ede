package delivery

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/transport"
)

// Bounce addresses (VERP, email-rules §4.3). With Config.BounceAddress set, each recipient of an
// attempt gets its own envelope sender, so a bounce that comes back names the recipient and the
// message; an envelope has one MAIL FROM, so each recipient goes in an SMTP transaction of its
// own (one after the other: the transport pipelines each, and reuses the connection). The
// replies are combined into the same per-recipient outcome one transaction would give, every
// reply concerning its recipient alone: a refused RCPT, a DATA failure or a lost connection fails
// or defers that recipient only. When the relay cannot be reached for the first transaction,
// the whole message waits for the breaker as without VERP; when it goes away after it took some
// recipients, the others wait for the breaker's probe too, without spending an attempt.

// deliverEach sends m to each recipient of `to` in its own transaction with its bounce address
// as MAIL FROM, and returns the combined outcome. suppressed are the recipients dropped before.
func (e *Engine) deliverEach(ctx context.Context, m store.ClaimedMessage, to, suppressed []string, raw []byte) store.MessageFinishParams {
	var (
		res        transport.Result
		tried      []string
		rest       []string // not tried: the relay went away
		lost       *transport.Error
		relayUntil time.Time
	)
	for i, r := range to {
		from := e.cfg.BounceAddress(m.ID, r, m.EnvelopeFrom)
		if from == "" {
			from = m.EnvelopeFrom
		}
		one, err := e.cfg.Transport.Send(ctx, transport.Envelope{MessageID: m.ID, From: from, To: []string{r}}, raw)
		te := classified(err)
		if te != nil && te.Class == transport.Unreachable {
			until, changed := e.breaker.failure(e.cfg.Now(), te.RetryAfter)
			if changed {
				e.log.Warn("relay unreachable: pausing deliveries", "until", until, "err", te.Error())
			}
			if len(tried) == 0 {
				return e.unreachable(m, to, suppressed, te, until, e.cfg.Now())
			}
			rest, lost, relayUntil = to[i:], te, until
			break
		}
		if len(tried) == 0 && e.breaker.success() {
			e.log.Info("relay reachable again: resuming deliveries")
		}
		tried = append(tried, r)
		switch {
		case te != nil:
			res.Rejected = append(res.Rejected, transport.RecipientError{Recipient: r, Err: te})
		case len(one.Rejected) > 0:
			res.Rejected = append(res.Rejected, one.Rejected...)
		case res.Response == "":
			// The first accepted transaction's reply stands for the message (its provider id).
			res.ProviderID, res.Response = one.ProviderID, one.Response
		}
	}
	done := e.cfg.Now()
	fin, vs := e.judge(m, tried, suppressed, res, nil, done)
	if len(rest) == 0 {
		return e.settle(m, fin, vs, done)
	}
	fin, vs = e.unreached(m, fin, vs, rest, lost, relayUntil, done)
	fin = e.settle(m, fin, vs, done)
	for i, r := range fin.Recipients {
		if slices.ContainsFunc(rest, func(x string) bool { return strings.EqualFold(x, r.Email) }) {
			fin.Recipients[i].Attempts = m.Attempts // they were not tried
		}
	}
	return fin
}

// unreached adds to fin and vs the recipients of m the relay could no longer be reached for
// (te) after it answered for others: they wait, deferred until the breaker's probe, without
// spending an attempt, or fail when that is past m's TTL.
func (e *Engine) unreached(m store.ClaimedMessage, fin store.MessageFinishParams, vs []verdict, rest []string, te *transport.Error, until, now time.Time) (store.MessageFinishParams, []verdict) {
	if !m.ExpiresAt.IsZero() && !until.Before(m.ExpiresAt) {
		de := expiredError(m, now)
		fin.Events = append(fin.Events, store.NewEvent(store.EventFailed, now, &store.EventDetail{Error: de, Reason: "expired",
			Recipients: errorEntries(rest, de)}))
		for _, r := range rest {
			vs = append(vs, verdict{rcpt: r, state: store.RecipientFailed, err: de})
		}
		if fin.LastError == nil {
			fin.LastError = de
		}
		return fin, vs
	}
	de := deliveryError(te, 0, now)
	fin.Events = append(fin.Events, store.NewEvent(store.EventDeferred, now, &store.EventDetail{
		Transport: e.cfg.Transport.Name(), Error: de, Class: te.Class.String(),
		NextAttemptAt: &until, AttemptCounted: new(false), Recipients: errorEntries(rest, de),
	}))
	for _, r := range rest {
		vs = append(vs, verdict{rcpt: r, state: store.RecipientDeferred, err: de})
	}
	if fin.Status != store.StatusDeferred {
		fin.Status, fin.NextAttemptAt, fin.LastError = store.StatusDeferred, until, de
	} else if until.Before(fin.NextAttemptAt) {
		fin.NextAttemptAt = until
	}
	return fin, vs
}
