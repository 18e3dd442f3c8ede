package postgres

import (
	"net/url"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/postgres/pgtest"
	"github.com/postie/postie/internal/store/storetest"
)

// TestSegments runs the segment cases over a fixture written with plain INSERTs into the
// audience tables (00007), in pgx's default query mode and in those without named statements,
// where every value of a filter must encode from its Go type alone.
func TestSegments(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "exec", "simple_protocol"} {
		t.Run("mode="+mode, func(t *testing.T) {
			t.Parallel()
			storetest.RunSegments(t, func(t *testing.T) store.Store {
				u, err := url.Parse(pgtest.URL(t))
				if err != nil {
					t.Fatal(err)
				}
				if mode != "" {
					q := u.Query()
					q.Set("default_query_exec_mode", mode)
					u.RawQuery = q.Encode()
				}
				return openURL(t, u.String())
			}, seedSegmentFixture)
		})
	}
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
			c.ID, c.Email, c.EmailKey, nullString(c.ExternalID), c.Name, c.Locale, c.Timezone, string(c.Attributes),
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

// BenchmarkSegmentCount measures segment counts over a million contacts (storetest.BenchSegments),
// written in bulk here.
func BenchmarkSegmentCount(b *testing.B) {
	s := openTest(b)
	ctx := b.Context()
	now := storetest.BenchSegmentNow
	start := time.Now()
	if _, err := s.pool.Exec(ctx, `INSERT INTO lists (id, name, created_at, updated_at) VALUES ($1, 'news', $2, $2)`,
		storetest.BenchSegmentList, now); err != nil {
		b.Fatal(err)
	}
	// In chunks, each within the statement timeout.
	const chunk = 100_000
	for from := 0; from < storetest.BenchSegmentContacts; from += chunk {
		for _, q := range []string{
			`INSERT INTO contacts (id, email, email_key, attributes, last_active_at, created_at, updated_at)
			SELECT 'ctc_' || lpad(i::text, 26, '0'), 'u' || i || '@example.com', 'u' || i || '@example.com',
				jsonb_build_object('plan', CASE WHEN i % 5 = 0 THEN 'pro' ELSE 'free' END, 'score', i % 100,
					'vip', i % 7 = 0,
					'signup', to_char(($2::timestamptz - i * interval '1 minute') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
					'company', 'Company ' || (i % 1000), 'city', 'City ' || (i % 50)),
				$2::timestamptz - (i % 90) * interval '1 day', $2, $2
			FROM generate_series($3::int, $4::int) AS i WHERE $1 <> ''`,
			`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
			SELECT $1, 'ctc_' || lpad(i::text, 26, '0'), CASE WHEN i % 10 = 1 THEN 'unsubscribed' ELSE 'subscribed' END, $2, $2
			FROM generate_series($3::int, $4::int) AS i WHERE i % 2 = 0 OR i % 10 = 1`,
		} {
			if _, err := s.pool.Exec(ctx, q, storetest.BenchSegmentList, now, from, from+chunk-1); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("writing %d contacts took %v", storetest.BenchSegmentContacts, time.Since(start))
	storetest.BenchSegments(b, s)
}
