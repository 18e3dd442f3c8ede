package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/postie/postie/internal/store"
)

// The Standard Webhooks specification's published test vector (its reference libraries'
// test_sign_function).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignVector(t *testing.T) {
	t.Parallel()
	got, err := Sign(vectorSecret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vectorSignature {
		t.Fatalf("Sign = %s, want the spec's %s", got, vectorSignature)
	}
	// The independent verifier agrees with the vector too, so it can judge what the sender signs.
	if !verify(vectorSecret, vectorID, fmt.Sprint(vectorTimestamp), vectorSignature, []byte(vectorBody)) {
		t.Fatal("the test verifier refuses the spec's vector")
	}
	if _, err := Sign("whsec_not base64!", vectorID, time.Unix(vectorTimestamp, 0), nil); err == nil {
		t.Fatal("a secret that is not base64 signs")
	}
}

// verify is a test-only implementation of the spec's verification, written from the
// specification rather than from Sign: any of the space-separated v1 signatures may match.
func verify(secret, msgID, timestamp, header string, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + timestamp + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(header) {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := NewSecret(), NewSecret()
	if a == b || !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secrets %q %q", a, b)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if err != nil || len(key) != 24 {
		t.Fatalf("secret %q: %d bytes, %v (the spec asks for 24 to 64)", a, len(key), err)
	}
}

func TestSignaturesDuringRotation(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	oldSecret, newSecret := NewSecret(), NewSecret()
	e := store.WebhookEndpoint{Secret: newSecret, PreviousSecret: oldSecret, PreviousUntil: now.Add(RotationOverlap)}
	body := []byte(`{"type":"message.sent"}`)
	for _, tc := range []struct {
		name     string
		at       time.Time
		oldValid bool
	}{
		{"within the overlap both sign", now, true},
		{"after the overlap only the new one", now.Add(RotationOverlap), false},
	} {
		h, err := Signatures(e, "whd_7", tc.at, body)
		if err != nil {
			t.Fatal(err)
		}
		ts := fmt.Sprint(tc.at.Unix())
		if !verify(newSecret, "whd_7", ts, h, body) {
			t.Errorf("%s: the new secret does not verify %q", tc.name, h)
		}
		if got := verify(oldSecret, "whd_7", ts, h, body); got != tc.oldValid {
			t.Errorf("%s: the old secret verifies: %v, want %v (%q)", tc.name, got, tc.oldValid, h)
		}
	}
}

func TestParseDeliveryID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]int64{"whd_1": 1, "whd_42": 42, "whd_9223372036854775807": 1<<63 - 1,
		"whd_0": 0, "whd_": 0, "whd_01": 0, "42": 0, "whd_-1": 0, "whd_x": 0, "whd_99999999999999999999": 0} {
		n, ok := ParseDeliveryID(s)
		if n != want || ok != (want > 0) {
			t.Errorf("ParseDeliveryID(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
	if MessageID(42) != "whd_42" {
		t.Fatal(MessageID(42))
	}
}
