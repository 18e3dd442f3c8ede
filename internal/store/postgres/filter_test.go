package postgres

import (
	"testing"
	"time"

	"github.com/postie/postie/internal/store/storetest"
)

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
