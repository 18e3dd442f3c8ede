package store

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The rules below are the parts of the Store contract that do not depend on the database: both
// drivers call them, so that the conformance suite's cases cannot pass on one driver by accident.

// TemplateHead is what a driver knows of a template name inside the transaction that changes it:
// its latest version (deleted versions included) and that version's origin.
type TemplateHead struct {
	Live   bool // the name has a version and is not deleted
	Latest int  // 0 when the name was never stored
	Origin string
}

// CheckTemplate checks the content of a TemplatePut before anything is written.
func CheckTemplate(t Template) error {
	if t.Name == "" || t.Origin == "" {
		return errors.New("TemplatePut needs a Name and an Origin")
	}
	if len(t.Schema) > 0 && !json.Valid(t.Schema) {
		return fmt.Errorf("template %s: the schema is not JSON", t.Name)
	}
	return nil
}

// NextVersion returns the version a put of p stores under a name whose head is h, or ErrConflict
// when the name is live with another origin (see TemplatePutParams.AnyOrigin).
func (h TemplateHead) NextVersion(p TemplatePutParams) (int, error) {
	if h.Live && h.Origin != p.Template.Origin && !p.AnyOrigin {
		return 0, fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Template.Name, h.Origin, p.Template.Origin, ErrConflict)
	}
	return h.Latest + 1, nil
}

// CheckDelete returns ErrNotFound or ErrConflict when p may not delete a name whose head is h;
// the checks for messages and templates still using it are the driver's (TemplateInUse,
// TemplateIsLayout).
func (h TemplateHead) CheckDelete(p TemplateDeleteParams) error {
	switch {
	case !h.Live:
		return fmt.Errorf("template %s: %w", p.Name, ErrNotFound)
	case h.Origin != p.Origin && !p.AnyOrigin:
		return fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Name, h.Origin, p.Origin, ErrConflict)
	}
	return nil
}

// TemplateInUse is the conflict of deleting template name while message msgID, made from it, waits
// to be sent.
func TemplateInUse(name, msgID string) error {
	return fmt.Errorf("template %s is used by %s, which is waiting to be sent (scheduled, queued or deferred): %w",
		name, msgID, ErrConflict)
}

// TemplateIsLayout is the conflict of deleting template name while template user wraps itself in it.
func TemplateIsLayout(name, user string) error {
	return fmt.Errorf("template %s is the layout of template %s: %w", name, user, ErrConflict)
}

// DecodeTemplateJSON fills t's Schema and Locales from their stored JSON (empty: none).
func DecodeTemplateJSON(t *Template, schema, locales []byte) error {
	if len(schema) > 0 {
		t.Schema = json.RawMessage(schema)
	}
	if len(locales) > 0 {
		if err := json.Unmarshal(locales, &t.Locales); err != nil {
			return fmt.Errorf("template %s v%d: decoding locales: %w", t.Name, t.Version, err)
		}
	}
	return nil
}

// CheckSuppression returns s with its Email lowercased and trimmed, or an error when it lacks an
// Email, a Reason or a CreatedAt (see SuppressionUpsert).
func CheckSuppression(s Suppression) (Suppression, error) {
	s.Email = strings.ToLower(strings.TrimSpace(s.Email))
	switch {
	case s.Email == "":
		return s, errors.New("suppression without an email")
	case s.Reason == "":
		return s, fmt.Errorf("suppression of %s: no reason", s.Email)
	case s.CreatedAt.IsZero():
		return s, fmt.Errorf("suppression of %s: no CreatedAt", s.Email)
	}
	return s, nil
}

// Listing limits shared by the drivers' listings.
const (
	DefaultListLimit = 50
	MaxListLimit     = 1000
)

// ListLimit is the page size of a listing asked for limit rows.
func ListLimit(limit int) int {
	if limit <= 0 {
		return DefaultListLimit
	}
	return min(limit, MaxListLimit)
}

