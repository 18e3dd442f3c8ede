package inflight_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postie/postie/internal/inflight"
)

// TestBudget: what is taken is at most the whole budget; a request finding no room waits, then
// is ErrBusy (or its context's error); what is given back is there again.
func TestBudget(t *testing.T) {
	t.Parallel()
	b := inflight.New(100, 10*time.Millisecond)
	if got, err := b.Acquire(t.Context(), 250); err != nil || got != 100 {
		t.Fatalf("Acquire(250) = %d, %v; want the whole budget, 100", got, err)
	}
	if _, err := b.Acquire(t.Context(), 1); !errors.Is(err, inflight.ErrBusy) {
		t.Errorf("Acquire with the budget spent: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Acquire(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire with a cancelled context: %v, want context.Canceled", err)
	}
	b.Release(60)
	if got, err := b.Acquire(t.Context(), 60); err != nil || got != 60 {
		t.Errorf("Acquire(60) after Release(60) = %d, %v", got, err)
	}
	b.Release(100)
	b.Release(0)
	if !b.TryAcquire(100) || b.Size() != 100 || b.Wait() != 10*time.Millisecond {
		t.Error("the budget is not whole again")
	}
}
