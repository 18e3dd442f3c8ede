package driverkit

import (
	"slices"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
)

// Receivers are the store.AcceptReceiver of each stream, for a driver implementing
// store.AcceptClaims. The zero value has none.
type Receivers struct {
	mu sync.RWMutex
	by map[string]store.AcceptReceiver
}

// ClaimAtAccept implements store.AcceptClaims.
func (rs *Receivers) ClaimAtAccept(stream string, r store.AcceptReceiver) (stop func()) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.by == nil {
		rs.by = map[string]store.AcceptReceiver{}
	}
	rs.by[stream] = r
	return func() {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		if rs.by[stream] == r {
			delete(rs.by, stream)
		}
	}
}

// HandOff is what one accept claims at accept: for each receiver, the room it reserved and the
// messages that fill it. After the accept, exactly one of Deliver (committed) or Unreserve (stored
// nothing: failed or replayed) is called.
type HandOff []handOffPart

type handOffPart struct {
	stream  string
	r       store.AcceptReceiver
	claimed []store.ClaimedMessage
}

// Claim stamps a lease on the due queued messages among msgs (prepared by PrepareAccept) that
// their stream's receiver has room for, turning them into claimed ones (status sending), and
// returns them for Deliver or Unreserve. raw[i] is msgs[i]'s MIME; stored is a time as the
// driver stores and reads it back, so that the messages are handed over as a claim would
// return them. The messages of a stream paused (store.Inbound.StreamPause) are left queued.
func (rs *Receivers) Claim(msgs []store.Message, raw [][]byte, now time.Time, stored func(time.Time) time.Time,
	paused func(stream string) bool) HandOff {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	if len(rs.by) == 0 {
		return nil
	}
	var out HandOff
	due := func(m *store.Message) bool {
		return m.Status == store.StatusQueued && !m.NextAttemptAt.After(now)
	}
	for stream, r := range rs.by {
		if paused(stream) {
			continue
		}
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
		part := handOffPart{stream: stream, r: r, claimed: make([]store.ClaimedMessage, 0, took)}
		for i := range msgs {
			m := &msgs[i]
			if len(part.claimed) == took {
				break
			}
			if m.Stream != stream || !due(m) {
				continue
			}
			// As a claim leaves the row, and as it would read it back.
			m.Status, m.LeaseOwner, m.LeaseUntil, m.UpdatedAt = store.StatusSending, lease.Owner, lease.Until, now
			rawi := raw[i]
			if rawi == nil {
				rawi = []byte{}
			}
			part.claimed = append(part.claimed, store.ClaimedMessage{
				ID: m.ID, Stream: m.Stream, ListID: m.ListID, EnvelopeFrom: m.EnvelopeFrom,
				Recipients: slices.Clone(m.Recipients), Attempts: m.Attempts, MaxAttempts: m.MaxAttempts,
				NextAttemptAt: stored(m.NextAttemptAt), ExpiresAt: stored(m.ExpiresAt),
				LastError: m.LastError, Raw: rawi,
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

// Deliver hands the claimed messages to their receivers, once the accept has committed.
func (h HandOff) Deliver() {
	for _, p := range h {
		p.r.Receive(p.claimed)
	}
}

// Without gives back the room of the messages of streams (which the accept stored queued after
// all: the driver found those streams paused when writing them) and returns the rest.
func (h HandOff) Without(streams []string) HandOff {
	if len(streams) == 0 {
		return h
	}
	out := h[:0:0]
	for _, p := range h {
		if slices.Contains(streams, p.stream) {
			p.r.Unreserve(len(p.claimed))
			continue
		}
		out = append(out, p)
	}
	return out
}

// Unreserve gives the room back, when the accept stored nothing (failed or replayed).
func (h HandOff) Unreserve() {
	for _, p := range h {
		p.r.Unreserve(len(p.claimed))
	}
}

// PrepareAccepts copies out the messages and MIME of a MessagesAccept call and prepares each
// message (PrepareAccept), so that Claim may change the copies the driver then stores.
func PrepareAccepts(p store.MessagesAcceptParams) ([]store.Message, [][]byte, error) {
	msgs, raws := make([]store.Message, len(p.Messages)), make([][]byte, len(p.Messages))
	for i := range p.Messages {
		msgs[i], raws[i] = p.Messages[i].Message, p.Messages[i].Raw
		if err := PrepareAccept(&msgs[i], i, p.Now); err != nil {
			return nil, nil, err
		}
	}
	return msgs, raws, nil
}