// PrepareAccept fills the defaults of a message MessagesAccept stores at now (a zero CreatedAt
// is now, a zero UpdatedAt is CreatedAt) and checks it: it needs an ID, and its status must be
// queued or scheduled and agree with SendAt, since drivers derive the first timeline event from
// send_at > created_at. i is the message's index in the call, for the error.
func PrepareAccept(m *Message, i int, now time.Time) error {
	if m.ID == "" {
		return fmt.Errorf("message %d has no id", i)
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	switch later := m.SendAt.After(m.CreatedAt); {
	case m.Status == StatusQueued && !later, m.Status == StatusScheduled && later:
	case m.Status == StatusQueued || m.Status == StatusScheduled:
		return fmt.Errorf("message %s: status %s does not agree with send_at %v (created %v)",
			m.ID, m.Status, m.SendAt, m.CreatedAt)
	default:
		return fmt.Errorf("message %s: cannot accept status %q", m.ID, m.Status)
	}
	if m.UpdatedAt.IsZero() {
		m.UpdatedAt = m.CreatedAt
	}
	return nil
}

// LowerDistinct lowercases addresses and drops empty and repeated ones, keeping their order: the
// rows of a message's recipient filter, the addresses of a SuppressionMatch.
func LowerDistinct(addrs []string) []string {
	out := make([]string, 0, len(addrs))
	seen := make(map[string]struct{}, len(addrs))
	for _, a := range addrs {
		a = strings.ToLower(a)
		if _, ok := seen[a]; a != "" && !ok {
			seen[a] = struct{}{}
			out = append(out, a)
		}
	}
	return out
}

// Wakers holds the wake-up channel of each stream (capacity 1, so signals coalesce) behind a
// driver's Wakeups. The zero value is ready to use.
type Wakers struct {
	mu    sync.Mutex
	chans map[string]chan struct{}
}

// Chan returns the stream's channel, creating it on first use.
func (w *Wakers) Chan(stream string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.chans[stream]
	if !ok {
		if w.chans == nil {
			w.chans = map[string]chan struct{}{}
		}
		ch = make(chan struct{}, 1)
		w.chans[stream] = ch
	}
	return ch
}

// Signal wakes the stream's workers without blocking.
func (w *Wakers) Signal(stream string) {
	select {
	case w.Chan(stream) <- struct{}{}:
	default:
	}
}

// SignalAll wakes the workers of every known stream and of every stream asked for so far.
func (w *Wakers) SignalAll() {
	w.mu.Lock()
	streams := slices.Collect(maps.Keys(w.chans))
	w.mu.Unlock()
	for _, s := range append(streams, Streams...) {
		w.Signal(s)
	}
}

// DecodeClaimed fills c's recipients and last error from their JSON columns. A driver may pass
// fast, a decoder for the recipients that reports whether it could take them; encoding/json
// decodes what it does not take.
func DecodeClaimed(c *ClaimedMessage, recipients, lastError []byte, fast func([]byte) ([]string, bool)) error {
	if len(recipients) > 0 {
		var ok bool
		if fast != nil {
			c.Recipients, ok = fast(recipients)
		}
		if !ok {
			if err := json.Unmarshal(recipients, &c.Recipients); err != nil {
				return fmt.Errorf("message %s: decoding recipients: %w", c.ID, err)
			}
		}
	}
	if len(lastError) > 0 {
		if err := json.Unmarshal(lastError, &c.LastError); err != nil {
			return fmt.Errorf("message %s: decoding last error: %w", c.ID, err)
		}
	}
	return nil
}

// SortClaimed puts claimed messages in the order MessageClaim promises: oldest due first, then by
// id. Drivers read the rows unordered (an ORDER BY over rows carrying their MIME costs more).
func SortClaimed(c []ClaimedMessage) {
	slices.SortFunc(c, func(a, b ClaimedMessage) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
}

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

// TemplatePage cuts templates read with limit+1 rows to a page of limit and returns the cursor of
// the next page ("" when this one is the last).
func TemplatePage(page []Template, limit int) ([]Template, string) {
	if len(page) <= limit {
		return page, ""
	}
	page = page[:limit]
	return page, base64.RawURLEncoding.EncodeToString([]byte(page[limit-1].Name))
}

// SuppressionCursor encodes a SuppressionList keyset position, the last row of a page, as
// "MICROS|EMAIL" in base64url.
func SuppressionCursor(last Suppression) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.CreatedAt.UnixMicro(), 10) + "|" + last.Email))
}

// SuppressionCursorAfter decodes a SuppressionCursor into its creation time and address.
func SuppressionCursorAfter(cursor string) (time.Time, string, error) {
	bad := fmt.Errorf("suppression cursor %q: %w", cursor, ErrBadCursor)
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", bad
	}
	// The number comes first and has no "|", so the first "|" ends it whatever the address holds.
	num, email, ok := strings.Cut(string(b), "|")
	us, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || email == "" {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(us).UTC(), email, nil
}
