package webhook

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/postie/postie/internal/store"
)

func TestBody(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 12, 30, 0, 123456000, time.UTC)
	msg := store.Message{ID: "msg_1", Stream: "transactional", Tags: []string{"orders"}, Metadata: map[string]string{"order": "A-1"},
		EventID: "evt_1", TriggerID: "trg_1"}
	for _, tc := range []struct {
		name string
		d    store.WebhookDelivery
		m    store.Message
		want string
	}{
		{"message.sent", store.WebhookDelivery{ID: 42, Type: store.WebhookMessageSent, Subject: "msg_1", Recipient: "a@example.com",
			At: at, Detail: json.RawMessage(`{"provider_id":"q1","attempt":1}`)}, msg,
			`{"type":"message.sent","timestamp":"2026-12-06T12:30:00.123456Z","data":{"sequence":42,"message_id":"msg_1",` +
				`"recipient":"a@example.com","stream":"transactional","tags":["orders"],"metadata":{"order":"A-1"},` +
				`"campaign_id":null,"run_id":null,"event_id":"evt_1","trigger_id":"trg_1","detail":{"provider_id":"q1","attempt":1}}}`},
		{"message.failed of a purged campaign message", store.WebhookDelivery{ID: 3, Type: store.WebhookMessageFailed, Subject: "msg_2",
			Recipient: "b@example.com", CampaignID: "cmp_1", RunID: "run_1", At: at}, store.Message{},
			`{"type":"message.failed","timestamp":"2026-12-06T12:30:00.123456Z","data":{"sequence":3,"message_id":"msg_2",` +
				`"recipient":"b@example.com","stream":"","tags":[],"metadata":{},"campaign_id":"cmp_1","run_id":"run_1",` +
				`"event_id":null,"trigger_id":null,"detail":{}}}`},
		{"contact.unsubscribed", store.WebhookDelivery{ID: 5, Type: store.WebhookContactUnsubscribed, Subject: "ctc_1",
			Recipient: "c@example.com", At: at, Detail: json.RawMessage(`{"list_id":"lst_1","source":"one-click"}`)}, store.Message{},
			`{"type":"contact.unsubscribed","timestamp":"2026-12-06T12:30:00.123456Z","data":{"contact_id":"ctc_1",` +
				`"email":"c@example.com","list_id":"lst_1","sequence":5,"source":"one-click"}}`},
		{"campaign.run_finished", store.WebhookDelivery{ID: 6, Type: store.WebhookCampaignRunFinished, Subject: "run_1",
			CampaignID: "cmp_1", RunID: "run_1", At: at, Detail: json.RawMessage(`{"counts":{"sent":2}}`)}, store.Message{},
			`{"type":"campaign.run_finished","timestamp":"2026-12-06T12:30:00.123456Z","data":{"campaign_id":"cmp_1",` +
				`"counts":{"sent":2},"run_id":"run_1","sequence":6}}`},
		{"event.triggered", store.WebhookDelivery{ID: 8, Type: store.WebhookEventTriggered, Subject: "evt_1", At: at,
			Detail: json.RawMessage(`{"trigger_id":"trg_1","action_id":"act_1","message_ids":["msg_1"]}`)}, store.Message{},
			`{"type":"event.triggered","timestamp":"2026-12-06T12:30:00.123456Z","data":{"action_id":"act_1",` +
				`"event_id":"evt_1","message_ids":["msg_1"],"name":null,"sequence":8,"trigger_id":"trg_1"}}`},
		{"webhook.disabled", store.WebhookDelivery{ID: 9, Type: store.WebhookEndpointDisabled, Subject: "whk_1", At: at,
			Detail: json.RawMessage(`{"url":"https://h.example/","reason":"failing since …"}`)}, store.Message{},
			`{"type":"webhook.disabled","timestamp":"2026-12-06T12:30:00.123456Z","data":{"reason":"failing since …",` +
				`"sequence":9,"url":"https://h.example/","webhook_id":"whk_1"}}`},
		{"stream.paused", store.WebhookDelivery{ID: 10, Type: store.WebhookStreamPaused, Subject: "broadcast", At: at,
			Detail: json.RawMessage(`{"stream":"broadcast","reason":"complaint_rate","detail":"complaints 0.25% of 4000"}`)}, store.Message{},
			`{"type":"stream.paused","timestamp":"2026-12-06T12:30:00.123456Z","data":{"detail":"complaints 0.25% of 4000",` +
				`"reason":"complaint_rate","sequence":10,"stream":"broadcast"}}`},
		{"stream.paused without a detail", store.WebhookDelivery{ID: 11, Type: store.WebhookStreamPaused, Subject: "broadcast", At: at},
			store.Message{},
			`{"type":"stream.paused","timestamp":"2026-12-06T12:30:00.123456Z","data":{"detail":null,"reason":null,` +
				`"sequence":11,"stream":"broadcast"}}`},
	} {
		got, err := Body(tc.d, tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		again, _ := Body(tc.d, tc.m)
		if string(again) != string(got) {
			t.Errorf("%s: two bodies of one delivery differ", tc.name)
		}
	}
}
