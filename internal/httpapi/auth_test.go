package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/httpapi"
)

// revocationBound is how soon every node must refuse an API key revoked in the database.
const revocationBound = 5 * time.Second

// TestRevokedKeyRefusedWithinBound revokes a key in the store, as `postie keys revoke` or another
// node does (this server is not told), and checks that two servers on that store, each having
// checked the key at a different time, refuse it from revocationBound after the revocation on,
// while the other key goes on working.
func TestRevokedKeyRefusedWithinBound(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	var cfg httpapi.Config
	a := setup(t, func(c *httpapi.Config) {
		c.Now = func() time.Time { return time.Unix(0, clock.Load()).UTC() }
		cfg = *c
	})
	other := httptest.NewServer(httpapi.New(cfg)) // a second node on the same database
	t.Cleanup(other.Close)
	nodes := []*bundle{a, {t: t, srv: other, store: a.store}}
	get := func(b *bundle, key string) int {
		t.Helper()
		return b.do(http.MethodGet, "/v1/messages", nil, "Authorization", "Bearer "+key).status
	}
	advance := func(d time.Duration) { clock.Add(int64(d)) }

	if s := get(nodes[0], testKey); s != 200 { // node 0 checks the key at T
		t.Fatalf("before the revocation, node 0: %d", s)
	}
	advance(3 * time.Second)
	if s := get(nodes[1], testKey); s != 200 { // node 1 at T+3s, just before it is revoked
		t.Fatalf("before the revocation, node 1: %d", s)
	}
	if _, err := a.store.APIKeyRevoke(t.Context(), "key_0", time.Unix(0, clock.Load())); err != nil { // revoked at T+3s
		t.Fatal(err)
	}
	for i, n := range nodes { // either may still trust its check for a while: allowed, not asserted
		if s := get(n, testKey); s != 200 && s != 401 {
			t.Fatalf("node %d right after the revocation: %d", i, s)
		}
	}
	advance(revocationBound)
	for i, n := range nodes {
		for range 2 {
			if s := get(n, testKey); s != 401 {
				t.Fatalf("node %d, %v after the revocation: %d, want 401", i, revocationBound, s)
			}
		}
		if s := get(n, otherKey); s != 200 {
			t.Fatalf("node %d, the key not revoked: %d", i, s)
		}
	}
}
