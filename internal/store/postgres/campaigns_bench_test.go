package postgres

import (
	"strconv"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// BenchmarkRunMaterialise measures materialising a run over three overlapping lists of 250,000
// contacts (each contact on one to three of them, 1% suppressed), by chunks of the size given,
// and reports recipients/s (contacts considered, included or not, per second):
//
//	TEST_DATABASE_URL=postgres://… go test -run '^$' -bench RunMaterialise ./internal/store/postgres/
func BenchmarkRunMaterialise(b *testing.B) {
	const contacts = 250_000
	s := openTest(b)
	ctx := b.Context()
	for _, q := range []string{
		`INSERT INTO lists (id, name, created_at, updated_at) VALUES
			('lst_a', 'A', now(), now()), ('lst_b', 'B', now(), now()), ('lst_c', 'C', now(), now())`,
		`INSERT INTO contacts (id, email, email_key, created_at, updated_at)
			SELECT 'ctc_' || lpad(i::text, 26, '0'), 'u' || i || '@example.com', 'u' || i || '@example.com', now(), now()
			FROM generate_series(1, ` + strconv.Itoa(contacts) + `) i`,
		// A: every second contact, B: every third, C: the others and every seventh.
		`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
			SELECT l, id, 'subscribed', now(), now() FROM (
				SELECT i, 'ctc_' || lpad(i::text, 26, '0') AS id FROM generate_series(1, ` + strconv.Itoa(contacts) + `) i) c,
				LATERAL (VALUES ('lst_a', i % 2 = 0), ('lst_b', i % 3 = 0),
					('lst_c', (i % 2 <> 0 AND i % 3 <> 0) OR i % 7 = 0)) AS v (l, member)
			WHERE member`,
		`INSERT INTO suppressions (email, scope, reason, created_at)
			SELECT 'u' || i || '@example.com', 'global', 'manual', now() FROM generate_series(1, ` + strconv.Itoa(contacts) + `, 100) i`,
		`ANALYZE`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now().UTC()
	cmp, err := s.CampaignCreate(ctx, store.Campaign{ID: id.New(id.Campaign), Name: "bench", Template: "t",
		Lists: []string{"lst_a", "lst_b", "lst_c"}, Schedule: store.Schedule{Kind: store.ScheduleNow},
		State: store.CampaignRunning, CreatedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	n := 0 // runs created: each a new occurrence
	for _, chunk := range []int{1000, 5000} {
		b.Run("chunk="+strconv.Itoa(chunk), func(b *testing.B) {
			for b.Loop() {
				run, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: cmp.ID,
					ScheduledAt: now.Add(time.Duration(n) * time.Second), StartedAt: now},
					CampaignFrom: []string{store.CampaignRunning}, Owner: "bench", LeaseUntil: now.Add(time.Hour)})
				if err != nil {
					b.Fatal(err)
				}
				n++
				considered := 0
				for done := false; !done; {
					r, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "bench", Limit: chunk, Now: now,
						Audience: store.RunAudience{Lists: cmp.Lists, CampaignID: cmp.ID}})
					if err != nil {
						b.Fatal(err)
					}
					considered += r.Added + r.Excluded.Suppressed
					done = r.Done
				}
				if considered != contacts {
					b.Fatalf("considered %d contacts, want %d", considered, contacts)
				}
			}
			b.ReportMetric(float64(b.N*contacts)/b.Elapsed().Seconds(), "recipients/s")
		})
	}
}

// BenchmarkRunQueue measures storing a run's messages by chunks of 500 (RunPending, then
// RunQueue with a ~1.5 KB message each), and reports msgs/s.
func BenchmarkRunQueue(b *testing.B) {
	const chunk = 500
	s := openTest(b)
	ctx := b.Context()
	now := time.Now().UTC()
	for _, q := range []string{
		`INSERT INTO lists (id, name, created_at, updated_at) VALUES ('lst_a', 'A', now(), now())`,
		`INSERT INTO contacts (id, email, email_key, created_at, updated_at)
			SELECT 'ctc_' || lpad(i::text, 26, '0'), 'u' || i || '@example.com', 'u' || i || '@example.com', now(), now()
			FROM generate_series(1, 200000) i`,
		`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
			SELECT 'lst_a', id, 'subscribed', now(), now() FROM contacts`,
		`ANALYZE`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	cmp, err := s.CampaignCreate(ctx, store.Campaign{ID: id.New(id.Campaign), Name: "bench", Template: "t",
		Lists: []string{"lst_a"}, Schedule: store.Schedule{Kind: store.ScheduleNow}, State: store.CampaignRunning, CreatedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	run, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: cmp.ID,
		ScheduledAt: now, StartedAt: now}, CampaignFrom: []string{store.CampaignRunning}, Owner: "bench",
		LeaseUntil: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	for done := false; !done; {
		r, err := s.RunMaterialise(ctx, store.RunMaterialiseParams{RunID: run.ID, Owner: "bench", Limit: 5000, Now: now,
			Audience: store.RunAudience{Lists: cmp.Lists, CampaignID: cmp.ID}})
		if err != nil {
			b.Fatal(err)
		}
		done = r.Done
	}
	after := ""
	for b.Loop() {
		pending, err := s.RunPending(ctx, store.RunPendingParams{RunID: run.ID, After: after, Limit: chunk})
		if err != nil || len(pending) != chunk {
			b.Fatalf("RunPending: %d, %v", len(pending), err)
		}
		items := make([]store.RunQueueItem, len(pending))
		for i, r := range pending {
			m := storetest.Message(now, func(m *store.Message) {
				m.Stream, m.CampaignID, m.RunID, m.ListID = store.StreamBroadcast, cmp.ID, run.ID, r.ListID
				m.To, m.Recipients = []string{r.Email}, []string{r.Email}
			})
			items[i] = store.RunQueueItem{ContactID: r.ContactID, Message: &m}
		}
		after = pending[len(pending)-1].ContactID
		if err := s.RunQueue(ctx, store.RunQueueParams{RunID: run.ID, CampaignID: cmp.ID, Owner: "bench", Items: items,
			Day: now.Format(time.DateOnly), Now: now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*chunk)/b.Elapsed().Seconds(), "msgs/s")
}
