package sqlite

import (
	"database/sql"
	"flag"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// benchCampaignContacts is the size of BenchmarkRunMaterialise's audience.
var benchCampaignContacts = flag.Int("campaign-contacts", 1_000_000, "contacts of BenchmarkRunMaterialise's audience")

// BenchmarkRunMaterialise measures a run's materialisation over a million contacts on three
// overlapping lists (a: all, every 50th of whom left; b: every 3rd; c: every 5th), 1% of them
// suppressed, in chunks as large as the store paces them (about 15 ms of the writer each) and
// of 1,000 contacts, each a new run of the same audience. It reports recipients materialised
// per second (and per second of CPU the process used, the machine being shared) and the chunks'
// durations, the time each holds the writer (there being no other writes).
func BenchmarkRunMaterialise(b *testing.B) {
	s := openTest(b)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	start := time.Now()
	lists := seedCampaignAudience(b, s, *benchCampaignContacts, now)
	b.Logf("writing %d contacts took %v", *benchCampaignContacts, time.Since(start))
	c, err := s.CampaignCreate(b.Context(), store.Campaign{ID: id.New(id.Campaign), Name: "bench", Template: "t",
		Lists: lists, Schedule: store.Schedule{Kind: store.ScheduleNow}, State: store.CampaignDraft,
		CreatedAt: now, UpdatedAt: now})
	if err != nil {
		b.Fatal(err)
	}
	runs := 0
	// The audience's WAL into the file first, so that copying it is not measured.
	if err := s.w.exclusive(b.Context(), func(db *sql.DB) error {
		_, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	for _, chunk := range []int{0, 1000} { // 0: as large as the store paces them
		b.Run(fmt.Sprintf("chunk=%d", chunk), func(b *testing.B) {
			var (
				added int
				took  []time.Duration
				cpu   time.Duration // user and system time of the process: the machine may be shared
			)
			for b.Loop() {
				runs++
				at := now.Add(time.Duration(runs) * time.Hour)
				run, err := s.RunCreate(b.Context(), store.RunCreateParams{Run: store.Run{ID: id.New(id.Run), CampaignID: c.ID,
					ScheduledAt: at, StartedAt: at}, CampaignFrom: store.CampaignStates, Owner: "bench", LeaseUntil: at.Add(time.Hour)})
				if err != nil {
					b.Fatal(err)
				}
				cpu0 := cpuTime()
				for {
					t := time.Now()
					res, err := s.RunMaterialise(b.Context(), store.RunMaterialiseParams{RunID: run.ID, Owner: "bench",
						Audience: store.RunAudience{Lists: lists, CampaignID: c.ID}, Limit: chunk, Now: at})
					if err != nil {
						b.Fatal(err)
					}
					took = append(took, time.Since(t))
					added += res.Added
					if res.Done {
						break
					}
				}
				cpu += cpuTime() - cpu0
			}
			slices.Sort(took)
			b.ReportMetric(float64(added)/b.Elapsed().Seconds(), "recipients/s")
			b.ReportMetric(float64(added)/cpu.Seconds(), "recipients/cpu-s")
			b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms/chunk")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms/chunk")
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms/chunk")
			b.ReportMetric(float64(*benchCampaignContacts*b.N)/float64(len(took)), "contacts/chunk")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// seedCampaignAudience writes n contacts on three overlapping lists, whose ids it returns: a
// (all, every 50th unsubscribed), b (every 3rd) and c (every 5th); every 100th is suppressed.
func seedCampaignAudience(tb testing.TB, s *Store, n int, now time.Time) []string {
	lists := []string{"lst_bench_a", "lst_bench_b", "lst_bench_c"}
	err := s.w.do(tb.Context(), 1, func(t *wtx) error {
		for _, l := range lists {
			if _, err := t.exec(`INSERT INTO lists (id, name, created_at, updated_at) VALUES (?1, ?1, ?2, ?2)`,
				l, micros(now)); err != nil {
				return err
			}
		}
		if _, err := t.exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1)
			INSERT INTO contacts (id, email, email_key, attributes, created_at, updated_at)
			SELECT printf('ctc_%026d', i), 'u' || i || '@example.com', 'u' || i || '@example.com',
				json_object('plan', iif(i % 5 = 0, 'pro', 'free')), ?2, ?2
			FROM n`, n, micros(now)); err != nil {
			return err
		}
		for _, q := range []string{
			`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
				SELECT ?1, id, iif(CAST(substr(id, 5) AS INTEGER) % 50 = 1, 'unsubscribed', 'subscribed'), ?2, ?2 FROM contacts`,
			`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
				SELECT ?1, id, 'subscribed', ?2, ?2 FROM contacts WHERE CAST(substr(id, 5) AS INTEGER) % 3 = 0`,
			`INSERT INTO subscriptions (list_id, contact_id, status, created_at, updated_at)
				SELECT ?1, id, 'subscribed', ?2, ?2 FROM contacts WHERE CAST(substr(id, 5) AS INTEGER) % 5 = 0`,
		} {
			if _, err := t.exec(q, lists[0], micros(now)); err != nil {
				return err
			}
			lists = append(lists[1:], lists[0])
		}
		_, err := t.exec(`INSERT INTO suppressions (email, scope, reason, created_at)
			SELECT email_key, 'global', 'hard_bounce', ?1 FROM contacts WHERE CAST(substr(id, 5) AS INTEGER) % 100 = 7`,
			micros(now))
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return lists
}

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
