package store

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Listing limits: a listing's Limit defaults to DefaultListLimit and is capped at MaxListLimit.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// The cursors of TemplateList and SuppressionList are opaque to callers, but the API checks one
// before it reaches the store, so their form is part of the contract.

// TemplateCursorAfter decodes a TemplateList cursor: the name the previous page ended with, in
// base64url ("" for the first page).
func TemplateCursorAfter(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("template cursor %q: %w", cursor, ErrBadCursor)
	}
	return string(b), nil
}

// TemplateCursor encodes a TemplateList keyset position, the last row of a page: its name in
// base64url.
func TemplateCursor(last Template) string {
	return base64.RawURLEncoding.EncodeToString([]byte(last.Name))
}

// SuppressionCursor encodes a SuppressionList keyset position, the last row of a page, as
// "MICROS|SCOPE|EMAIL" in base64url.
func SuppressionCursor(last Suppression) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) +
		"|" + cmp.Or(last.Scope, ScopeGlobal) + "|" + last.Email))
}

// SuppressionCursorAfter decodes a SuppressionCursor into its creation time, address and scope.
func SuppressionCursorAfter(cursor string) (created time.Time, email, scope string, err error) {
	bad := fmt.Errorf("suppression cursor %q: %w", cursor, ErrBadCursor)
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", "", bad
	}
	// The number and the scope come first and have no "|", so the first two "|" end them
	// whatever the address holds.
	num, rest, ok1 := strings.Cut(string(b), "|")
	scope, email, ok2 := strings.Cut(rest, "|")
	us, err := strconv.ParseInt(num, 10, 64)
	if !ok1 || !ok2 || err != nil || email == "" || scope == "" {
		return time.Time{}, "", "", bad
	}
	return time.UnixMicro(us).UTC(), email, scope, nil
}

// ContactCursor encodes a ContactList keyset position, the last contact of a page: its id in
// base64url.
func ContactCursor(last Contact) string {
	return base64.RawURLEncoding.EncodeToString([]byte(last.ID))
}

// ContactCursorAfter decodes a ContactCursor into the id the previous page ended with ("" for
// the first page).
func ContactCursorAfter(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || !strings.HasPrefix(string(b), "ctc_") {
		return "", fmt.Errorf("contact cursor %q: %w", cursor, ErrBadCursor)
	}
	return string(b), nil
}
