package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// Payload is the body POSTed to an endpoint (docs/api.md, Webhooks, gives each type's data).
type Payload struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"` // when the change happened, RFC 3339 in UTC
	Data      any    `json:"data"`
}

// MessageData is the data of the message.* types.
type MessageData struct {
	Sequence   int64             `json:"sequence"`
	MessageID  string            `json:"message_id"`
	Recipient  string            `json:"recipient"`
	Stream     string            `json:"stream"`
	Tags       []string          `json:"tags"`
	Metadata   map[string]string `json:"metadata"`
	CampaignID *string           `json:"campaign_id"`
	RunID      *string           `json:"run_id"`
	EventID    *string           `json:"event_id"`
	TriggerID  *string           `json:"trigger_id"`
	Detail     json.RawMessage   `json:"detail"`
}

// isMessageType reports whether payloads of typ are about a message.
func isMessageType(typ string) bool { return strings.HasPrefix(typ, "message.") }

// nullable is s, or nil (JSON null) for "".
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// messages reads the messages a batch of deliveries is about, each once. A message no longer
// stored (purged) is left out: its payloads say what the delivery row holds.
func messages(ctx context.Context, st Store, ds []store.WebhookDelivery) (map[string]store.Message, error) {
	out := map[string]store.Message{}
	for _, d := range ds {
		if !isMessageType(d.Type) {
			continue
		}
		if _, ok := out[d.Subject]; ok {
			continue
		}
		m, err := st.MessageGet(ctx, d.Subject)
		if errors.Is(err, store.ErrNotFound) {
			out[d.Subject] = store.Message{ID: d.Subject}
			continue
		}
		if err != nil {
			return nil, err
		}
		out[d.Subject] = m
	}
	return out, nil
}

// Body encodes the payload of delivery d; m is its message for the message types (zero when
// none is stored). The same delivery gives the same body on every attempt.
func Body(d store.WebhookDelivery, m store.Message) ([]byte, error) {
	p := Payload{Type: d.Type, Timestamp: d.At.UTC().Format(time.RFC3339Nano)}
	detail := d.Detail
	if len(detail) == 0 || string(detail) == "null" {
		detail = json.RawMessage("{}")
	}
	if isMessageType(d.Type) {
		md := MessageData{Sequence: d.ID, MessageID: d.Subject, Recipient: d.Recipient, Stream: m.Stream,
			Tags: m.Tags, Metadata: m.Metadata, CampaignID: nullable(d.CampaignID), RunID: nullable(d.RunID),
			EventID: nullable(m.EventID), TriggerID: nullable(m.TriggerID), Detail: detail}
		if md.Tags == nil {
			md.Tags = []string{}
		}
		if md.Metadata == nil {
			md.Metadata = map[string]string{}
		}
		if md.CampaignID == nil {
			md.CampaignID = nullable(m.CampaignID)
		}
		if md.RunID == nil {
			md.RunID = nullable(m.RunID)
		}
		p.Data = md
		return json.Marshal(p)
	}
	// The other types: the detail's members, and the fixed ones of the type over them.
	data := map[string]any{}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(detail, &members); err == nil {
		for k, v := range members {
			data[k] = v
		}
	}
	data["sequence"] = d.ID
	orNull := func(key string) {
		if _, ok := data[key]; !ok {
			data[key] = nil
		}
	}
	switch d.Type {
	case store.WebhookContactSubscribed, store.WebhookContactUnsubscribed:
		data["contact_id"], data["email"] = d.Subject, d.Recipient
		orNull("list_id")
		orNull("source")
	case store.WebhookCampaignRunFinished:
		data["campaign_id"], data["run_id"] = nullable(d.CampaignID), nullable(d.RunID)
		if d.RunID == "" {
			data["run_id"] = d.Subject
		}
		if _, ok := data["counts"]; !ok {
			data["counts"] = map[string]int{}
		}
	case store.WebhookEventTriggered:
		data["event_id"] = d.Subject
		orNull("name")
		orNull("trigger_id")
		orNull("action_id")
		if _, ok := data["message_ids"]; !ok {
			data["message_ids"] = []string{}
		}
	case store.WebhookEndpointDisabled:
		data["webhook_id"] = d.Subject
		orNull("url")
		orNull("reason")
	case store.WebhookStreamPaused:
		data["stream"] = d.Subject
		orNull("reason")
		orNull("detail")
	default:
		data["subject"] = d.Subject
	}
	p.Data = data
	return json.Marshal(p)
}
