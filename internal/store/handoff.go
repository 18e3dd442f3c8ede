package store

import "time"

// AcceptClaims is implemented by a driver that can claim messages in the transaction that
// accepts them, and hand them to this node's delivery engine straight from the accept, with the
// MIME the accept already holds: no claim statement, no read of the rows back. The SQLite driver
// implements it (one process both accepts and delivers); PostgreSQL does not, and delivery
// claims every message there. Delivery detects it with a type assertion on its MessageQueue.
//
// A message handed off is stored as a claim would leave it (status sending, leased to the
// receiver's owner until its lease's end, attempts unchanged) and commits durably with its
// accept, so everything else holds as for a claimed message: the owner renews and finishes it,
// releases it at shutdown, and a lease that runs out (the process died) is rescued. Its timeline
// reads as any other's: claims record no event. Only queued messages already due are handed off,
// never more than the receiver reserved room for.
type AcceptClaims interface {
	// ClaimAtAccept registers r to be offered stream's due messages as they are accepted, in
	// place of any receiver registered before, until stop is called (or another receiver is
	// registered). After stop returns, the driver calls r only for reservations it already
	// holds (Receive or Unreserve).
	ClaimAtAccept(stream string, r AcceptReceiver) (stop func())
}

// AcceptReceiver is the delivery side of AcceptClaims. Its methods must not block: the driver
// calls them on an accepting request's path.
type AcceptReceiver interface {
	// Reserve takes room for up to n messages, without waiting, and returns how many it took
	// (0: claim none, leave them queued for a claim) and the lease to stamp on them. Every
	// message reserved is then either handed over with Receive or given back with Unreserve.
	Reserve(n int) (took int, lease AcceptLease)
	// Receive hands over messages reserved for, committed as leased to the receiver, in the
	// order they were accepted. The receiver owns them as if it had claimed them.
	Receive(claimed []ClaimedMessage)
	// Unreserve gives back room for n messages reserved but not handed over (the accept failed
	// or was a replay). Of an accept whose commit's fate is unknown, the messages may be stored
	// leased: their lease then runs out and they are rescued.
	Unreserve(n int)
}

// AcceptLease is the lease an AcceptReceiver's messages are stored with.
type AcceptLease struct {
	Owner string
	Until time.Time
}
