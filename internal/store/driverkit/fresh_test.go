package driverkit_test

import (
	"bytes"
	"testing"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

func freshMsg(id, stream string, status store.Status, raw string) store.NewMessage {
	return store.NewMessage{Message: store.Message{ID: id, Stream: stream, Status: status}, Raw: []byte(raw)}
}

func TestFreshMIME(t *testing.T) {
	t.Parallel()
	f := driverkit.NewFreshMIME(10)
	msgs := []store.NewMessage{
		freshMsg("a", store.StreamTransactional, store.StatusQueued, "aaaa"),
		freshMsg("b", store.StreamBroadcast, store.StatusQueued, "bb"),        // broadcast: not kept
		freshMsg("c", store.StreamTransactional, store.StatusScheduled, "cc"), // scheduled: not kept
		freshMsg("d", store.StreamTransactional, store.StatusQueued, "dddd"),
	}
	f.PutAccepted(msgs)
	msgs[0].Raw[0] = 'x' // the caller's buffer is its own
	if !f.Has([]string{"a", "d"}) || f.Has([]string{"a", "b"}) || f.Has([]string{"c"}) || f.Has(nil) {
		t.Fatal("Has: want a and d held, b and c not, and nothing for no ids")
	}
	if got := f.Take("a"); !bytes.Equal(got, []byte("aaaa")) {
		t.Errorf("Take(a) = %q, want aaaa", got)
	}
	if got := f.Take("a"); got != nil {
		t.Errorf("second Take(a) = %q, want nil: a claim takes it once", got)
	}
	// Over the budget of 10 bytes: the oldest (d) goes.
	f.PutAccepted([]store.NewMessage{
		freshMsg("e", store.StreamTransactional, store.StatusQueued, "eeee"),
		freshMsg("g", store.StreamTransactional, store.StatusQueued, "gggg"),
	})
	if f.Has([]string{"d"}) || !f.Has([]string{"e", "g"}) {
		t.Error("want d evicted, e and g held")
	}
	// Larger than the whole budget: not kept, nothing evicted for it.
	f.PutAccepted([]store.NewMessage{freshMsg("h", store.StreamTransactional, store.StatusQueued, "hhhhhhhhhhhh")})
	if f.Has([]string{"h"}) || !f.Has([]string{"e", "g"}) {
		t.Error("want h not kept, e and g still held")
	}
	var none *driverkit.FreshMIME
	none.PutAccepted(msgs)
	if none.Has([]string{"a"}) || none.Take("a") != nil {
		t.Error("a nil FreshMIME holds nothing")
	}
}
