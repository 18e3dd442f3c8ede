package store

import (
	"context"
	"time"
)

// Secrets is the database's small store of node-shared secrets: values generated once (the
// signing key of unsubscribe links when POSTIE_SECRET_KEY is unset, the key of erased
// addresses) and then shared by every node and every restore of the database.
type Secrets interface {
	// SecretGetOrCreate returns the value stored under name, storing value first when there is
	// none. Concurrent callers (two nodes starting at once) all get the one value stored first;
	// a value already stored is never replaced.
	SecretGetOrCreate(ctx context.Context, name string, value []byte, now time.Time) ([]byte, error)
}
