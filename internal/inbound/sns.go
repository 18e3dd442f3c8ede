package inbound

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Amazon SNS delivers SES notifications as HTTP POSTs of a signed JSON envelope. The signature is
// an RSA signature (SHA1withRSA for SignatureVersion 1, SHA256withRSA for 2) over a canonical
// string of some of the envelope's fields, made with the key of a certificate SNS serves from
// SigningCertURL. A valid signature proves only that some SNS topic sent the message, so the
// topic is checked against the allow-list before anything else, and the certificate is only
// fetched from the SNS host of the topic's own region (https://sns.{region}.amazonaws.com/…),
// following no redirect.

// snsEnvelope is the JSON body SNS posts.
type snsEnvelope struct {
	Type             string
	MessageID        string `json:"MessageId"`
	Token            string
	TopicArn         string
	Subject          *string // absent and empty are different in the canonical string
	Message          string
	SubscribeURL     string
	Timestamp        string
	SignatureVersion string
	Signature        string
	SigningCertURL   string
	UnsubscribeURL   string
}

// SNS message types.
const (
	snsNotification         = "Notification"
	snsSubscription         = "SubscriptionConfirmation"
	snsUnsubscribeConfirmed = "UnsubscribeConfirmation"
)

// Errors of SNS verification; the HTTP API answers each with 403 (a forgery is not retried).
var (
	// ErrSNSTopic: the TopicArn is not in POSTIE_SES_TOPIC_ARNS.
	ErrSNSTopic = errors.New("the SNS topic is not one POSTIE_SES_TOPIC_ARNS allows")
	// ErrSNSSignature: the signature, its version or its certificate URL is not acceptable.
	ErrSNSSignature = errors.New("the SNS signature does not verify")
)

// snsHost is the host SNS serves certificates and subscription confirmations from for a topic,
// from its ARN (arn:{partition}:sns:{region}:{account}:{name}); "" when the ARN has no region.
func snsHost(topicARN string) string {
	parts := strings.Split(topicARN, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[3] == "" {
		return ""
	}
	region := parts[3]
	for _, c := range region {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	if parts[1] == "aws-cn" {
		return "sns." + region + ".amazonaws.com.cn"
	}
	return "sns." + region + ".amazonaws.com"
}

// snsURLAllowed reports whether u, a certificate or subscription URL of a message from topicARN,
// may be fetched: https on the topic region's SNS host, or, when endpoint is set (tests), under
// endpoint (same scheme and host, and a path below endpoint's).
func snsURLAllowed(raw, topicARN, endpoint string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil || u.Opaque != "" {
		return false
	}
	if endpoint != "" {
		e, err := url.Parse(endpoint)
		if err != nil {
			return false
		}
		base := strings.TrimSuffix(e.Path, "/") + "/"
		return u.Scheme == e.Scheme && u.Host == e.Host && strings.HasPrefix(u.Path, base)
	}
	host := snsHost(topicARN)
	// u.Host, not Hostname(): a port is not SNS's.
	return host != "" && u.Scheme == "https" && strings.EqualFold(u.Host, host)
}

// snsCertName is the file name of an SNS signing certificate (as AWS's own SDK validators
// require): anything else on the SNS host is not fetched.
var snsCertName = regexp.MustCompile(`^SimpleNotificationService-[0-9a-f]+\.pem$`)

// snsCertURL returns the URL to fetch a signing certificate from, and to cache it by, when raw
// may be one for topicARN (snsURLAllowed): its path must be /SimpleNotificationService-{hex}.pem
// (under endpoint when set), with no query or fragment. The URL returned is raw normalized (host
// in lower case), so one certificate is one cache entry however its URL is spelled.
func snsCertURL(raw, topicARN, endpoint string) (string, bool) {
	if !snsURLAllowed(raw, topicARN, endpoint) {
		return "", false
	}
	u, _ := url.Parse(raw) // parsed by snsURLAllowed
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		return "", false
	}
	base := "/"
	if endpoint != "" {
		e, _ := url.Parse(endpoint) // parsed by snsURLAllowed
		base = strings.TrimSuffix(e.Path, "/") + "/"
	}
	name, ok := strings.CutPrefix(u.Path, base)
	if !ok || !snsCertName.MatchString(name) {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host) + base + name, true
}

// maxFutureTimestamp is how far in the future a message's Timestamp may be. Old messages are
// not refused (SNS retries a failed delivery for up to hours): a replayed notification is
// deduplicated by its reports' keys (SES's feedbackId, or its message id).
const maxFutureTimestamp = time.Hour

// canonical is the string SNS signs for a message of e's type (AWS SNS Developer Guide,
// "Verifying the signatures of Amazon SNS messages"): each field name and value on its own line,
// in this order, Subject only when present.
func (e *snsEnvelope) canonical() (string, bool) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	switch e.Type {
	case snsNotification:
		add("Message", e.Message)
		add("MessageId", e.MessageID)
		if e.Subject != nil {
			add("Subject", *e.Subject)
		}
		add("Timestamp", e.Timestamp)
		add("TopicArn", e.TopicArn)
		add("Type", e.Type)
	case snsSubscription, snsUnsubscribeConfirmed:
		add("Message", e.Message)
		add("MessageId", e.MessageID)
		add("SubscribeURL", e.SubscribeURL)
		add("Timestamp", e.Timestamp)
		add("Token", e.Token)
		add("TopicArn", e.TopicArn)
		add("Type", e.Type)
	default:
		return "", false
	}
	return b.String(), true
}

