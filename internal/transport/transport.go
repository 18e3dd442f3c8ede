// Package transport defines how postie hands a finished message to the outside world: the
// Transport interface, the Result of a send, and the classified Error every transport returns so
// the delivery engine can decide between retrying, failing and waiting.
package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/mail"
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

	// Rejected lists each recipient's refusal when RCPT refused them all (the Error itself is
	// the first of them), so each can be judged on its own, e.g. for suppression.
	Rejected []RecipientError
	// MaybeDelivered: the connection was lost after the whole message was handed over, so the
	// relay may have queued it; a retry can make a duplicate (RFC 1047).
	MaybeDelivered bool
	// RetryAfter, when set on an Unreachable error, is how long the transport knows it will stay
	// unavailable (e.g. until a daily quota frees up).
	RetryAfter time.Duration
}

// HardBounce reports whether e says the recipient address itself is permanently bad, so it
// should be suppressed (email-rules §2.3 and §4.5): 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, 5.2.1
// (but not Gmail's "5.2.1 … receiving mail at a rate"), or a 5xx without an enhanced code whose
// text says the user is unknown. Policy blocks (5.7.x) and message failures never are.
func (e *Error) HardBounce() bool {
	if e == nil || e.Class != Permanent {
		return false
	}
	text := strings.ToLower(e.Text)
	switch e.Enhanced {
	case "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10":
		return true
	case "5.2.1":
		return !strings.Contains(text, "rate")
	case "":
		if e.Code < 500 || e.Code > 599 {
			return false
		}
		return mail.IsUserUnknown(text)
	}
	return false
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

// CleanText makes text a relay sent fit to store and show: invalid UTF-8 and control characters
// other than tab and LF (which joins the lines of a multi-line reply) become U+FFFD. A reply is
// the remote server's to choose, and PostgreSQL refuses U+0000 in text and JSON, so a NUL in a
// reply must never reach the store. Transports report texts as they got them; the delivery
// engine cleans them where they become store data.
func CleanText(s string) string {
	clean := utf8.ValidString(s)
	for i := 0; clean && i < len(s); i++ {
		clean = s[i] >= 0x20 && s[i] != 0x7f || s[i] == '\t' || s[i] == '\n'
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}
