package store

import (
	"encoding/json"
	"time"
)

// EventDetail is the detail of a timeline event (Event.Detail holds it as JSON). One type serves
// every event type, each of which sets the fields below it names; the rest are left out of the
// JSON. It is what the API shows and what webhooks will send, so its JSON names are a contract:
// add fields, never rename them.
//
//	queued, scheduled  (no detail)
//	sent               transport, response, provider_id, attempt, recipients (those it was sent to)
//	deferred           transport, error, class, attempt (absent when the attempt was not counted:
//	                   the relay could not be reached), attempt_counted (false then),
//	                   next_attempt_at, possible_duplicate, recipients (each with its error)
//	failed             transport, error, class, attempt, reason ("attempts exhausted", "expired",
//	                   …), possible_duplicate, recipients (each with its error, and suppressed when
//	                   the failure suppressed the address)
//	suppressed         recipients (each with the suppression's reason), dropped before the send
//	cancelled          recipients (those still to be sent to; absent when all were)
//	retried            attempts (made before the retry), recipients (those queued again; absent
//	                   when all were)
//	lease_expired,
//	released           owner (the lease owner that held the message)
//
// Rejected and Suppressed are only in events written before each recipient had its own state.
type EventDetail struct {
	Transport  string         `json:"transport,omitempty" doc:"the transport that made the attempt (smtp, capture, …)"`
	Response   string         `json:"response,omitempty" doc:"the relay's final reply to an accepted message"`
	ProviderID string         `json:"provider_id,omitempty" doc:"the relay's queue id or the provider's message id"`
	Attempt    int            `json:"attempt,omitempty" doc:"which attempt this was (1-based)"`
	Error      *DeliveryError `json:"error,omitempty" doc:"the reason of a deferral or failure (the first recipient's when several)"`
	Class      string         `json:"class,omitempty" enum:"temporary,permanent,throttle,unreachable" doc:"how the error was classified"`
	// AttemptCounted is false when the attempt did not count against the message's attempts.
	AttemptCounted    *bool            `json:"attempt_counted,omitempty" doc:"false when the attempt did not count (the relay could not be reached)"`
	NextAttemptAt     *time.Time       `json:"next_attempt_at,omitempty" doc:"when the deferred recipients are tried again"`
	PossibleDuplicate bool             `json:"possible_duplicate,omitempty" doc:"the connection was lost after the whole message was sent: the relay may have queued it, and the next attempt may duplicate it"`
	Reason            string           `json:"reason,omitempty" doc:"why the message failed without a permanent reply"`
	Recipients        []EventRecipient `json:"recipients,omitempty" doc:"the recipients the event concerns"`
	Owner             string           `json:"owner,omitempty" doc:"the lease owner that held the message (lease_expired, released)"`
	Attempts          *int             `json:"attempts,omitempty" doc:"attempts made before a retry"`
	Rejected          []EventRecipient `json:"rejected,omitempty" doc:"recipients refused one by one (events of earlier versions)"`
	Suppressed        []string         `json:"suppressed,omitempty" doc:"addresses suppressed by this outcome (events of earlier versions)"`
	Report            *ReportDetail    `json:"report,omitempty" doc:"what a bounce, complaint or other report said (bounced, complained, delivered, delayed, auto_reply, feedback)"`
}

// EventRecipient is one recipient an event concerns, with what happened to it.
type EventRecipient struct {
	Recipient  string         `json:"recipient" doc:"the address as the message was sent to it"`
	Error      *DeliveryError `json:"error,omitempty" doc:"why it was deferred or failed"`
	Suppressed bool           `json:"suppressed,omitempty" doc:"its failure suppressed the address (a hard bounce)"`
	Reason     string         `json:"reason,omitempty" doc:"the suppression's reason, for a recipient dropped as suppressed"`
}

// Recipients lists addresses as EventRecipients with nothing more to say.
func Recipients(addrs []string) []EventRecipient {
	out := make([]EventRecipient, len(addrs))
	for i, a := range addrs {
		out[i] = EventRecipient{Recipient: a}
	}
	return out
}

// NewEvent is an event of type typ at at with detail d (nil for none).
func NewEvent(typ string, at time.Time, d *EventDetail) Event {
	e := Event{Type: typ, At: at}
	if d != nil {
		// Marshalling a struct of strings, numbers, times and slices of them cannot fail.
		e.Detail, _ = json.Marshal(d)
	}
	return e
}

// DecodeDetail returns e's detail as an EventDetail, nil when e has none. A detail that is not a
// JSON object (which no version wrote) is an error.
func (e Event) DecodeDetail() (*EventDetail, error) {
	if len(e.Detail) == 0 || string(e.Detail) == "null" {
		return nil, nil
	}
	var d EventDetail
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
