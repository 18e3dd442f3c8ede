package id

import (
	"sort"
	"testing"
)

func TestNewSortsByCreation(t *testing.T) {
	t.Parallel()
	var ids []string
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		s := New(Message)
		if !Valid(Message, s) {
			t.Fatalf("New returned invalid id %q", s)
		}
		if seen[s] {
			t.Fatalf("duplicate id %q", s)
		}
		seen[s] = true
		ids = append(ids, s)
	}
	// UUIDv7 is monotonic within one process (the library's counter), so the
	// encoded strings must already be in order.
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids are not sorted by creation")
	}
	if Valid(Message, "msg_short") || Valid(APIKey, ids[0]) {
		t.Fatal("Valid accepted a malformed id")
	}
}
