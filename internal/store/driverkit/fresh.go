package driverkit

import (
	"sync"

	"github.com/postie/postie/internal/store"
)

// FreshMIME holds the MIME of messages a store has just accepted, until its own claim takes them,
// so that a claim of what this node committed moments ago need not read those bodies back from
// the database. It is a copy of what is durable, never the only one: a message it does not hold
// (accepted by another node, before a restart, evicted, or claimed once already) is read from
// the database as before. A message's MIME never changes after acceptance, which is what makes
// the copy safe to hand out.
//
// Only queued transactional messages are kept (a broadcast backlog or a scheduled message would
// wait long and evict the ones about to be claimed), up to a byte budget: the oldest go first.
// Safe for concurrent use.
type FreshMIME struct {
	mu     sync.Mutex
	budget int
	size   int
	raw    map[string][]byte
	order  []string // ids in the order they were put; some may have been taken since
}

// FreshMIMEBudget is the MIME a driver keeps from acceptance to claim: about 2,000 messages of
// 8 KB, more than a node accepts between a commit and the claim that follows it.
const FreshMIMEBudget = 16 << 20

// freshMaxMessage is the largest MIME FreshMIME keeps.
const freshMaxMessage = 256 << 10

// NewFreshMIME returns a FreshMIME holding at most budget bytes of MIME.
func NewFreshMIME(budget int) *FreshMIME {
	return &FreshMIME{budget: budget, raw: make(map[string][]byte)}
}

// PutAccepted keeps a copy of the MIME of the messages of an accept that was committed.
func (f *FreshMIME) PutAccepted(msgs []store.NewMessage) {
	if f == nil {
		return
	}
	for i := range msgs {
		m := &msgs[i]
		if m.Message.Stream != store.StreamTransactional || m.Message.Status != store.StatusQueued ||
			len(m.Raw) > freshMaxMessage || len(m.Raw) > f.budget {
			continue
		}
		raw := append([]byte(nil), m.Raw...) // the caller's buffer is its own
		f.mu.Lock()
		if old, ok := f.raw[m.Message.ID]; ok {
			f.size -= len(old)
		}
		f.raw[m.Message.ID] = raw
		f.order = append(f.order, m.Message.ID)
		f.size += len(raw)
		f.evict()
		f.mu.Unlock()
	}
}

// evict drops the oldest entries until the budget holds; f.mu is held.
func (f *FreshMIME) evict() {
	n := 0
	for f.size > f.budget && n < len(f.order) {
		if raw, ok := f.raw[f.order[n]]; ok {
			f.size -= len(raw)
			delete(f.raw, f.order[n])
		}
		n++
	}
	// Also drop the ids of entries taken since: order would otherwise grow with every message
	// claimed before it was evicted.
	for n < len(f.order) {
		if _, ok := f.raw[f.order[n]]; ok {
			break
		}
		n++
	}
	if n > 0 {
		f.order = append(f.order[:0], f.order[n:]...)
	}
	if len(f.order) > 2*len(f.raw)+64 { // many taken out of order: rebuild
		kept := f.order[:0]
		for _, id := range f.order {
			if _, ok := f.raw[id]; ok {
				kept = append(kept, id)
			}
		}
		f.order = kept
	}
}

// Has reports whether every one of ids is held.
func (f *FreshMIME) Has(ids []string) bool {
	if f == nil || len(ids) == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if _, ok := f.raw[id]; !ok {
			return false
		}
	}
	return true
}

// Take returns the MIME of id and forgets it, or nil when it is not held.
func (f *FreshMIME) Take(id string) []byte {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, ok := f.raw[id]
	if !ok {
		return nil
	}
	delete(f.raw, id)
	f.size -= len(raw)
	f.evict()
	return raw
}
