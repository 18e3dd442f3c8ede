package delivery

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/postie/postie/internal/store"
)

// handoff takes a stream's messages claimed at accept (store.AcceptClaims) into the stream's
// local queue, as if its claimer had claimed them. It reserves room from the stream's slots,
// so with the claimer it never holds more than the queue's room, and only while the claimer
// has no backlog (older due messages go first, by claim) and the breaker is closed.
type handoff struct {
	e       *Engine
	slots   chan struct{} // the stream's room (runStream)
	backlog *atomic.Bool  // the claimer's last claim came back full
	in      chan store.ClaimedMessage

	mu      sync.Mutex
	closed  bool
	pending int        // reserved and neither received nor given back
	settled *sync.Cond // pending reached 0
}

func newHandoff(e *Engine, slots chan struct{}, backlog *atomic.Bool) *handoff {
	h := &handoff{e: e, slots: slots, backlog: backlog, in: make(chan store.ClaimedMessage, cap(slots))}
	h.settled = sync.NewCond(&h.mu)
	return h
}

// Reserve implements store.AcceptReceiver.
func (h *handoff) Reserve(n int) (int, store.AcceptLease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.backlog.Load() {
		return 0, store.AcceptLease{}
	}
	if _, open := h.e.breaker.openUntil(); open {
		return 0, store.AcceptLease{}
	}
	took := 0
take:
	for took < n {
		select {
		case <-h.slots:
			took++
		default:
			break take
		}
	}
	if took == 0 {
		return 0, store.AcceptLease{}
	}
	h.pending += took
	return took, store.AcceptLease{Owner: h.e.cfg.Owner, Until: h.e.cfg.Now().Add(h.e.cfg.Lease)}
}

// Receive implements store.AcceptReceiver. It never blocks: each message holds a slot, and in
// has room for every slot.
func (h *handoff) Receive(claimed []store.ClaimedMessage) {
	for _, c := range claimed {
		h.e.leases.add(c.ID)
		h.in <- c
	}
	h.settle(len(claimed))
}

// Unreserve implements store.AcceptReceiver.
func (h *handoff) Unreserve(n int) {
	for range n {
		h.slots <- struct{}{}
	}
	h.settle(n)
}

func (h *handoff) settle(n int) {
	h.mu.Lock()
	h.pending -= n
	if h.pending <= 0 {
		h.settled.Broadcast()
	}
	h.mu.Unlock()
}

// feed moves received messages to work, looking up the suppressions of whatever arrived
// together in one query, until close.
func (h *handoff) feed(ctx context.Context, work chan<- job) {
	batch := make([]store.ClaimedMessage, 0, cap(h.in))
	for first := range h.in {
		batch = append(batch[:0], first)
	more:
		for len(batch) < cap(batch) {
			select {
			case c, ok := <-h.in:
				if !ok {
					break more
				}
				batch = append(batch, c)
			default:
				break more
			}
		}
		for _, j := range h.e.jobs(ctx, batch, false) {
			work <- j // never blocks: work has room for every slot
		}
		clear(batch) // drop the MIME of messages handed on
	}
}

// close stops reserving, waits until every reservation is received or given back, and closes
// in, so that feed returns once it has handed on what was received.
func (h *handoff) close() {
	h.mu.Lock()
	h.closed = true
	for h.pending > 0 {
		h.settled.Wait()
	}
	h.mu.Unlock()
	close(h.in)
}
