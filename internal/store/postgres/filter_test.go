package postgres

import (
	"testing"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// TestSegments runs the segment cases over a fixture written with plain INSERTs into the
// audience tables (00007).
func TestSegments(t *testing.T) {
	t.Parallel()
	storetest.RunSegments(t, func(t *testing.T) store.Store { return openTest(t) }, seedSegmentFixture)
}

func seedSegmentFixture(t *testing.T, st store.Store, f storetest.SegmentFixture) {
	t.Helper()
	s := st.(*Store)
	ctx := t.Context()
	for _, l := range []string{f.News, f.Promo} {
		if _, err := s.pool.Exec(ctx, `INSERT INTO lists (id, name, created_at, updated_at) VALUES ($1, $1, $2, $2)`,
			l, f.Now); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range f.Contacts {
		if _, err := s.pool.Exec(ctx, `INSERT INTO contacts (id, email, email_key, external_id, name, locale, timezone,
			attributes, last_active_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale, c.Timezone, []byte(c.Attributes),
			ts(c.LastActiveAt), c.CreatedAt, c.UpdatedAt); err != nil {
			t.Fatal(err)
		}
		for l, status := range c.Lists {
			if _, err := s.pool.Exec(ctx, `INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $4)`, l, c.ID, status, f.Now); err != nil {
				t.Fatal(err)
			}
		}
	}
}
