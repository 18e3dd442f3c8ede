// Package snstest stands in for Amazon SNS in tests: it signs messages as SNS does
// (SignatureVersion 1, SHA1withRSA, and 2, SHA256withRSA) with a key of its own, and serves that
// key's certificate and subscription confirmations over HTTP at URL, the base URL to give postie
// as POSTIE_SNS_ENDPOINT.
package snstest

import (
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
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Message is the JSON body SNS posts to an HTTP(S) subscriber.
type Message struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string `json:",omitempty"`
	TopicArn         string
	Subject          *string `json:",omitempty"`
	Message          string
	SubscribeURL     string `json:",omitempty"`
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	UnsubscribeURL   string `json:",omitempty"`
}

// Canonical is the string SNS signs for m (AWS SNS Developer Guide, "Verifying the signatures of
// Amazon SNS messages").
func Canonical(m *Message) string {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	add("Message", m.Message)
	add("MessageId", m.MessageID)
	if m.Type == "Notification" {
		if m.Subject != nil {
			add("Subject", *m.Subject)
		}
	} else {
		add("SubscribeURL", m.SubscribeURL)
	}
	add("Timestamp", m.Timestamp)
	if m.Type != "Notification" {
		add("Token", m.Token)
	}
	add("TopicArn", m.TopicArn)
	add("Type", m.Type)
	return b.String()
}

// SNS is a local SNS: a key pair, its self-signed certificate, and an HTTP server with
//
//	/SimpleNotificationService-0123456789abcdef.pem   the certificate (CertURL)
//	/SimpleNotificationService-00000000.pem           a redirect to it (MovedCertURL)
//	/confirm                              a subscription confirmation (counted in Confirms)
//	/moved-confirm                        a redirect to it
type SNS struct {
	URL          string // the server's base URL, with a trailing slash
	CertURL      string
	MovedCertURL string

	Requests atomic.Int32 // requests of any path
	Fetches  atomic.Int32 // certificate downloads
	Confirms atomic.Int32 // subscription confirmations

	key  *rsa.PrivateKey
	cert atomic.Pointer[[]byte] // the PEM served
}

// New starts an SNS whose certificate is valid from an hour before now to a day after; it stops
// with the test.
func New(t testing.TB, now time.Time) *SNS {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s := &SNS{key: key}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	s.cert.Store(&p)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+certName, func(w http.ResponseWriter, r *http.Request) {
		s.Fetches.Add(1)
		_, _ = w.Write(*s.cert.Load())
	})
	mux.HandleFunc("GET /"+movedCertName, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/"+certName, http.StatusFound)
	})
	mux.HandleFunc("GET /confirm", func(w http.ResponseWriter, r *http.Request) {
		s.Confirms.Add(1)
		_, _ = w.Write([]byte("<ConfirmSubscriptionResponse/>"))
	})
	mux.HandleFunc("GET /moved-confirm", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/confirm", http.StatusFound)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/"
	s.CertURL = srv.URL + "/" + certName
	s.MovedCertURL = srv.URL + "/" + movedCertName
	return s
}

// The certificate's file names, as SNS names them.
const (
	certName      = "SimpleNotificationService-0123456789abcdef.pem"
	movedCertName = "SimpleNotificationService-00000000.pem"
)

// ServeCertificateOf makes s serve o's certificate instead of its own.
func (s *SNS) ServeCertificateOf(o *SNS) { s.cert.Store(o.cert.Load()) }

// Sign fills m's SignatureVersion (version "1" or "2") and Signature, made with s's key, and
// its SigningCertURL when empty.
func (s *SNS) Sign(t testing.TB, m *Message, version string) {
	t.Helper()
	if m.SigningCertURL == "" {
		m.SigningCertURL = s.CertURL
	}
	m.SignatureVersion = version
	msg := []byte(Canonical(m))
	var sig []byte
	var err error
	if version == "1" {
		d := sha1.Sum(msg)
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA1, d[:])
	} else {
		d := sha256.Sum256(msg)
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	m.Signature = base64.StdEncoding.EncodeToString(sig)
}

// Notification is an unsigned Notification from topic carrying message.
func Notification(topic, message string) *Message {
	return &Message{Type: "Notification", MessageID: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", TopicArn: topic,
		Message: message, Timestamp: "2026-06-01T12:00:00.000Z"}
}

// Body is m as SNS posts it.
func Body(t testing.TB, m *Message) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
