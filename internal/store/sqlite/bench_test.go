package sqlite

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// BenchmarkMessagesAccept measures single-message accepts from 32 concurrent callers, as 32 HTTP
// requests would make them: group commit lets them share fsyncs.
func BenchmarkMessagesAccept(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	commits := s.w.commits.Load()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := storetest.Message(now)
			if _, err := s.MessagesAccept(b.Context(), store.MessagesAcceptParams{
				Messages: []store.NewMessage{m}, Now: now}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if c := s.w.commits.Load() - commits; c > 0 {
		b.ReportMetric(float64(b.N)/float64(c), "msgs/commit")
	}
}

// BenchmarkMessagesAcceptBatch500 measures accepting 500-message batches (POST /v1/messages/batch)
// from 4 concurrent callers.
func BenchmarkMessagesAcceptBatch500(b *testing.B) {
	benchBatch(b, 500, 4)
}

// BenchmarkMessagesAcceptBatch500Serial is the same with one caller: no group commit help.
func BenchmarkMessagesAcceptBatch500Serial(b *testing.B) {
	benchBatch(b, 500, 1)
}

func benchBatch(b *testing.B, size, callers int) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tmpl := storetest.Message(now)
	acceptBatch := func(batch []store.NewMessage) error {
		for i := range batch {
			batch[i] = tmpl
			batch[i].Message.ID = id.New(id.Message)
		}
		_, err := s.MessagesAccept(b.Context(), store.MessagesAcceptParams{Messages: batch, Now: now})
		return err
	}
	if callers == 1 {
		batch := make([]store.NewMessage, size)
		for b.Loop() {
			if err := acceptBatch(batch); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			batch := make([]store.NewMessage, size)
			for pb.Next() {
				if err := acceptBatch(batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
	}
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
	b.ResetTimer()
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

// cycleReceiver takes messages claimed at accept while it has room (2 × 256, the delivery
// engine's), for a finisher that records them as sent.
type cycleReceiver struct {
	room chan struct{}
	in   chan store.ClaimedMessage
}

func (r *cycleReceiver) Reserve(n int) (int, store.AcceptLease) {
	took := 0
	for took < n {
		select {
		case <-r.room:
			took++
		default:
			return took, store.AcceptLease{Owner: "w", Until: time.Now().Add(time.Minute)}
		}
	}
	return took, store.AcceptLease{Owner: "w", Until: time.Now().Add(time.Minute)}
}

func (r *cycleReceiver) Receive(c []store.ClaimedMessage) {
	for _, m := range c {
		r.in <- m
	}
}

func (r *cycleReceiver) Unreserve(n int) {
	for range n {
		r.room <- struct{}{}
	}
}

// BenchmarkTransactionalCycle measures the store's share of the transactional path: 32
// concurrent callers accept one message each, claimed at accept, and a finisher records them
// as sent in batches with their sent event, as the delivery engine does.
func BenchmarkTransactionalCycle(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	r := &cycleReceiver{room: make(chan struct{}, 512), in: make(chan store.ClaimedMessage, 512)}
	for range cap(r.room) {
		r.room <- struct{}{}
	}
	defer s.ClaimAtAccept(store.StreamTransactional, r)()
	finished := make(chan int)
	go func() {
		n := 0
		batch := make([]store.MessageFinishParams, 0, 512)
		for first := range r.in {
			batch = batch[:0]
			for c, ok := first, true; ok && len(batch) < cap(batch); {
				d := &store.EventDetail{Transport: "smtp", Response: "250 2.0.0 Ok: queued as 4XyZ1", ProviderID: "4XyZ1",
					Attempt: 1, Recipients: store.Recipients(c.Recipients)}
				batch = append(batch, store.MessageFinishParams{ID: c.ID, Owner: "w", Status: store.StatusSent, Attempts: 1,
					ProviderID: "4XyZ1", SentAt: now, Events: []store.Event{store.NewEvent(store.EventSent, now, d)}})
				select {
				case c, ok = <-r.in:
				default:
					ok = false
				}
			}
			if k, err := s.MessageFinish(context.Background(), now, batch); err != nil || k != len(batch) {
				b.Errorf("finish: %d of %d, %v", k, len(batch), err)
			}
			n += len(batch)
			for range batch {
				r.room <- struct{}{}
			}
		}
		finished <- n
	}()
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m := storetest.Message(now)
			if _, err := s.MessagesAccept(b.Context(), store.MessagesAcceptParams{
				Messages: []store.NewMessage{m}, Now: now}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	close(r.in)
	n := <-finished
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(n)/float64(b.N), "handed/msg")
}
