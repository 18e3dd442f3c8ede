package delivery

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/postie/postie/internal/devtools/smtpsink"
	"github.com/postie/postie/internal/devtools/smtpsink/sinktest"
	"github.com/postie/postie/internal/store"
)

// TestSuppressionScopesAtDelivery: through a real SMTP relay, a transactional message is
// stopped only by global suppressions (an erased person's included); a broadcast message by
// global, broadcast and its own list's suppressions, not another list's.
func TestSuppressionScopesAtDelivery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := b.clock.Now()
	erasedKey := func(email string) string { return "erased:" + email + ":hmac" }
	if err := b.store.SuppressionUpsert(context.Background(), []store.Suppression{
		{Email: "bounced@example.com", Reason: store.ReasonHardBounce, CreatedAt: now},
		{Email: "all@example.com", Scope: store.ScopeBroadcast, Reason: store.ReasonUnsubscribe, CreatedAt: now},
		{Email: "news@example.com", Scope: "lst_news", Reason: store.ReasonUnsubscribe, CreatedAt: now},
		{Email: erasedKey("erased@example.com"), Reason: store.ReasonManual, CreatedAt: now},
	}); err != nil {
		t.Fatal(err)
	}
	sink := sinktest.Start(t, smtpsink.Options{Keep: true})
	e := b.engine(relayTransport(t, sink.URL(), nil), "node-a")
	e.cfg.ErasedKey = erasedKey
	stop := run(t, e)
	defer stop()

	for _, tc := range []struct {
		stream, list, to string
		want             store.Status
	}{
		{store.StreamTransactional, "", "bounced@example.com", store.StatusSuppressed},
		{store.StreamTransactional, "", "all@example.com", store.StatusSent},
		{store.StreamTransactional, "", "news@example.com", store.StatusSent},
		{store.StreamTransactional, "", "Erased@Example.com", store.StatusSuppressed},
		{store.StreamBroadcast, "", "bounced@example.com", store.StatusSuppressed},
		{store.StreamBroadcast, "", "all@example.com", store.StatusSuppressed},
		{store.StreamBroadcast, "lst_news", "all@example.com", store.StatusSuppressed},
		{store.StreamBroadcast, "lst_news", "news@example.com", store.StatusSuppressed},
		{store.StreamBroadcast, "lst_other", "news@example.com", store.StatusSent},
		{store.StreamBroadcast, "", "news@example.com", store.StatusSent},
		{store.StreamBroadcast, "lst_news", "erased@example.com", store.StatusSuppressed},
		{store.StreamBroadcast, "lst_news", "fine@example.com", store.StatusSent},
	} {
		msg := b.insertWith(t, tc.stream, time.Time{}, func(m *store.Message) { m.ListID = tc.list }, tc.to)
		if m := b.waitFor(t, msg, string(tc.want), func(m store.Message) bool {
			return m.Status != store.StatusQueued && m.Status != store.StatusSending
		}); m.Status != tc.want {
			t.Errorf("%s message (list %q) to %s: %s, want %s", tc.stream, tc.list, tc.to, m.Status, tc.want)
		}
	}
	var delivered []string
	for _, m := range sink.Messages() {
		delivered = append(delivered, m.To...)
	}
	slices.Sort(delivered)
	want := []string{"all@example.com", "fine@example.com", "news@example.com", "news@example.com", "news@example.com"}
	if !slices.Equal(delivered, want) {
		t.Errorf("the relay got %v, want %v", delivered, want)
	}
}
