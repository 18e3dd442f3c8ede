package sqlite

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// BenchmarkContactsUpsert1000 measures batches of 1,000 new contacts with a few attributes, as
// POST /v1/contacts/batch writes them; each op is one batch.
func BenchmarkContactsUpsert1000(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	n := 0
	for b.Loop() {
		items := make([]store.ContactUpsert, 1000)
		for i := range items {
			n++
			email := fmt.Sprintf("user%d@example.com", n)
			name := "User"
			items[i] = store.ContactUpsert{Email: email, EmailKey: email, Name: &name,
				Attributes: json.RawMessage(`{"plan":"pro","seats":3,"country":"FR"}`), LastActiveAt: now}
		}
		if _, err := s.ContactsUpsert(b.Context(), store.ContactsUpsertParams{Items: items, Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "contacts/s")
}
