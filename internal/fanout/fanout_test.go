package fanout

import (
	"errors"
	"sync/atomic"
	"testing"
)

func TestTryPanicFailsItsItemAlone(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 17} {
		var ran atomic.Int64
		errs := Try(n, func(i int) error {
			ran.Add(1)
			if i == 0 {
				panic("boom")
			}
			return nil
		})
		var p *Panic
		if len(errs) != n || !errors.As(errs[0], &p) || p.Value != "boom" || len(p.Stack) == 0 {
			t.Fatalf("n=%d: errs[0] = %v, want the recovered panic with its stack", n, errs[0])
		}
		for i, err := range errs[1:] {
			if err != nil {
				t.Errorf("n=%d: errs[%d] = %v, want nil", n, i+1, err)
			}
		}
		if ran.Load() != int64(n) {
			t.Errorf("n=%d: %d calls ran, want all", n, ran.Load())
		}
	}
}

func TestTryErrors(t *testing.T) {
	t.Parallel()
	bad := errors.New("bad")
	errs := Try(2, func(i int) error {
		if i == 1 {
			return bad
		}
		return nil
	})
	if errs[0] != nil || !errors.Is(errs[1], bad) {
		t.Errorf("errs = %v, want [nil bad]", errs)
	}
}

// A panic in a worker goroutine comes back on the caller's, where its recovery can take it.
func TestEachPanicsOnCaller(t *testing.T) {
	t.Parallel()
	var ran atomic.Int64
	v := func() (v any) {
		defer func() { v = recover() }()
		Each(2, func(i int) {
			ran.Add(1)
			if i == 1 {
				panic("boom")
			}
		})
		return nil
	}()
	p, ok := v.(*Panic)
	if !ok || p.Value != "boom" {
		t.Fatalf("recovered %v, want a *Panic of boom", v)
	}
	if ran.Load() != 2 {
		t.Errorf("%d calls ran, want 2", ran.Load())
	}
}
