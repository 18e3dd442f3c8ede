package audience

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var tokNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testKeys(t *testing.T, keys ...Key) *Keys {
	t.Helper()
	ks, err := NewKeys(keys, bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func mkKey(id string, b byte) Key { return Key{ID: id, Secret: bytes.Repeat([]byte{b}, 32)} }

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	ks := testKeys(t, mkKey("k1", 1))
	for _, tok := range []Token{
		{Purpose: PurposeUnsubscribe, ContactID: "ctc_01jd8x", ListID: "lst_01jd8y", MessageID: "msg_01jd8z"},
		{Purpose: PurposeUnsubscribe, Address: "ann@example.com", MessageID: "msg_01jd8z"},
		{Purpose: PurposePreferences, ContactID: "ctc_01jd8x"},
		{Purpose: PurposeConfirm, ContactID: "ctc_01jd8x", ListID: "lst_1", Expires: tokNow.Add(ConfirmValidity)},
	} {
		s := ks.Seal(tok)
		if strings.ContainsAny(s, "+/=") || strings.Contains(s, "ann") || strings.Contains(s, "ctc_") {
			t.Errorf("token %q is not opaque URL-safe text", s)
		}
		got, err := ks.Open(s, tokNow)
		if err != nil || got != tok {
			t.Errorf("Open(Seal(%+v)) = %+v, %v", tok, got, err)
		}
	}
}

// Every change of a token, every cut, and a key that is not ours is refused the same way.
func TestTokenTampering(t *testing.T) {
	t.Parallel()
	ks := testKeys(t, mkKey("k1", 1))
	s := ks.Seal(Token{Purpose: PurposeUnsubscribe, ContactID: "ctc_a", ListID: "lst_b", MessageID: "msg_c"})
	raw, _ := base64.RawURLEncoding.DecodeString(s)
	for i := range raw {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(raw)
			b[i] ^= bit
			if _, err := ks.Open(base64.RawURLEncoding.EncodeToString(b), tokNow); !errors.Is(err, ErrBadToken) {
				t.Fatalf("byte %d flipped (%#x): error %v, want ErrBadToken", i, bit, err)
			}
		}
	}
	for n := range len(s) {
		if _, err := ks.Open(s[:n], tokNow); !errors.Is(err, ErrBadToken) {
			t.Fatalf("truncated to %d: error %v, want ErrBadToken", n, err)
		}
	}
	for _, bad := range []string{s + "A", s + "AA", "!!!", strings.Repeat("A", 4000), ""} {
		if _, err := ks.Open(bad, tokNow); !errors.Is(err, ErrBadToken) {
			t.Errorf("Open(%.20q…): error %v, want ErrBadToken", bad, err)
		}
	}
	// Signed by a key we do not hold, even under the same id.
	foreign := testKeys(t, mkKey("k1", 2)).Seal(Token{Purpose: PurposeUnsubscribe, ContactID: "ctc_a"})
	if _, err := ks.Open(foreign, tokNow); !errors.Is(err, ErrBadToken) {
		t.Errorf("foreign key: error %v, want ErrBadToken", err)
	}
	other := testKeys(t, mkKey("k9", 1)).Seal(Token{Purpose: PurposeUnsubscribe, ContactID: "ctc_a"})
	if _, err := ks.Open(other, tokNow); !errors.Is(err, ErrBadToken) {
		t.Errorf("unknown key id: error %v, want ErrBadToken", err)
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	ks := testKeys(t, mkKey("k1", 1))
	s := ks.Seal(Token{Purpose: PurposeConfirm, ContactID: "ctc_a", ListID: "lst_b", Expires: tokNow.Add(ConfirmValidity)})
	if _, err := ks.Open(s, tokNow.Add(ConfirmValidity-time.Second)); err != nil {
		t.Errorf("before expiry: %v", err)
	}
	if _, err := ks.Open(s, tokNow.Add(ConfirmValidity)); !errors.Is(err, ErrExpiredToken) {
		t.Errorf("at expiry: error %v, want ErrExpiredToken", err)
	}
}

// After a rotation the new key signs and the old one still verifies; once the old key is
// dropped, its tokens stop working.
func TestTokenRotation(t *testing.T) {
	t.Parallel()
	tok := Token{Purpose: PurposeUnsubscribe, ContactID: "ctc_a", MessageID: "msg_1"}
	old := testKeys(t, mkKey("k1", 1)).Seal(tok)
	rotated := testKeys(t, mkKey("k2", 2), mkKey("k1", 1))
	if rotated.SigningKeyID() != "k2" {
		t.Fatalf("signing key %s, want k2", rotated.SigningKeyID())
	}
	if got, err := rotated.Open(old, tokNow); err != nil || got != tok {
		t.Errorf("old token after rotation = %+v, %v", got, err)
	}
	fresh := rotated.Seal(tok)
	if got, err := testKeys(t, mkKey("k2", 2)).Open(fresh, tokNow); err != nil || got != tok {
		t.Errorf("new token = %+v, %v", got, err)
	}
	if _, err := testKeys(t, mkKey("k2", 2)).Open(old, tokNow); !errors.Is(err, ErrBadToken) {
		t.Errorf("old token once k1 is dropped: error %v, want ErrBadToken", err)
	}
}

func TestNewKeysRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		keys []Key
	}{
		{"none", nil},
		{"short", []Key{{ID: "k", Secret: []byte("short")}}},
		{"no id", []Key{{Secret: bytes.Repeat([]byte{1}, 32)}}},
		{"duplicate", []Key{mkKey("k", 1), mkKey("k", 2)}},
	} {
		if _, err := NewKeys(tc.keys, bytes.Repeat([]byte{9}, 32)); err == nil {
			t.Errorf("%s: NewKeys accepted %v", tc.name, tc.keys)
		}
	}
}
