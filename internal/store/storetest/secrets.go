package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/postie/postie/internal/store"
)

// testSecrets: the first value stored under a name is kept and returned to every later or
// concurrent caller; names are independent.
func testSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	got, err := s.SecretGetOrCreate(ctx, "signing", []byte("first"), t0)
	if err != nil || string(got) != "first" {
		t.Fatalf("SecretGetOrCreate(new) = %q, %v; want first", got, err)
	}
	got, err = s.SecretGetOrCreate(ctx, "signing", []byte("second"), t0.Add(1))
	if err != nil || string(got) != "first" {
		t.Fatalf("SecretGetOrCreate(existing) = %q, %v; want the stored first", got, err)
	}
	bin := []byte{0, 0xff, 0x80, 0}
	if got, err := s.SecretGetOrCreate(ctx, "binary", bin, t0); err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("SecretGetOrCreate(binary) = %x, %v", got, err)
	}

	// Nodes racing to create one secret all end up with the same value.
	const n = 8
	vals := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			vals[i], errs[i] = s.SecretGetOrCreate(ctx, "raced", fmt.Appendf(nil, "node-%d", i), t0)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("racing SecretGetOrCreate %d: %v", i, errs[i])
		}
		if !bytes.Equal(vals[i], vals[0]) {
			t.Errorf("racing SecretGetOrCreate: %q and %q; want one value", vals[0], vals[i])
		}
	}
}
