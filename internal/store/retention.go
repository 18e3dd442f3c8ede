package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// # Retention
//
// Data past its retention goes in small batches, each one short transaction that deletes all of
// what it selected or nothing: a message's body (message_raw) some time after the message
// finished, the message itself (row, recipients, timeline) later, received reports and their
// bookkeeping on their own clock. A message is finished in a FinishedStatuses state; its
// updated_at (its last state change) is when it finished, and a later change (a bounce after
// sent) restarts its clock. A message still to be sent (scheduled, queued, sending, deferred)
// is never purged. Each purge reads the front of an index of what is due (migration 00017), so
// it never scans the history. Purges report nothing to webhooks.

// ErrBodyPurged: the message's body (its MIME) was purged by retention; its metadata and
// timeline are still there. The error is a *BodyPurgedError, which says when.
var ErrBodyPurged = errors.New("the message's body was purged")

// BodyPurgedError is returned by MessageRaw, MessageRawPart and MessageRetry for a message whose
// body was purged. errors.Is(err, ErrBodyPurged) holds.
type BodyPurgedError struct {
	ID string
	At time.Time // when the body was purged
}

func (e *BodyPurgedError) Error() string {
	return fmt.Sprintf("message %s: body purged at %s", e.ID, e.At.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrBodyPurged) hold.
func (e *BodyPurgedError) Is(target error) bool { return target == ErrBodyPurged }

// FinishedStatuses are the states of a message whose delivery is over: its body and later the
// message itself may be purged.
var FinishedStatuses = []Status{StatusSent, StatusFailed, StatusSuppressed, StatusCancelled,
	StatusBounced, StatusComplained, StatusPartiallyFailed}

// PurgeParams selects at most Limit items of one purge older than Before (for messages: finished
// before it), oldest first. Now is stamped where the purge records its time.
type PurgeParams struct {
	Before time.Time
	Limit  int
	Now    time.Time
}

// Retention is the purge of data past its retention. Each method is one transaction that
// purges at most p.Limit items and returns how many it purged; on error nothing was purged. A
// driver may purge fewer than p.Limit to keep the transaction short (SQLite bounds a batch by
// the rows and octets it deletes), so only 0 means that nothing more is due. A Limit of 0 or
// less purges nothing.
type Retention interface {
	// MessageBodyPurge deletes the MIME of messages finished before p.Before and stamps them
	// body purged at p.Now (BodyPurgedError from then on); their row, recipients and timeline
	// stay, and their finish time (updated_at) is unchanged.
	MessageBodyPurge(ctx context.Context, p PurgeParams) (int, error)
	// MessagePurge deletes messages finished before p.Before, with their body, recipients and
	// timeline (MessageGet answers ErrNotFound).
	MessagePurge(ctx context.Context, p PurgeParams) (int, error)
	// InboundPurge deletes the inbound entries, applied report keys and soft bounces received
	// before p.Before, and the delivery counts of hours that ended before it: at most p.Limit of
	// each, the total purged.
	InboundPurge(ctx context.Context, p PurgeParams) (int, error)
	// RetentionLock takes the purge lock without waiting: ok false when another holder (another
	// node on PostgreSQL, another caller on SQLite) has it. release gives it back; it is
	// released too when the holder's database session ends.
	RetentionLock(ctx context.Context) (release func(), ok bool, err error)
}
