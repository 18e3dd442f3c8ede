package postgres

import (
	"time"

	"github.com/postie/postie/internal/store"
)

// ClaimAtAccept implements store.AcceptClaims: an accept stores the due queued messages this
// node's receiver has room for as a claim leaves them (sending, leased to it) in the accept's own
// INSERT, and hands them over with their MIME once committed. Other nodes' claims skip them as
// any leased row; a node that dies with them leaves leases that MessageRescue requeues.
func (s *Store) ClaimAtAccept(stream string, r store.AcceptReceiver) (stop func()) {
	return s.recv.ClaimAtAccept(stream, r)
}

// roundTrip is t as stored in a timestamptz and read back: whole microseconds, UTC.
func roundTrip(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}
