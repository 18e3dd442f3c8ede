package notify_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/postie/postie/internal/notify"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/sqlite/sqlitetest"
)

// BenchmarkEventToMessage measures an event's way into a stored message on SQLite: accepted
// in groups of 100 (each naming its contact, matching one trigger), then its action claimed,
// composed and finished. Profile it with -cpuprofile; postie bench measures the whole binary.
func BenchmarkEventToMessage(b *testing.B) {
	bu := setup(b, sqlitetest.Open(b))
	if _, err := bu.svc.CreateTrigger(b.Context(), notify.TriggerInput{Name: ptr("t"), Event: ptr("order.paid"),
		Template: ptr("order"), To: &store.TriggerTo{Contact: true}}); err != nil {
		b.Fatal(err)
	}
	const group = 100
	evs := make([]notify.EventInput, group)
	n := 0
	for b.Loop() {
		for i := range evs {
			n++
			evs[i] = notify.EventInput{Name: "order.paid", Contact: &notify.ContactInput{Email: fmt.Sprintf("c%d@example.com", n%5000)},
				Data: json.RawMessage(fmt.Sprintf(`{"order": {"id": "A-%d", "total": 12.5}}`, n))}
		}
		if _, err := bu.svc.Accept(b.Context(), evs, "key_1"); err != nil {
			b.Fatal(err)
		}
		for {
			k, err := bu.svc.Tick(b.Context(), bu.clock.Now())
			if err != nil {
				b.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
	}
	b.ReportMetric(float64(b.N*group)/b.Elapsed().Seconds(), "events/s")
}
