package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// The Standard Webhooks headers every payload is sent with.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a signing secret (Standard Webhooks' symmetric secret serialization).
const secretPrefix = "whsec_"

// secretBytes is the length of a generated secret: the spec asks for 24 to 64 random bytes.
const secretBytes = 24

// RotationOverlap is how long the previous secret still signs after a rotation, so receivers
// can move to the new one without losing a delivery.
const RotationOverlap = 24 * time.Hour

// NewSecret returns a new signing secret: "whsec_" and the standard base64 of 24 random bytes.
func NewSecret() string {
	var b [secretBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics rather)
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// MessageID is the webhook-id of a delivery: "whd_" and its number. It never changes, through
// retries and replays, so receivers deduplicate on it.
func MessageID(delivery int64) string { return "whd_" + strconv.FormatInt(delivery, 10) }

// secretKey decodes a secret's key: the base64 after "whsec_" (padded or not).
func secretKey(secret string) ([]byte, error) {
	b64 := strings.TrimRight(strings.TrimPrefix(secret, secretPrefix), "=")
	key, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("webhook secret: not whsec_ and base64")
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature of one payload: "v1," and the base64 of the
// HMAC-SHA256, keyed by the secret's decoded bytes, of "msgID.timestamp.body", the timestamp in
// Unix seconds.
func Sign(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := secretKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Signatures is the webhook-signature header of a payload for endpoint e at now: the signature
// by its secret and, while a rotation's overlap lasts, by its previous secret too, separated by
// a space (receivers accept any one that verifies).
func Signatures(e store.WebhookEndpoint, msgID string, now time.Time, body []byte) (string, error) {
	sig, err := Sign(e.Secret, msgID, now, body)
	if err != nil {
		return "", err
	}
	if e.PreviousSecret != "" && now.Before(e.PreviousUntil) {
		prev, err := Sign(e.PreviousSecret, msgID, now, body)
		if err != nil {
			return "", err
		}
		sig += " " + prev
	}
	return sig, nil
}
