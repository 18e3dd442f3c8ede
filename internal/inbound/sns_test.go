package inbound

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/inbound/snstest"
)

var snsNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

const testTopic = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"

func notificationEnvelope(message string) *snstest.Message {
	return snstest.Notification(testTopic, message)
}

// envelope is m as Receive reads it: through JSON.
func envelope(t *testing.T, m *snstest.Message) *snsEnvelope {
	t.Helper()
	var e snsEnvelope
	if err := json.Unmarshal(snstest.Body(t, m), &e); err != nil {
		t.Fatal(err)
	}
	return &e
}

// verifier checks signatures with certificates from s only (POSTIE_SNS_ENDPOINT).
func verifier(s *snstest.SNS) *snsVerifier {
	return &snsVerifier{client: snsClient(5 * time.Second), endpoint: s.URL, now: func() time.Time { return snsNow },
		certs: map[string]*x509.Certificate{}}
}

func TestSNSVerify(t *testing.T) {
	t.Parallel()
	s := snstest.New(t, snsNow)
	other := snstest.New(t, snsNow) // another host serving a certificate of the same key
	other.ServeCertificateOf(s)
	subject := "Amazon SES Email Event Notification"

	tests := []struct {
		name    string
		make    func() *snstest.Message
		wantErr bool
	}{
		{"version 1", func() *snstest.Message { e := notificationEnvelope(`{"a":1}`); s.Sign(t, e, "1"); return e }, false},
		{"version 2", func() *snstest.Message { e := notificationEnvelope(`{"a":1}`); s.Sign(t, e, "2"); return e }, false},
		{"with a subject", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			e.Subject = &subject
			s.Sign(t, e, "2")
			return e
		}, false},
		{"subscription", func() *snstest.Message {
			e := &snstest.Message{Type: snsSubscription, MessageID: "m", Token: "tok", TopicArn: testTopic, Message: "confirm",
				SubscribeURL: s.URL + "confirm", Timestamp: "2026-06-01T12:00:00.000Z"}
			s.Sign(t, e, "1")
			return e
		}, false},
		{"message changed after signing", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			s.Sign(t, e, "2")
			e.Message = `{"a":2}`
			return e
		}, true},
		{"subject added after signing", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			s.Sign(t, e, "2")
			e.Subject = &subject
			return e
		}, true},
		{"version 1 signature claimed as version 2", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			s.Sign(t, e, "1")
			e.SignatureVersion = "2"
			return e
		}, true},
		{"unknown version", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			s.Sign(t, e, "2")
			e.SignatureVersion = "3"
			return e
		}, true},
		{"signature not base64", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			s.Sign(t, e, "2")
			e.Signature = "%%%"
			return e
		}, true},
		{"unknown type", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			s.Sign(t, e, "2")
			e.Type = "Other"
			return e
		}, true},
		{"certificate on another host", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = other.CertURL
			s.Sign(t, e, "2")
			return e
		}, true},
		{"certificate URL redirects", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = s.MovedCertURL
			s.Sign(t, e, "2")
			return e
		}, true},
		{"certificate URL not found", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = s.URL + "SimpleNotificationService-ffff.pem"
			s.Sign(t, e, "2")
			return e
		}, true},
		{"signed by another key", func() *snstest.Message {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = s.CertURL
			other.Sign(t, e, "2")
			return e
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifier(s).verify(context.Background(), envelope(t, tt.make()))
			if tt.wantErr != (err != nil) {
				t.Fatalf("verify: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrSNSSignature) {
				t.Errorf("error %v is not ErrSNSSignature", err)
			}
		})
	}
	if n := other.Fetches.Load(); n != 0 {
		t.Errorf("the certificate of another host was fetched %d times", n)
	}
}

