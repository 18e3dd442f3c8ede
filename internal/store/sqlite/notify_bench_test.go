package sqlite

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/storetest"
)

// BenchmarkEventsAccept measures single-event accepts from 32 concurrent callers, as 32 HTTP
// requests would make them: each event names one of 1,000 contacts (updating its last
// activity), has a client id, and creates one action.
func BenchmarkEventsAccept(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			email := fmt.Sprintf("user%d@example.com", i%1000)
			in := store.EventIn{
				Event: store.AppEvent{ID: id.New(id.Event), Name: "order.paid", ClientID: fmt.Sprint(i),
					APIKeyID: "key_1", Data: json.RawMessage(`{"order":{"id":"A-1","total":12}}`), OccurredAt: now,
					CreatedAt: now},
				Contact: &store.ContactUpsert{Email: email, EmailKey: email},
				Actions: []store.Action{{ID: id.New(id.Action), TriggerID: "trg_1", DueAt: now}},
			}
			if _, err := s.EventsAccept(b.Context(), store.EventsAcceptParams{Events: []store.EventIn{in}, Now: now}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkActionCycle measures the action worker's side: claiming 100 due actions and
// finishing each with one message.
func BenchmarkActionCycle(b *testing.B) {
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	const batch = 100
	b.StopTimer()
	for range b.N {
		events := make([]store.EventIn, batch)
		for i := range events {
			events[i] = store.EventIn{Event: store.AppEvent{ID: id.New(id.Event), Name: "order.paid", OccurredAt: now},
				Actions: []store.Action{{ID: id.New(id.Action), TriggerID: "trg_1", DueAt: now}}}
		}
		if _, err := s.EventsAccept(b.Context(), store.EventsAcceptParams{Events: events, Now: now}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := s.ActionClaim(b.Context(), store.ActionClaimParams{Owner: "w", Limit: batch, Now: now,
			LeaseUntil: now.Add(time.Minute)})
		if err != nil {
			b.Fatal(err)
		}
		fin := make([]store.ActionFinishParams, len(got))
		for i, a := range got {
			fin[i] = store.ActionFinishParams{ID: a.ID, Owner: "w", Status: store.ActionDone,
				Messages: []store.NewMessage{storetest.Message(now)}}
		}
		if _, err := s.ActionFinish(b.Context(), now, fin); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "actions/s")
}
