package message

import (
	"context"
	"errors"

	"github.com/postie/postie/internal/store"
)

// Kind classifies an Error for the caller, who words it for its protocol.
type Kind int

// The kinds of Error.
const (
	// KindInvalid: the request is refused for the Problems named; nothing was stored.
	KindInvalid Kind = iota + 1
	// KindMalformed: the request could not be read at all (a caller's decoding failure).
	KindMalformed
	// KindTooLarge: the message built from the request is over the size limit.
	KindTooLarge
	// KindNotFound: something the request names does not exist.
	KindNotFound
	// KindConflict: the request conflicts with the stored state, e.g. an idempotency key used
	// with another request.
	KindConflict
	// KindUnavailable: the request could not be handled now (database unavailable, time budget
	// used up, cancelled); the same request may succeed later.
	KindUnavailable
	// KindInternal: a failure that is neither the request's nor temporary.
	KindInternal
	// KindForbidden: the request is well-formed but its sender may not make it (e.g. a From
	// domain its API key may not send from); nothing was stored.
	KindForbidden
)

// Problem is one thing wrong with a request.
type Problem struct {
	// Field is the path of the field at fault, relative to the request: "to[0]",
	// "headers.X-Order", "data/order/id", "attachments[2].content"; "" for the request as a
	// whole.
	Field   string
	Message string
	Value   any // the offending value, when showing it helps
}

// Error is a request refused or not handled. Either it lists Problems of the request, or it
// carries the underlying failure Err and the Subject it is about.
type Error struct {
	Kind     Kind
	Problems []Problem // in the order of the request's fields
	Subject  string    // what a failure without Problems is about, e.g. "template welcome"
	Err      error     // the underlying failure (a store or template error), if any
}

func (e *Error) Error() string {
	switch {
	case len(e.Problems) == 1 && e.Problems[0].Field != "":
		return e.Problems[0].Field + ": " + e.Problems[0].Message
	case len(e.Problems) == 1:
		return e.Problems[0].Message
	case len(e.Problems) > 1:
		return "validation failed"
	case e.Err != nil:
		return e.Subject + ": " + e.Err.Error()
	}
	return e.Subject
}

func (e *Error) Unwrap() error { return e.Err }

// failure wraps an error that is not the request's (a store or template failure) about subject.
func failure(err error, subject string) *Error {
	return &Error{Kind: kindOf(err), Subject: subject, Err: err}
}

// Failure is failure for the services beside message (webhook, …) that report their store
// failures as an *Error, classified as the message service's are.
func Failure(err error, subject string) *Error { return failure(err, subject) }

// kindOf classifies a store error.
func kindOf(err error) Kind {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return KindNotFound
	case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrIdempotencyMismatch):
		return KindConflict
	case errors.Is(err, store.ErrBadText):
		return KindInvalid
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindUnavailable
	}
	return KindInternal
}

// problems collects the Problems of one request.
type problems struct {
	kind Kind // KindInvalid unless something raises it
	list []Problem
}

func (p *problems) add(field, msg string, value any) {
	p.list = append(p.list, Problem{Field: field, Message: msg, Value: value})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	k := p.kind
	if k == 0 {
		k = KindInvalid
	}
	return &Error{Kind: k, Problems: p.list}
}