// maxCertSize bounds a signing certificate's download (SNS's are about 2 KB).
const maxCertSize = 64 << 10

// maxCachedCerts bounds the certificate cache (SNS rotates its certificate rarely).
const maxCachedCerts = 64

// snsVerifier checks SNS signatures, fetching and caching the signing certificates.
type snsVerifier struct {
	client   *http.Client
	endpoint string
	now      func() time.Time

	mu    sync.Mutex
	certs map[string]*x509.Certificate // by URL, as snsCertURL returns it
}

// snsClient is an HTTP client for SNS: a timeout, and no redirect followed (a 3xx is a failure).
func snsClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// verify checks e's signature. The caller has checked the topic.
func (v *snsVerifier) verify(ctx context.Context, e *snsEnvelope) error {
	var hash crypto.Hash
	switch e.SignatureVersion {
	case "1":
		hash = crypto.SHA1
	case "2":
		hash = crypto.SHA256
	default:
		return fmt.Errorf("%w: SignatureVersion %q is neither 1 nor 2", ErrSNSSignature, e.SignatureVersion)
	}
	msg, ok := e.canonical()
	if !ok {
		return fmt.Errorf("%w: unknown message Type %q", ErrSNSSignature, e.Type)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil || len(sig) == 0 {
		return fmt.Errorf("%w: Signature is not base64", ErrSNSSignature)
	}
	ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil {
		return fmt.Errorf("%w: Timestamp %q is not an RFC 3339 time", ErrSNSSignature, clip(e.Timestamp))
	}
	if ts.After(v.now().Add(maxFutureTimestamp)) {
		return fmt.Errorf("%w: Timestamp %s is more than %s in the future", ErrSNSSignature, ts.Format(time.RFC3339), maxFutureTimestamp)
	}
	certURL, ok := snsCertURL(e.SigningCertURL, e.TopicArn, v.endpoint)
	if !ok {
		return fmt.Errorf("%w: SigningCertURL %q is not a certificate on the topic's SNS host", ErrSNSSignature, clip(e.SigningCertURL))
	}
	cert, err := v.cert(ctx, certURL)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSNSSignature, err)
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: the certificate's key is not RSA", ErrSNSSignature)
	}
	var digest []byte
	if hash == crypto.SHA1 {
		d := sha1.Sum([]byte(msg))
		digest = d[:]
	} else {
		d := sha256.Sum256([]byte(msg))
		digest = d[:]
	}
	if err := rsa.VerifyPKCS1v15(key, hash, digest, sig); err != nil {
		return fmt.Errorf("%w: %v", ErrSNSSignature, err)
	}
	return nil
}

// cert returns the certificate at u (from snsCertURL), from the cache or downloaded. A certificate outside its
// validity period is refused (and not kept).
func (v *snsVerifier) cert(ctx context.Context, u string) (*x509.Certificate, error) {
	now := v.now()
	v.mu.Lock()
	c, ok := v.certs[u]
	v.mu.Unlock()
	if ok && now.Before(c.NotAfter) {
		return c, nil
	}
	c, err := v.fetchCert(ctx, u)
	if err != nil {
		return nil, err
	}
	if now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, fmt.Errorf("the signing certificate is not valid now (%s to %s)", c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339))
	}
	v.mu.Lock()
	if len(v.certs) >= maxCachedCerts {
		for k := range v.certs { // drop any one: the cache only saves downloads
			delete(v.certs, k)
			break
		}
	}
	v.certs[u] = c
	v.mu.Unlock()
	return c, nil
}

func (v *snsVerifier) fetchCert(ctx context.Context, u string) (*x509.Certificate, error) {
	body, err := snsGet(ctx, v.client, u, maxCertSize)
	if err != nil {
		return nil, fmt.Errorf("fetching the signing certificate: %v", err)
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("the signing certificate URL serves no PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the signing certificate does not parse: %v", err)
	}
	return c, nil
}

// snsGet GETs u with client (which follows no redirect) and returns at most limit octets of a
// 200 response's body; anything else is an error.
func snsGet(ctx context.Context, client *http.Client, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("GET %s: %s (redirects are not followed)", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %v", u, err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: larger than %d octets", u, limit)
	}
	return body, nil
}
