package inbound

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/postie/postie/internal/inflight"
)

// TestBudget: a small message takes nothing; a large one takes what it read (at most the whole
// budget), and another large one waits for room, is refused when there is none in time, and
// is read once the first has given its share back.
func TestBudget(t *testing.T) {
	t.Parallel()
	b := inflight.New(200<<10, 10*time.Millisecond)
	small := bytes.Repeat([]byte("s"), smallMessage)
	large := bytes.Repeat([]byte("l"), 150<<10)
	data, taken, err := readMessage(t.Context(), b, bytes.NewReader(small), 0)
	if err != nil || taken != 0 || !bytes.Equal(data, small) {
		t.Fatalf("small message: %d octets, took %d, %v", len(data), taken, err)
	}
	data, first, err := readMessage(t.Context(), b, bytes.NewReader(large), int64(len(large)))
	if err != nil || first != 200<<10 || !bytes.Equal(data, large) {
		t.Fatalf("large message: %d octets, took %d, %v", len(data), first, err)
	}
	if _, _, err := readMessage(t.Context(), b, bytes.NewReader(large), 0); !errors.Is(err, errBusy) {
		t.Fatalf("a second large message while the first holds the budget: %v, want errBusy", err)
	}
	if _, taken, err := readMessage(t.Context(), b, bytes.NewReader(small), 0); err != nil || taken != 0 {
		t.Fatalf("a small message meanwhile: took %d, %v", taken, err)
	}
	b.Release(first)
	data, taken, err = readMessage(t.Context(), b, bytes.NewReader(large), 0)
	if err != nil || taken != 200<<10 || !bytes.Equal(data, large) {
		t.Fatalf("the second large message after the first: %d octets, took %d, %v", len(data), taken, err)
	}
	b.Release(taken)
	if !b.TryAcquire(200 << 10) {
		t.Error("the budget is not whole again")
	}
}
