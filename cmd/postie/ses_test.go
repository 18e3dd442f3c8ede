package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/inbound/snstest"
)

// TestSESNotification: SNS posts an SES bounce to the real binary's POST /v1/inbound/ses (no API
// key, SNS's text/plain body), signed with a certificate served by a local SNS
// (POSTIE_SNS_ENDPOINT); it names the message by its Message-ID, which ends bounced with the
// address suppressed. A notification from a topic POSTIE_SES_TOPIC_ARNS does not list changes
// nothing.
func TestSESNotification(t *testing.T) {
	t.Parallel()
	const topic = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
	sns := snstest.New(t, time.Now())
	p := start(t, t.TempDir(), "POSTIE_API_KEY="+nodeKey, "POSTIE_FROM=app@example.com",
		"POSTIE_SES_TOPIC_ARNS="+topic, "POSTIE_SNS_ENDPOINT="+sns.URL)

	var sent struct{ ID string }
	call(t, p, "POST", "/v1/messages", map[string]any{"to": []string{"ann@example.net"}, "subject": "Hello",
		"text": "Hi Ann"}, 202, &sent)
	m := p.waitStatus(nodeKey, sent.ID, "sent")
	bounce, _ := json.Marshal(map[string]any{"notificationType": "Bounce",
		"mail": map[string]any{"messageId": "0100018c-ses", "source": "app@example.com", "destination": []string{"ann@example.net"},
			"commonHeaders": map[string]any{"messageId": "<" + m["message_id"].(string) + ">"}},
		"bounce": map[string]any{"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "fb-1",
			"bouncedRecipients": []map[string]any{{"emailAddress": "ann@example.net", "status": "5.1.1", "action": "failed",
				"diagnosticCode": "smtp; 550 5.1.1 user unknown"}}}})

	post := func(msg *snstest.Message) (int, string) {
		t.Helper()
		sns.Sign(t, msg, "2")
		req, _ := http.NewRequest("POST", "http://"+p.addr+"/v1/inbound/ses", strings.NewReader(string(snstest.Body(t, msg))))
		req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
		req.Header.Set("x-amz-sns-message-type", msg.Type)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(snstest.Notification("arn:aws:sns:eu-west-1:123456789012:other", string(bounce))); code != 403 {
		t.Fatalf("another topic: %d %s", code, body)
	}
	if code, body := post(snstest.Notification(topic, string(bounce))); code != 200 || !strings.Contains(body, `"outcome":"applied"`) {
		t.Fatalf("the bounce: %d %s", code, body)
	}
	p.waitStatus(nodeKey, sent.ID, "bounced")
	var sups struct {
		Data []struct{ Email, Scope, Reason string }
	}
	call(t, p, "GET", "/v1/suppressions?email=ann@example.net", nil, 200, &sups)
	if len(sups.Data) != 1 || sups.Data[0].Reason != "hard_bounce" || sups.Data[0].Scope != "global" {
		t.Errorf("suppressions: %+v", sups.Data)
	}
	if n := sns.Fetches.Load(); n != 1 {
		t.Errorf("the certificate was fetched %d times, want once (the other topic's request before the fetch)", n)
	}
	p.stop()
}
