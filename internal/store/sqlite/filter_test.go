package sqlite

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
	err := s.w.do(t.Context(), 1, func(tx *wtx) error {
		for _, l := range []string{f.News, f.Promo} {
			if _, err := tx.exec(`INSERT INTO lists (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)`,
				l, l, micros(f.Now), micros(f.Now)); err != nil {
				return err
			}
		}
		for _, c := range f.Contacts {
			if _, err := tx.exec(`INSERT INTO contacts (id, email, email_key, external_id, name, locale, timezone,
				attributes, last_active_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale, c.Timezone, string(c.Attributes),
				nullMicros(c.LastActiveAt), micros(c.CreatedAt), micros(c.UpdatedAt)); err != nil {
				return err
			}
			for l, status := range c.Lists {
				if _, err := tx.exec(`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?)`, l, c.ID, status, micros(f.Now), micros(f.Now)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seeding the segment fixture: %v", err)
	}
}
