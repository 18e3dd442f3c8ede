package sqlite

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// benchMessage returns a realistic transactional message: one recipient, two tags, a little
// metadata, and about 1.5 KB of multipart MIME.
func benchMessage(now time.Time) store.NewMessage {
	msgID := id.New(id.Message)
	var raw bytes.Buffer
	fmt.Fprintf(&raw, "Date: %s\r\nFrom: Shop <orders@shop.example>\r\nTo: Ann Example <ann@example.com>\r\n"+
		"Subject: Your order A-1 has shipped\r\nMessage-ID: <%s@shop.example>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\n", now.Format(time.RFC1123Z), msgID)
	for range 6 {
		raw.WriteString("Hello Ann, your order A-1 is on its way and should arrive within two days.\r\n")
	}
	raw.WriteString("--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>")
	for range 6 {
		raw.WriteString("<p>Hello Ann, your order <b>A-1</b> is on its way and should arrive soon.</p>\r\n")
	}
	raw.WriteString("</body></html>\r\n--b1--\r\n")
	return store.NewMessage{
		Message: store.Message{
			ID: msgID, Stream: store.StreamTransactional, Status: store.StatusQueued,
			From: "Shop <orders@shop.example>", To: []string{"Ann Example <ann@example.com>"},
			Subject: "Your order A-1 has shipped", Template: "order-shipped", TemplateVersion: 3,
			Data:         []byte(`{"order":{"id":"A-1","items":2}}`),
			Tags:         []string{"orders", "shipping"},
			Metadata:     map[string]string{"order_id": "A-1"},
			Headers:      map[string]string{"X-Order": "A-1"},
			EnvelopeFrom: "bounces@shop.example", Recipients: []string{"ann@example.com"},
			Size: raw.Len(), MaxAttempts: 4, NextAttemptAt: now, MessageID: msgID + "@shop.example",
			APIKeyID: "key_bench", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		},
		Raw: raw.Bytes(),
	}
}

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
			m := benchMessage(now)
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
	tmpl := benchMessage(now)
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
	s := openTest(b)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tmpl := benchMessage(now)
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
