package postgres

import (
	"runtime"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// The benchmarks mirror the SQLite driver's (internal/store/sqlite/bench_test.go), on a fresh
// database of TEST_DATABASE_URL:
//
//	TEST_DATABASE_URL=postgres://… go test -run '^$' -bench . ./internal/store/postgres/

// BenchmarkMessagesAccept measures single-message accepts from 32 concurrent callers, as 32 HTTP
// requests would make them.
func BenchmarkMessagesAccept(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.MessagesAccept(b.Context(), store.MessagesAcceptParams{
				Messages: []store.NewMessage{storetest.Message(now)}, Now: now}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMessagesAcceptBatch500 measures accepting 500-message batches (POST /v1/messages/batch)
// from 4 concurrent callers.
func BenchmarkMessagesAcceptBatch500(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tmpl := storetest.Message(now)
	const size = 500
	b.SetParallelism(max(1, 4/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		batch := make([]store.NewMessage, size)
		for pb.Next() {
			for i := range batch {
				batch[i] = tmpl
				batch[i].Message.ID = id.New(id.Message)
			}
			if _, err := s.MessagesAccept(b.Context(), store.MessagesAcceptParams{Messages: batch, Now: now}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkMessageClaimFinish measures the delivery cycle's store side: claim 100, finish 100.
func BenchmarkMessageClaimFinish(b *testing.B) {
	claimFinish(b, openTest(b))
}

// BenchmarkMessageClaimFinishWebhook is BenchmarkMessageClaimFinish with one webhook endpoint
// subscribed to message.sent: each finish also writes a delivery per message.
func BenchmarkMessageClaimFinishWebhook(b *testing.B) {
	s := openTest(b)
	if err := s.WebhookCreate(b.Context(), store.WebhookEndpoint{ID: id.New(id.Webhook), URL: "https://hooks.example",
		Types: []string{store.WebhookMessageSent}, Secret: "whsec_c2VjcmV0", Enabled: true}); err != nil {
		b.Fatal(err)
	}
	claimFinish(b, s)
}

// claimFinish accepts 100 messages, then claims and finishes them, timing the claim and the
// finish.
func claimFinish(b *testing.B, s *Store) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	tmpl := storetest.Message(now)
	const batch = 100
	for b.Loop() {
		b.StopTimer()
		msgs := make([]store.NewMessage, batch)
		for i := range msgs {
			msgs[i] = tmpl
			msgs[i].Message.ID = id.New(id.Message)
		}
		if _, err := s.MessagesAccept(b.Context(), store.MessagesAcceptParams{Messages: msgs, Now: now}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := s.MessageClaim(b.Context(), store.MessageClaimParams{Owner: "w", Stream: store.StreamTransactional,
			Limit: batch, Now: now, LeaseUntil: now.Add(time.Minute)})
		if err != nil || len(got) != batch {
			b.Fatalf("claim: %d, %v", len(got), err)
		}
		fin := make([]store.MessageFinishParams, len(got))
		for i, c := range got {
			fin[i] = store.MessageFinishParams{ID: c.ID, Owner: "w", Status: store.StatusSent, Attempts: 1,
				ProviderID: "relay-1", SentAt: now, Events: []store.Event{{Type: store.EventSent, At: now}}}
		}
		if n, err := s.MessageFinish(b.Context(), now, fin); err != nil || n != batch {
			b.Fatalf("finish: %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
}
