package inbound

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// snsSigner plays SNS in tests: a key pair with a self-signed certificate, served by an httptest
// server that stands for https://sns.{region}.amazonaws.com (POSTIE_SNS_ENDPOINT), which also
// answers subscription confirmations.
type snsSigner struct {
	key      *rsa.PrivateKey
	certPEM  []byte
	srv      *httptest.Server
	certURL  string
	fetches  atomic.Int32 // certificate downloads
	confirms atomic.Int32 // subscription confirmations (GET /confirm)
}

var snsNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newSNSSigner(t *testing.T) *snsSigner {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test"},
		NotBefore: snsNow.Add(-time.Hour), NotAfter: snsNow.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &snsSigner{key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /SimpleNotificationService-test.pem", func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		_, _ = w.Write(s.certPEM)
	})
	mux.HandleFunc("GET /moved.pem", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/SimpleNotificationService-test.pem", http.StatusFound)
	})
	mux.HandleFunc("GET /confirm", func(w http.ResponseWriter, r *http.Request) {
		s.confirms.Add(1)
		_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	})
	mux.HandleFunc("GET /moved-confirm", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/confirm", http.StatusFound)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.certURL = s.srv.URL + "/SimpleNotificationService-test.pem"
	return s
}

// sign fills e's signature fields (version "1" or "2") with the signer's key and certificate URL
// (unless e names one already).
func (s *snsSigner) sign(t *testing.T, e *snsEnvelope, version string) {
	t.Helper()
	if e.SigningCertURL == "" {
		e.SigningCertURL = s.certURL
	}
	e.SignatureVersion = version
	msg, ok := e.canonical()
	if !ok {
		t.Fatalf("no canonical form for type %q", e.Type)
	}
	var sig []byte
	var err error
	if version == "1" {
		d := sha1.Sum([]byte(msg))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256([]byte(msg))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	e.Signature = base64.StdEncoding.EncodeToString(sig)
}

// snsBody is e as SNS posts it.
func snsBody(t *testing.T, e *snsEnvelope) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const testTopic = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"

func notificationEnvelope(message string) *snsEnvelope {
	return &snsEnvelope{Type: snsNotification, MessageID: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", TopicArn: testTopic,
		Message: message, Timestamp: "2026-06-01T12:00:00.000Z"}
}

func (s *snsSigner) verifier() *snsVerifier {
	return &snsVerifier{client: snsClient(5 * time.Second), endpoint: s.srv.URL + "/", now: func() time.Time { return snsNow },
		certs: map[string]*x509.Certificate{}}
}

func TestSNSVerify(t *testing.T) {
	t.Parallel()
	s := newSNSSigner(t)
	other := newSNSSigner(t) // another host serving a certificate of the same key
	other.certPEM = s.certPEM
	subject := "Amazon SES Email Event Notification"

	tests := []struct {
		name    string
		make    func() *snsEnvelope
		wantErr bool
	}{
		{"version 1", func() *snsEnvelope { e := notificationEnvelope(`{"a":1}`); s.sign(t, e, "1"); return e }, false},
		{"version 2", func() *snsEnvelope { e := notificationEnvelope(`{"a":1}`); s.sign(t, e, "2"); return e }, false},
		{"with a subject", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			e.Subject = &subject
			s.sign(t, e, "2")
			return e
		}, false},
		{"subscription", func() *snsEnvelope {
			e := &snsEnvelope{Type: snsSubscription, MessageID: "m", Token: "tok", TopicArn: testTopic, Message: "confirm",
				SubscribeURL: s.srv.URL + "/confirm", Timestamp: "2026-06-01T12:00:00.000Z"}
			s.sign(t, e, "1")
			return e
		}, false},
		{"message changed after signing", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			s.sign(t, e, "2")
			e.Message = `{"a":2}`
			return e
		}, true},
		{"subject added after signing", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			s.sign(t, e, "2")
			e.Subject = &subject
			return e
		}, true},
		{"version 1 signature claimed as version 2", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			s.sign(t, e, "1")
			e.SignatureVersion = "2"
			return e
		}, true},
		{"unknown version", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			s.sign(t, e, "2")
			e.SignatureVersion = "3"
			return e
		}, true},
		{"signature not base64", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			s.sign(t, e, "2")
			e.Signature = "%%%"
			return e
		}, true},
		{"unknown type", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			s.sign(t, e, "2")
			e.Type = "Other"
			return e
		}, true},
		{"certificate on another host", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = other.certURL
			s.sign(t, e, "2")
			return e
		}, true},
		{"certificate URL redirects", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = s.srv.URL + "/moved.pem"
			s.sign(t, e, "2")
			return e
		}, true},
		{"certificate URL not found", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = s.srv.URL + "/nothing.pem"
			s.sign(t, e, "2")
			return e
		}, true},
		{"signed by another key", func() *snsEnvelope {
			e := notificationEnvelope(`{"a":1}`)
			e.SigningCertURL = s.certURL
			other.sign(t, e, "2")
			return e
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.make()
			var parsed snsEnvelope // as the receiver sees it: through JSON
			if err := json.Unmarshal(snsBody(t, e), &parsed); err != nil {
				t.Fatal(err)
			}
			err := s.verifier().verify(context.Background(), &parsed)
			if tt.wantErr != (err != nil) {
				t.Fatalf("verify: %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrSNSSignature) {
				t.Errorf("error %v is not ErrSNSSignature", err)
			}
		})
	}
	if n := other.fetches.Load(); n != 0 {
		t.Errorf("the certificate of another host was fetched %d times", n)
	}
}

func TestSNSCertificateCachedAndChecked(t *testing.T) {
	t.Parallel()
	s := newSNSSigner(t)
	v := s.verifier()
	for i := range 3 {
		e := notificationEnvelope(`{"n":` + string(rune('0'+i)) + `}`)
		s.sign(t, e, "2")
		if err := v.verify(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.fetches.Load(); n != 1 {
		t.Errorf("certificate fetched %d times, want once", n)
	}

	// A certificate outside its validity period is refused.
	late := s.verifier()
	late.now = func() time.Time { return snsNow.Add(48 * time.Hour) }
	e := notificationEnvelope(`{}`)
	s.sign(t, e, "2")
	if err := late.verify(context.Background(), e); !errors.Is(err, ErrSNSSignature) || !strings.Contains(err.Error(), "not valid now") {
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
