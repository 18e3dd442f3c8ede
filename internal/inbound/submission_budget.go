package inbound

import (
	"context"
	"errors"
	"io"

	"github.com/postie/postie/internal/inflight"
)

// Bounding the memory of the messages being received: a message is read into memory whole (it
// is stored as one value), so the octets of the messages in flight at once are taken from a
// budget (package inflight, shared with the HTTP API's request bodies). A message takes what
// it has read from the budget as it reads, in steps, once it is over smallMessage (smaller ones
// are bounded by the number of connections), and gives it back when it has been answered. One
// that finds the budget spent waits for room a short while, then is refused with 452 4.3.1
// (the client sends it again later).
const (
	smallMessage = 64 << 10
	budgetStep   = 1 << 20
)

// errBusy is a message refused for want of room in the budget.
var errBusy = reply(452, 4, 3, 1, "The server is receiving as many large messages as its memory allows: try again later")

// readMessage reads r to its end within the budget b. It returns the octets and what it took
// from the budget, to be given back with b.Release; errBusy when it waited in vain for room, or
// the reader's error. Whatever it fails with, it has given back what it took.
func readMessage(ctx context.Context, b *inflight.Budget, r io.Reader, sizeHint int64) (data []byte, taken int64, err error) {
	data = make([]byte, 0, min(max(sizeHint, 4096), smallMessage)+512)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)] // room to read into
		}
		n, err := r.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if l := int64(len(data)); l > smallMessage && l > taken && taken < b.Size() {
			got, err := b.Acquire(ctx, min((l-taken+budgetStep-1)/budgetStep*budgetStep, b.Size()-taken))
			if err != nil {
				b.Release(taken)
				if errors.Is(err, inflight.ErrBusy) {
					return nil, 0, errBusy
				}
				return nil, 0, err
			}
			taken += got
		}
		if errors.Is(err, io.EOF) {
			return data, taken, nil
		}
		if err != nil {
			b.Release(taken)
			return nil, 0, err
		}
	}
}
