package id

import (
	"sort"
	"strings"
	"testing"
	"time"
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

func TestTime(t *testing.T) {
	t.Parallel()
	before := time.Now().Truncate(time.Millisecond)
	s := New(Message)
	after := time.Now()
	got, ok := Time(s)
	if !ok || got.Before(before) || got.After(after) {
		t.Errorf("Time(%s) = %v, %v; want between %v and %v", s, got, ok, before, after)
	}
	for _, bad := range []string{"", "msg_", "msg_01jd8x", "msg_" + strings.Repeat("u", 26)} {
		if _, ok := Time(bad); ok {
			t.Errorf("Time(%q) ok", bad)
		}
	}
}