func TestSNSCertificateCachedAndChecked(t *testing.T) {
	t.Parallel()
	s := snstest.New(t, snsNow)
	v := verifier(s)
	for i := range 3 {
		e := notificationEnvelope(`{"n":` + string(rune('0'+i)) + `}`)
		s.Sign(t, e, "2")
		if err := v.verify(context.Background(), envelope(t, e)); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Fetches.Load(); n != 1 {
		t.Errorf("certificate fetched %d times, want once", n)
	}

	// A certificate outside its validity period is refused.
	late := verifier(s)
	late.now = func() time.Time { return snsNow.Add(48 * time.Hour) }
	e := notificationEnvelope(`{}`)
	s.Sign(t, e, "2")
	if err := late.verify(context.Background(), envelope(t, e)); !errors.Is(err, ErrSNSSignature) || !strings.Contains(err.Error(), "not valid now") {
		t.Errorf("expired certificate: %v", err)
	}
}

// The certificate and subscription URLs must be https on the topic region's SNS host (AWS SNS
// Developer Guide, "Verifying the signatures of Amazon SNS messages").
func TestSNSURLAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, topic, endpoint string
		want                 bool
	}{
		{"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", testTopic, "", true},
		{"https://SNS.EU-WEST-1.amazonaws.com/x.pem", testTopic, "", true},
		{"https://sns.cn-north-1.amazonaws.com.cn/x.pem", "arn:aws-cn:sns:cn-north-1:123456789012:t", "", true},
		{"https://sns.us-east-1.amazonaws.com/x.pem", testTopic, "", false},                              // another region
		{"http://sns.eu-west-1.amazonaws.com/x.pem", testTopic, "", false},                               // not https
		{"https://sns.eu-west-1.amazonaws.com:8443/x.pem", testTopic, "", false},                         // a port
		{"https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", testTopic, "", false},                 // a suffix
		{"https://evil.example/sns.eu-west-1.amazonaws.com/x.pem", testTopic, "", false},                 // in the path
		{"https://sns.eu-west-1.amazonaws.com@evil.example/x.pem", testTopic, "", false},                 // user info
		{"https://evilsns.eu-west-1.amazonaws.com/x.pem", testTopic, "", false},                          // another host
		{"https://sns.eu-west-1.amazonaws.com/x.pem", "arn:aws:sns::123456789012:t", "", false},          // no region
		{"https://sns.x.amazonaws.com/x.pem", "arn:aws:sns:x/../y:123456789012:t", "", false},            // odd region
		{"https://sns.eu-west-1.amazonaws.com/x.pem", "arn:aws:sqs:eu-west-1:123456789012:t", "", false}, // not SNS
		{"http://127.0.0.1:8080/sns/x.pem", testTopic, "http://127.0.0.1:8080/sns", true},
		{"http://127.0.0.1:8080/sns/x.pem", testTopic, "http://127.0.0.1:8080/sns/", true},
		{"http://127.0.0.1:8080/snsx/x.pem", testTopic, "http://127.0.0.1:8080/sns", false},
		{"http://127.0.0.1:80801/sns/x.pem", testTopic, "http://127.0.0.1:8080/sns", false},
		{"https://sns.eu-west-1.amazonaws.com/x.pem", testTopic, "http://127.0.0.1:8080/", false}, // the endpoint replaces AWS
		{"not a url\x00", testTopic, "", false},
	}
	for _, tt := range tests {
		if got := snsURLAllowed(tt.url, tt.topic, tt.endpoint); got != tt.want {
			t.Errorf("snsURLAllowed(%q, %q, %q) = %v, want %v", tt.url, tt.topic, tt.endpoint, got, tt.want)
		}
	}
}

