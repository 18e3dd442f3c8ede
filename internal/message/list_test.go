package message_test

import (
	"slices"
	"testing"

	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// A broadcast message may name its list, which is stored with it; a transactional one may not,
// and a list id must look like one.
func TestListID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req := hello("ann@example.com")
	req.Stream, req.ListID = store.StreamBroadcast, "lst_01jd8x"
	res := b.accept(t, req)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if m, err := b.store.MessageGet(t.Context(), res.ID); err != nil || m.ListID != "lst_01jd8x" {
		t.Errorf("stored list %q, %v", m.ListID, err)
	}
	for _, tc := range []struct{ stream, list string }{
		{"", "lst_01jd8x"},
		{store.StreamTransactional, "lst_01jd8x"},
		{store.StreamBroadcast, "news"},
		{store.StreamBroadcast, "lst_a b"},
	} {
		req := hello("ann@example.com")
		req.Stream, req.ListID = tc.stream, tc.list
		res := b.accept(t, req)
		if kind, probs := problemsOf(t, res.Err); kind != message.KindInvalid || !slices.ContainsFunc(probs, func(p string) bool {
			return len(p) > 8 && p[:8] == "list_id:"
		}) {
			t.Errorf("stream %q list %q: %v %v, want a problem at list_id", tc.stream, tc.list, kind, probs)
		}
	}
}
