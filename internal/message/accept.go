package message

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/metrics"
	"github.com/postie/postie/internal/store"
)

// Idempotency makes a repeated request safe: a repeat with the same Key, Scope and Request gets
// the answer of the first; with another Request, a KindConflict Error. Keys are kept a day, per
// API key.
type Idempotency struct {
	Key     string // as the client gave it (surrounding space ignored); "" for none
	Scope   string // what else the key is bound to, e.g. the route the request came to
	Request []byte // the request exactly as received
}

// idempotencyTTL is how long a key is kept.
const idempotencyTTL = 24 * time.Hour

// AcceptParams are the requests of one Accept and their circumstances.
type AcceptParams struct {
	// Requests are the messages to create. Accept takes them over: it clears each once it is
	// composed, so its bodies and attachments can be collected while the others are.
	Requests      []Request
	APIKeyID      string
	SenderDomains []string // as in ComposeParams
	Now           time.Time
	Idempotency   Idempotency
	// Answer, when set, makes the caller's answer from the results before they are stored: with
	// an idempotency key, it is kept for a repeat of the request.
	Answer func([]Result) (status int, body []byte)
	// Budget bounds the time to compose all the requests; a request not composed when it is
	// used up fails alone with a KindUnavailable Error. 0: only ctx bounds it.
	Budget time.Duration
}

// Result is the outcome of one request: the stored message's ID and Status, or Err.
type Result struct {
	ID       string
	Status   store.Status
	Warnings []string // what the render noticed without refusing the message
	Err      error    // usually an *Error; nothing was stored for this request
}

// Accepted is the outcome of an Accept.
type Accepted struct {
	Results []Result // one per request, in order; nil when Replayed
	// Replayed: an earlier request with the same idempotency key was accepted; nothing new was
	// stored, and Status and Body are that request's answer.
	Replayed bool
	Status   int    // the answer made by AcceptParams.Answer (or replayed)
	Body     []byte // the answer made by AcceptParams.Answer (or replayed)
}

// Accept composes every request (concurrently, each on its own: a bad request fails alone) and
// stores the good ones in one transaction, with the idempotency record when there is a key.
// The error is for the whole call (the store failed, the key was used with another request);
// requests refused are in their Results.
func (s *Service) Accept(ctx context.Context, p AcceptParams) (Accepted, error) {
	out := Accepted{Results: make([]Result, len(p.Requests))}
	msgs := make([]store.NewMessage, len(p.Requests))
	cp := ComposeParams{Now: p.Now, APIKeyID: p.APIKeyID, SenderDomains: p.SenderDomains}
	cctx, deadline := ctx, time.Time{}
	if p.Budget > 0 {
		// A render compares the clock with the deadline itself, so the clock says when the
		// budget is over, not only the context, whose timer may fire a moment later.
		deadline = time.Now().Add(p.Budget)
		var cancel context.CancelFunc
		cctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	// A panic composing one request fails that request alone (a *fanout.Panic as its error).
	panics := fanout.Try(len(p.Requests), func(i int) error {
		var c Composed
		err := cctx.Err()
		if err == nil {
			c, err = s.Compose(cctx, &p.Requests[i], cp)
		}
		p.Requests[i] = Request{} // its strings may be large: free them as the batch goes
		if err != nil && p.Budget > 0 && ctx.Err() == nil && !time.Now().Before(deadline) {
			err = overBudget(p.Budget)
		}
		if err != nil {
			out.Results[i] = Result{Err: err}
			return nil
		}
		msgs[i] = c.NewMessage
		out.Results[i] = Result{ID: c.Message.ID, Status: c.Message.Status, Warnings: c.Warnings}
		return nil
	})
	for i, err := range panics {
		if err != nil {
			out.Results[i] = Result{Err: err}
		}
	}
	good := msgs[:0]
	for i := range msgs {
		if out.Results[i].Err == nil {
			good = append(good, msgs[i])
		}
	}
	if p.Answer != nil {
		out.Status, out.Body = p.Answer(out.Results)
	}
	res, err := s.Store(ctx, StoreParams{Messages: good, APIKeyID: p.APIKeyID, Now: p.Now,
		Idempotency: p.Idempotency, Status: out.Status, Body: out.Body})
	if err != nil {
		return Accepted{}, err
	}
	if res.Replayed {
		return Accepted{Replayed: true, Status: res.StatusCode, Body: res.Response}, nil
	}
	return out, nil
}

// overBudget is the Error of a request not composed within the budget of its Accept.
func overBudget(budget time.Duration) error {
	return &Error{Kind: KindUnavailable, Problems: []Problem{{Message: fmt.Sprintf("the batch used up its %s for rendering before this item was done; nothing was stored for it: send it again, in a smaller batch", budget)}}}
}

// StoreParams are composed messages to write as one group.
type StoreParams struct {
	Messages    []store.NewMessage
	APIKeyID    string
	Now         time.Time
	Idempotency Idempotency
	Status      int    // the answer kept for a repeat with the idempotency key
	Body        []byte // the answer kept for a repeat with the idempotency key
}

// Store writes composed messages (possibly none) in one transaction, with the idempotency
// record when there is a key; with a key already used, it returns the stored answer (Replayed)
// or a KindConflict *Error. Callers that compose themselves, e.g. a campaign chunk, write
// through it.
func (s *Service) Store(ctx context.Context, p StoreParams) (store.MessagesAcceptResult, error) {
	ap := store.MessagesAcceptParams{Messages: p.Messages, Now: p.Now}
	if key := strings.TrimSpace(p.Idempotency.Key); key != "" {
		h := sha256.New()
		h.Write([]byte(p.Idempotency.Scope))
		h.Write([]byte{0})
		h.Write(p.Idempotency.Request)
		for i := range p.Messages {
			p.Messages[i].Message.IdempotencyKey = key
		}
		ap.Idempotency = &store.Idempotency{
			APIKeyID: p.APIKeyID, Key: key, RequestHash: h.Sum(nil), StatusCode: p.Status, Response: p.Body,
			CreatedAt: p.Now, ExpiresAt: p.Now.Add(idempotencyTTL),
		}
	} else if len(p.Messages) == 0 {
		return store.MessagesAcceptResult{}, nil
	}
	res, err := s.cfg.Store.MessagesAccept(ctx, ap)
	if err != nil {
		return store.MessagesAcceptResult{}, failure(err, "message")
	}
	if !res.Replayed && s.cfg.Metrics != nil {
		for _, m := range p.Messages {
			s.cfg.Metrics.Messages(m.Message.Stream, "", metrics.Accepted, 1)
		}
	}
	return res, nil
}