// A certificate URL is https://sns.{region}.amazonaws.com/SimpleNotificationService-{hex}.pem
// (under POSTIE_SNS_ENDPOINT in tests), nothing else on that host; it is cached by its normalized
// form.
func TestSNSCertURL(t *testing.T) {
	t.Parallel()
	const aws = "https://sns.eu-west-1.amazonaws.com/"
	tests := []struct{ url, endpoint, want string }{
		{aws + "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem", "", aws + "SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"},
		{"https://SNS.EU-West-1.amazonaws.com/SimpleNotificationService-abc.pem", "", aws + "SimpleNotificationService-abc.pem"},
		{"https://sns.eu-west-1.amazonaws.com/Simple%4eotificationService-abc.pem", "", aws + "SimpleNotificationService-abc.pem"},
		{aws + "x.pem", "", ""},
		{aws + "SimpleNotificationService-.pem", "", ""},
		{aws + "SimpleNotificationService-ABC.pem", "", ""},
		{aws + "SimpleNotificationService-xyz.pem", "", ""},
		{aws + "SimpleNotificationService-abc.pem.txt", "", ""},
		{aws + "SimpleNotificationService-abc.pemx", "", ""},
		{aws + "a/SimpleNotificationService-abc.pem", "", ""},
		{aws + "a/../SimpleNotificationService-abc.pem", "", ""},
		{aws + "SimpleNotificationService-abc.pem?x=1", "", ""},
		{aws + "SimpleNotificationService-abc.pem?", "", ""},
		{aws + "SimpleNotificationService-abc.pem#x", "", ""},
		{aws + "?Action=GetCertificate", "", ""},
		{"https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem", "", ""}, // another region
		{"http://127.0.0.1:8080/sns/SimpleNotificationService-abc.pem", "http://127.0.0.1:8080/sns", "http://127.0.0.1:8080/sns/SimpleNotificationService-abc.pem"},
		{"http://127.0.0.1:8080/sns/SimpleNotificationService-abc.pem", "http://127.0.0.1:8080/sns/", "http://127.0.0.1:8080/sns/SimpleNotificationService-abc.pem"},
		{"http://127.0.0.1:8080/sns/x.pem", "http://127.0.0.1:8080/sns", ""},
		{"http://127.0.0.1:8080/sns/a/SimpleNotificationService-abc.pem", "http://127.0.0.1:8080/sns", ""},
		{"http://127.0.0.1:8080/SimpleNotificationService-abc.pem", "http://127.0.0.1:8080/sns", ""},
	}
	for _, tt := range tests {
		got, ok := snsCertURL(tt.url, testTopic, tt.endpoint)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("snsCertURL(%q, %q) = %q, %v; want %q", tt.url, tt.endpoint, got, ok, tt.want)
		}
	}
}

// A SigningCertURL elsewhere on the SNS host, or with a query, is refused before anything is
// fetched, so a sender cannot make postie fetch what it likes or fill its certificate cache.
func TestSNSCertURLNotFetched(t *testing.T) {
	t.Parallel()
	s := snstest.New(t, snsNow)
	v := verifier(s)
	for _, u := range []string{s.URL + "x.pem", s.URL + "SimpleNotificationService-test.pem", s.URL + "confirm",
		s.CertURL + "?n=1", s.CertURL + "?n=2", s.URL + "a/SimpleNotificationService-abc.pem"} {
		e := notificationEnvelope(`{}`)
		e.SigningCertURL = u
		s.Sign(t, e, "2")
		if err := v.verify(context.Background(), envelope(t, e)); !errors.Is(err, ErrSNSSignature) {
			t.Errorf("SigningCertURL %s: %v, want ErrSNSSignature", u, err)
		}
	}
	if n := s.Requests.Load(); n != 0 {
		t.Errorf("%d requests to the SNS host, want none", n)
	}
	if len(v.certs) != 0 {
		t.Errorf("%d certificates cached, want none", len(v.certs))
	}
}

// A message whose Timestamp is more than an hour ahead is refused (before its certificate is
// fetched); an old one is verified (a replay is deduplicated by its reports' keys).
func TestSNSTimestamp(t *testing.T) {
	t.Parallel()
	s := snstest.New(t, snsNow)
	for _, tt := range []struct {
		ts string
		ok bool
	}{
		{snsNow.Add(59 * time.Minute).Format(time.RFC3339Nano), true},
		{snsNow.Add(-30 * 24 * time.Hour).Format("2006-01-02T15:04:05.000Z"), true},
		{snsNow.Add(61 * time.Minute).Format(time.RFC3339), false},
		{snsNow.Add(365 * 24 * time.Hour).Format("2006-01-02T15:04:05.000Z"), false},
		{"yesterday", false},
	} {
		before := s.Requests.Load()
		e := notificationEnvelope(`{}`)
		e.Timestamp = tt.ts
		s.Sign(t, e, "2")
		err := verifier(s).verify(context.Background(), envelope(t, e))
		if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrSNSSignature) {
			t.Errorf("Timestamp %s: %v, want ok %v", tt.ts, err, tt.ok)
		}
		if !tt.ok && s.Requests.Load() != before {
			t.Errorf("Timestamp %s: the certificate was fetched", tt.ts)
		}
	}
}
