package httpapi_test

import (
	"strings"
	"testing"

	"github.com/postie/postie/internal/httpapi"
	"github.com/postie/postie/internal/inbound"
)

// POST /v1/inbound/ses takes no API key and SNS's text/plain body; what the SNS checks refuse is
// refused before anything is recorded (the checks themselves: internal/inbound).
func TestSESRoute(t *testing.T) {
	t.Parallel()
	const topic = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
	b := setup(t, func(c *httpapi.Config) {
		c.SES = inbound.NewSES(inbound.SESConfig{TopicARNs: []string{topic}, Endpoint: "http://127.0.0.1:1/"})
	})
	none := setup(t)
	other := `{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:eu-west-1:123456789012:other","Message":"{}",` +
		`"Timestamp":"2026-06-01T12:00:00Z","SignatureVersion":"2","Signature":"AAAA","SigningCertURL":"http://127.0.0.1:1/c.pem"}`
	unsigned := strings.Replace(other, ":other", ":ses-feedback", 1)
	for _, tc := range []struct {
		name   string
		b      *bundle
		body   string
		status int
		detail string
	}{
		{"another topic", b, other, 403, "not one POSTIE_SES_TOPIC_ARNS allows"},
		{"signature does not verify", b, unsigned, 403, "signature"},
		{"not JSON", b, "hello", 400, "not an SNS message"},
		{"too large", b, `{"Message":"` + strings.Repeat("x", inbound.MaxSESBody) + `"}`, 413, ""},
		{"no topics configured", none, unsigned, 403, "POSTIE_SES_TOPIC_ARNS is empty"},
	} {
		r := tc.b.do("POST", "/v1/inbound/ses", tc.body, "Authorization", "", "Content-Type", "text/plain; charset=UTF-8",
			"x-amz-sns-message-type", "Notification")
		if r.status != tc.status || !strings.Contains(string(r.body), tc.detail) {
			t.Errorf("%s: %d %.300s, want %d naming %q", tc.name, r.status, r.body, tc.status, tc.detail)
		}
	}
}
