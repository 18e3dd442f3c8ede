package sqlite

import (
	"slices"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
)

// receivers are the store.AcceptReceiver of each stream (store.AcceptClaims).
type receivers struct {
	mu sync.RWMutex
	by map[string]store.AcceptReceiver
}

// ClaimAtAccept implements store.AcceptClaims.
func (s *Store) ClaimAtAccept(stream string, r store.AcceptReceiver) (stop func()) {
	s.recv.mu.Lock()
	defer s.recv.mu.Unlock()
	if s.recv.by == nil {
		s.recv.by = map[string]store.AcceptReceiver{}
	}
	s.recv.by[stream] = r
	return func() {
		s.recv.mu.Lock()
		defer s.recv.mu.Unlock()
		if s.recv.by[stream] == r {
			delete(s.recv.by, stream)
		}
	}
}

// handOff is what one MessagesAccept claims at accept: for each receiver, the room it reserved
// and the messages that fill it.
type handOff []handOffPart

type handOffPart struct {
	r       store.AcceptReceiver
	claimed []store.ClaimedMessage
}

// claimAtAccept stamps a lease on the due queued messages among msgs (prepared by
// driverkit.PrepareAccept) that their stream's receiver has room for, turning them into claimed
// ones (status sending), and returns them for deliver or unreserve. raw[i] is msgs[i]'s MIME.
func (s *Store) claimAtAccept(msgs []store.Message, raw [][]byte, now time.Time) handOff {
	s.recv.mu.RLock()
	defer s.recv.mu.RUnlock()
	if len(s.recv.by) == 0 {
		return nil
	}
	var out handOff
	due := func(m *store.Message) bool {
		return m.Status == store.StatusQueued && !m.NextAttemptAt.After(now)
	}
	for stream, r := range s.recv.by {
		n := 0
		for i := range msgs {
			if msgs[i].Stream == stream && due(&msgs[i]) {
				n++
			}
		}
		if n == 0 {
			continue
		}
		took, lease := r.Reserve(n)
		if took <= 0 {
			continue
		}
		part := handOffPart{r: r, claimed: make([]store.ClaimedMessage, 0, took)}
		for i := range msgs {
			m := &msgs[i]
			if len(part.claimed) == took {
				break
			}
			if m.Stream != stream || !due(m) {
				continue
			}
			// As MessageClaim leaves the row, and as it would read it back (times to the
			// microsecond, in UTC).
			m.Status, m.LeaseOwner, m.LeaseUntil, m.UpdatedAt = store.StatusSending, lease.Owner, lease.Until, now
			part.claimed = append(part.claimed, store.ClaimedMessage{
				ID: m.ID, Stream: m.Stream, ListID: m.ListID, EnvelopeFrom: m.EnvelopeFrom,
				Recipients: slices.Clone(m.Recipients), Attempts: m.Attempts, MaxAttempts: m.MaxAttempts,
				NextAttemptAt: roundTrip(m.NextAttemptAt), ExpiresAt: roundTrip(m.ExpiresAt),
				LastError: m.LastError, Raw: nonNil(raw[i]),
			})
		}
		// took > n would be the receiver's mistake; give back what no message fills.
		if extra := took - len(part.claimed); extra > 0 {
			r.Unreserve(extra)
		}
		out = append(out, part)
	}
	return out
}

// deliver hands the claimed messages to their receivers, once the accept has committed.
func (h handOff) deliver() {
	for _, p := range h {
		p.r.Receive(p.claimed)
	}
}

// unreserve gives the room back, when the accept stored nothing (failed or replayed).
func (h handOff) unreserve() {
	for _, p := range h {
		p.r.Unreserve(len(p.claimed))
	}
}

// roundTrip is t as stored and read back: microseconds, UTC.
func roundTrip(t time.Time) time.Time {
	return fromMicros(micros(t))
}
