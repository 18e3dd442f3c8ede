package sqlite

import (
	"testing"
	"time"

	"github.com/postie/postie/internal/store/storetest"
)

// BenchmarkSegmentCount measures segment counts over a million contacts (storetest.BenchSegments),
// written in bulk here.
func BenchmarkSegmentCount(b *testing.B) {
	s := openTest(b)
	now := storetest.BenchSegmentNow
	start := time.Now()
	err := s.w.do(b.Context(), 1, func(t *wtx) error {
		if _, err := t.exec(`INSERT INTO lists (id, name, created_at, updated_at) VALUES (?1, 'news', ?2, ?2)`,
			storetest.BenchSegmentList, micros(now)); err != nil {
			return err
		}
		if _, err := t.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
			INSERT INTO contacts (id, email, email_key, attributes, last_active_at, created_at, updated_at)
			SELECT printf('ctc_%026d', i), 'u' || i || '@example.com', 'u' || i || '@example.com',
				json_object('plan', iif(i % 5 = 0, 'pro', 'free'), 'score', i % 100,
					'vip', json(iif(i % 7 = 0, 'true', 'false')),
					'signup', strftime('%Y-%m-%dT%H:%M:%SZ', ?2 / 1000000 - i * 60, 'unixepoch'),
					'company', 'Company ' || (i % 1000), 'city', 'City ' || (i % 50)),
				?2 - (i % 90) * 86400000000, ?2, ?2
			FROM n`, storetest.BenchSegmentContacts, micros(now)); err != nil {
			return err
		}
		_, err := t.exec(`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
			SELECT ?1, id, iif(CAST(substr(id, 5) AS INTEGER) % 10 = 1, 'unsubscribed', 'subscribed'), ?2, ?2
			FROM contacts WHERE CAST(substr(id, 5) AS INTEGER) % 2 = 0 OR CAST(substr(id, 5) AS INTEGER) % 10 = 1`,
			storetest.BenchSegmentList, micros(now))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("writing %d contacts took %v", storetest.BenchSegmentContacts, time.Since(start))
	storetest.BenchSegments(b, s)
}
