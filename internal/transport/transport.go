// Package transport defines how postie hands a finished message to the outside world: the
// Transport interface, the Result of a send, and the classified Error every transport returns so
// the delivery engine can decide between retrying, failing and waiting.
package transport

import (
	"context"
	"errors"
	"fmt"
)

// Envelope is the SMTP envelope of one send.
type Envelope struct {
	MessageID string   // postie's message id, for logs and provider ids
	From      string   // MAIL FROM (bare address)
	To        []string // RCPT TO (bare addresses)
}

// RecipientError is a recipient the remote side refused while accepting the message for others.
type RecipientError struct {
	Recipient string
	Err       *Error
}

// Result describes an accepted message.
type Result struct {
	ProviderID string           // relay queue id or provider message id
	Response   string           // the final reply text, e.g. "250 2.0.0 Ok: queued as 1A2B"
	Rejected   []RecipientError // recipients refused individually (the others were accepted)
}

// Transport sends messages. Implementations are safe for concurrent use.
type Transport interface {
	// Name identifies the transport in logs and events ("capture", "smtp", "ses").
	Name() string
	// Send delivers raw (CRLF MIME, ready for DATA) to env. A non-nil error is an *Error (or
	// wraps one); unclassified errors are treated as temporary.
	Send(ctx context.Context, env Envelope, raw []byte) (Result, error)
	// Close releases connections.
	Close() error
}

// Class says what the engine should do about a failed send.
type Class int

const (
	// Temporary: try again later (4xx, connection lost after MAIL); consumes an attempt.
	Temporary Class = iota
	// Permanent: do not retry (5xx).
	Permanent
	// Throttle: the remote side asks us to slow down (421, rate limits); retry, the whole
	// transport backs off.
	Throttle
	// Unreachable: the relay could not be reached at all (refused, TLS/AUTH failure, timeout
	// before MAIL); the message waits without consuming an attempt.
	Unreachable
)

func (c Class) String() string {
	switch c {
	case Temporary:
		return "temporary"
	case Permanent:
		return "permanent"
	case Throttle:
		return "throttle"
	case Unreachable:
		return "unreachable"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Error is a classified delivery error with the remote reply when there was one.
type Error struct {
	Class    Class
	Code     int    // SMTP reply code, 0 when none
	Enhanced string // RFC 3463 code, e.g. "5.1.1"
	Text     string // reply text or local description (never credentials)
	Stage    string // connect, tls, auth, mail, rcpt, data, …
	Err      error  // underlying error, if any
}

func (e *Error) Error() string {
	s := e.Class.String()
	if e.Stage != "" {
		s += " at " + e.Stage
	}
	if e.Code != 0 {
		s += fmt.Sprintf(": %d", e.Code)
		if e.Enhanced != "" {
			s += " " + e.Enhanced
		}
	} else {
		s += ":"
	}
	return s + " " + e.Text
}

func (e *Error) Unwrap() error { return e.Err }

// Classify returns the *Error in err's chain, or wraps err as a Temporary error: an error nobody
// classified is retried, and attempts are capped.
func Classify(err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	return &Error{Class: Temporary, Text: err.Error(), Err: err}
}
