package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// testAPIKeyListRevoke: the listing an operator reads (GET /v1/api-keys, postie keys list) and
// revocation, which keeps the key listed and found, with its revocation time.
func testAPIKeyListRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	if ks, err := s.APIKeyList(ctx); err != nil || len(ks) != 0 {
		t.Fatalf("APIKeyList on an empty store = %v, %v", ks, err)
	}
	// Created out of order: the listing is oldest first.
	newer := store.APIKey{ID: id.New(id.APIKey), Name: "signup", Hash: bytes.Repeat([]byte{0xb2}, 32), Prefix: "pk_b2",
		CreatedAt: t0.Add(time.Minute), Scopes: []string{"send"}}
	older := store.APIKey{ID: id.New(id.APIKey), Name: "CRM", Hash: bytes.Repeat([]byte{0xa1}, 32), Prefix: "pk_a1",
		CreatedAt: t0, Scopes: []string{"admin"}, SenderDomains: []string{"example.com"}, RateLimit: 0.5, Burst: 1}
	for _, k := range []store.APIKey{newer, older} {
		if err := s.APIKeyCreate(ctx, k); err != nil {
			t.Fatalf("APIKeyCreate: %v", err)
		}
	}
	ks, err := s.APIKeyList(ctx)
	if err != nil {
		t.Fatalf("APIKeyList: %v", err)
	}
	if diff := cmp.Diff([]store.APIKey{older, newer}, ks, cmpOpts); diff != "" {
		t.Errorf("APIKeyList (-want +got):\n%s", diff)
	}
	if got, err := s.APIKeyGet(ctx, newer.ID); err != nil {
		t.Errorf("APIKeyGet: %v", err)
	} else if diff := cmp.Diff(newer, got, cmpOpts); diff != "" {
		t.Errorf("APIKeyGet (-want +got):\n%s", diff)
	}
	_, err = s.APIKeyGet(ctx, "key_unknown")
	wantErr(t, "APIKeyGet(unknown)", err, store.ErrNotFound)

	revokedAt := t0.Add(time.Hour)
	got, err := s.APIKeyRevoke(ctx, older.ID, revokedAt)
	if err != nil {
		t.Fatalf("APIKeyRevoke: %v", err)
	}
	want := older
	want.RevokedAt = revokedAt
	if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
		t.Errorf("APIKeyRevoke (-want +got):\n%s", diff)
	}
	// Revoked, the key is still found (so that it is refused rather than unknown) and listed.
	if got, err := s.APIKeyByHash(ctx, older.Hash); err != nil || !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("APIKeyByHash(revoked) = %+v, %v; want it with RevokedAt %s", got, err, revokedAt)
	}
	// A second revocation keeps the first time.
	if got, err := s.APIKeyRevoke(ctx, older.ID, revokedAt.Add(time.Hour)); err != nil || !got.RevokedAt.Equal(revokedAt) {
		t.Errorf("APIKeyRevoke again = %+v, %v; want RevokedAt still %s", got, err, revokedAt)
	}
	_, err = s.APIKeyRevoke(ctx, "key_unknown", revokedAt)
	wantErr(t, "APIKeyRevoke(unknown)", err, store.ErrNotFound)
	if ks, err := s.APIKeyList(ctx); err != nil || len(ks) != 2 || !ks[0].RevokedAt.Equal(revokedAt) || !ks[1].RevokedAt.IsZero() {
		t.Errorf("APIKeyList after revoke = %+v, %v; want both, the older revoked", ks, err)
	}
	if n, err := s.APIKeyCount(ctx); err != nil || n != 2 {
		t.Errorf("APIKeyCount after revoke = %d, %v; want 2", n, err)
	}
	// Creating a revoked key's hash again (POSTIE_API_KEY at the next start) does not bring it back.
	if err := s.APIKeyCreate(ctx, store.APIKey{ID: id.New(id.APIKey), Hash: older.Hash, CreatedAt: t0, Scopes: []string{"admin"}}); err != nil {
		t.Fatalf("APIKeyCreate of a revoked hash: %v", err)
	}
	if got, err := s.APIKeyByHash(ctx, older.Hash); err != nil || got.ID != older.ID || got.RevokedAt.IsZero() {
		t.Errorf("after re-create APIKeyByHash = %+v, %v; want the revoked key", got, err)
	}
}

// testAPIKeyTouch: last_used_at only moves forward, and a touch of an unknown key is no error.
func testAPIKeyTouch(t *testing.T, s store.Store) {
	ctx := t.Context()
	k := store.APIKey{ID: id.New(id.APIKey), Name: "CRM", Hash: bytes.Repeat([]byte{0xa1}, 32), CreatedAt: t0,
		Scopes: []string{"read"}}
	if err := s.APIKeyCreate(ctx, k); err != nil {
		t.Fatalf("APIKeyCreate: %v", err)
	}
	if got, err := s.APIKeyGet(ctx, k.ID); err != nil || !got.LastUsedAt.IsZero() {
		t.Fatalf("APIKeyGet of an unused key = %+v, %v; want no LastUsedAt", got, err)
	}
	for _, tc := range []struct {
		at, want time.Time
	}{
		{t0.Add(time.Minute), t0.Add(time.Minute)},
		{t0.Add(3 * time.Minute), t0.Add(3 * time.Minute)},
		{t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}, // a late touch (another node's) changes nothing
	} {
		if err := s.APIKeyTouch(ctx, k.ID, tc.at); err != nil {
			t.Fatalf("APIKeyTouch(%s): %v", tc.at, err)
		}
		if got, err := s.APIKeyGet(ctx, k.ID); err != nil || !got.LastUsedAt.Equal(tc.want) {
			t.Errorf("after APIKeyTouch(%s) LastUsedAt = %s, %v; want %s", tc.at, got.LastUsedAt, err, tc.want)
		}
	}
	if err := s.APIKeyTouch(ctx, "key_unknown", t0); err != nil {
		t.Errorf("APIKeyTouch(unknown) = %v; want nil", err)
	}
}
