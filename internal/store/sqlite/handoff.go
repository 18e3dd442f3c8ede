package sqlite

import (
	"time"

	"github.com/postie/postie/internal/store"
)

// ClaimAtAccept implements store.AcceptClaims.
func (s *Store) ClaimAtAccept(stream string, r store.AcceptReceiver) (stop func()) {
	return s.recv.ClaimAtAccept(stream, r)
}

// roundTrip is t as stored and read back: microseconds, UTC.
func roundTrip(t time.Time) time.Time {
	return fromMicros(micros(t))
}
