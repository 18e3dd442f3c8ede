package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// Message is the test message of the conformance suite and of the drivers' own tests and
// benchmarks: a realistic queued transactional message created at now (one recipient, a template
// with data, a tag, metadata, due at now, expiring a day later), with a MIME of about 1.5 KB.
// mods adjust it before its MIME is built from it; Size is the MIME's. Each call has a new id.
func Message(now time.Time, mods ...func(*store.Message)) store.NewMessage {
	msgID := id.New(id.Message)
	m := store.Message{
		ID:            msgID,
		Stream:        store.StreamTransactional,
		Status:        store.StatusQueued,
		From:          "Shop <orders@shop.example>",
		To:            []string{"Ann Example <ann@example.com>"},
		Subject:       "Your order A-1 has shipped",
		Template:      "order-shipped",
		Data:          json.RawMessage(`{"order":{"id":"A-1"}}`),
		Tags:          []string{"orders"},
		Metadata:      map[string]string{"order_id": "A-1"},
		EnvelopeFrom:  "bounces@shop.example",
		Recipients:    []string{"ann@example.com"},
		MaxAttempts:   4,
		NextAttemptAt: now,
		MessageID:     msgID + "@shop.example",
		CreatedAt:     now,
		ExpiresAt:     now.Add(24 * time.Hour),
		UpdatedAt:     now,
	}
	for _, mod := range mods {
		mod(&m)
	}
	raw := mime(m)
	m.Size = len(raw)
	return store.NewMessage{Message: m, Raw: raw}
}

func mime(m store.Message) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n", m.From,
		strings.Join(m.To, ", "), m.Subject, m.MessageID)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for b.Len() < 1500 {
		b.WriteString("Your parcel is on its way and should arrive within two working days.\r\n")
	}
	return b.Bytes()
}
