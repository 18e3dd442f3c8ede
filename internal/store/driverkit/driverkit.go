// Package driverkit holds the rules of the store contract that do not depend on the database:
// the checks, defaults, JSON columns, cursors and pages, and wake-ups every driver shares, so that
// a conformance case cannot pass on one driver by accident. Only drivers import it.
package driverkit

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/postie/postie/internal/store"
)

// TemplateHead is what a driver knows of a template name inside the transaction that changes it:
// its latest version (deleted versions included) and that version's origin.
type TemplateHead struct {
	Live   bool // the name has a version and is not deleted
	Latest int  // 0 when the name was never stored
	Origin string
}

// CheckTemplate checks the content of a TemplatePut before anything is written.
func CheckTemplate(t store.Template) error {
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
func (h TemplateHead) NextVersion(p store.TemplatePutParams) (int, error) {
	if h.Live && h.Origin != p.Template.Origin && !p.AnyOrigin {
		return 0, fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Template.Name, h.Origin, p.Template.Origin, store.ErrConflict)
	}
	return h.Latest + 1, nil
}

// CheckDelete returns ErrNotFound or ErrConflict when p may not delete a name whose head is h;
// the checks for messages and templates still using it are the driver's (TemplateInUse,
// TemplateIsLayout).
func (h TemplateHead) CheckDelete(p store.TemplateDeleteParams) error {
	switch {
	case !h.Live:
		return fmt.Errorf("template %s: %w", p.Name, store.ErrNotFound)
	case h.Origin != p.Origin && !p.AnyOrigin:
		return fmt.Errorf("template %s is managed by origin %q, not %q: %w", p.Name, h.Origin, p.Origin, store.ErrConflict)
	}
	return nil
}

// TemplateInUse is the conflict of deleting template name while message msgID, made from it, waits
// to be sent.
func TemplateInUse(name, msgID string) error {
	return fmt.Errorf("template %s is used by %s, which is waiting to be sent (scheduled, queued or deferred): %w",
		name, msgID, store.ErrConflict)
}

// TemplateIsLayout is the conflict of deleting template name while template user wraps itself in it.
func TemplateIsLayout(name, user string) error {
	return fmt.Errorf("template %s is the layout of template %s: %w", name, user, store.ErrConflict)
}

// DecodeTemplateJSON fills t's Schema and Locales from their stored JSON (empty: none).
func DecodeTemplateJSON(t *store.Template, schema, locales []byte) error {
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

// SuppressionKey is the form a suppression's address is stored and looked up in: without the
// white space around it, lowercased. (The addresses of messages are only lowercased: LowerDistinct.)
func SuppressionKey(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// CheckSuppression returns s with its Email as SuppressionKey, or an error when it lacks an Email,
// a Reason or a CreatedAt (see SuppressionUpsert).
func CheckSuppression(s store.Suppression) (store.Suppression, error) {
	s.Email = SuppressionKey(s.Email)
	if s.Scope == "" {
		s.Scope = store.ScopeGlobal
	}
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

// SuppressionScopes returns the scopes a SuppressionMatch looks in: those given, without empty
// and repeated ones ("" is global), or global alone when none is given.
func SuppressionScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes)+1)
	for _, sc := range scopes {
		if sc == "" {
			sc = store.ScopeGlobal
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		out = append(out, store.ScopeGlobal)
	}
	return out
}

// ListLimit is the page size of a listing asked for limit rows (store.DefaultListLimit,
// store.MaxListLimit).
func ListLimit(limit int) int {
	if limit <= 0 {
		return store.DefaultListLimit
	}
	return min(limit, store.MaxListLimit)
}

// PrepareAccept fills the defaults of a message MessagesAccept stores at now (a zero CreatedAt
// is now, a zero UpdatedAt is CreatedAt) and checks it: it needs an ID, and its status must be
// queued or scheduled and agree with SendAt, since drivers derive the first timeline event from
// send_at > created_at. i is the message's index in the call, for the error.
func PrepareAccept(m *store.Message, i int, now time.Time) error {
	if m.ID == "" {
		return fmt.Errorf("message %d has no id", i)
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	switch later := m.SendAt.After(m.CreatedAt); {
	case m.Status == store.StatusQueued && !later, m.Status == store.StatusScheduled && later:
	case m.Status == store.StatusQueued || m.Status == store.StatusScheduled:
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

// ErrorCodeForm is the form of a MessageListParams.ErrorCode filter.
type ErrorCodeForm int

// The forms of an ErrorCode filter.
const (
	ErrorCodeNone     ErrorCodeForm = iota // no filter: empty or white space
	ErrorCodeReply                         // a reply code, "550": ErrorCodeFilter.Reply
	ErrorCodeEnhanced                      // an enhanced code, "5.1.1": ErrorCodeFilter.Enhanced
	ErrorCodePrefix                        // a prefix ending in a dot, "5.1.": [Enhanced, Below)
)

// ErrorCodeFilter is a MessageListParams.ErrorCode parsed by ParseErrorCode; each driver turns its
// form into a condition on the generated columns error_code and error_enhanced.
type ErrorCodeFilter struct {
	Form     ErrorCodeForm
	Reply    int    // ErrorCodeReply
	Enhanced string // ErrorCodeEnhanced: the code; ErrorCodePrefix: the prefix, the range's start
	// Below ends the range of an ErrorCodePrefix: the prefix with its final "." replaced by "/",
	// the byte after ".", so that the codes starting with the prefix are exactly those in
	// [Enhanced, Below), a range an index serves (a LIKE would not: SQLite's is case-insensitive).
	Below string
}

// ParseErrorCode parses the ErrorCode filter of a MessageListParams, white space around it ignored:
// a number is a reply code, a code ending in a dot a prefix of enhanced codes ("5.1." matches
// 5.1.1 and 5.1.10), anything else an enhanced code matched exactly ("5.1" matches no 5.1.x).
func ParseErrorCode(code string) ErrorCodeFilter {
	code = strings.TrimSpace(code)
	if code == "" {
		return ErrorCodeFilter{}
	}
	if n, err := strconv.Atoi(code); err == nil {
		return ErrorCodeFilter{Form: ErrorCodeReply, Reply: n}
	}
	if prefix, ok := strings.CutSuffix(code, "."); ok {
		return ErrorCodeFilter{Form: ErrorCodePrefix, Enhanced: code, Below: prefix + "/"}
	}
	return ErrorCodeFilter{Form: ErrorCodeEnhanced, Enhanced: code}
}

// MessageJSON holds the JSON columns of a message row, each nil when its field is empty (nil, or a
// zero-length slice or map), so that empty and absent read back alike (as nil).
type MessageJSON struct {
	Data, To, Cc, Bcc, Headers, Tags, Metadata, Attachments, Recipients, LastError []byte
}

// EncodeMessageJSON returns the JSON columns of m.
func EncodeMessageJSON(m *store.Message) (MessageJSON, error) {
	var err error
	enc := func(v any, empty bool) []byte {
		if err != nil || empty {
			return nil
		}
		var b []byte
		b, err = json.Marshal(v)
		return b
	}
	j := MessageJSON{
		To:          enc(m.To, len(m.To) == 0),
		Cc:          enc(m.Cc, len(m.Cc) == 0),
		Bcc:         enc(m.Bcc, len(m.Bcc) == 0),
		Headers:     enc(m.Headers, len(m.Headers) == 0),
		Tags:        enc(m.Tags, len(m.Tags) == 0),
		Metadata:    enc(m.Metadata, len(m.Metadata) == 0),
		Attachments: enc(m.Attachments, len(m.Attachments) == 0),
		Recipients:  enc(m.Recipients, len(m.Recipients) == 0),
		LastError:   enc(m.LastError, m.LastError == nil),
	}
	if err != nil {
		return MessageJSON{}, fmt.Errorf("message %s: encoding JSON: %w", m.ID, err)
	}
	if len(m.Data) > 0 {
		j.Data = m.Data
	}
	return j, nil
}

// Decode fills m's JSON fields from j. A driver may pass fast, a decoder for the lists of strings
// (addresses, tags) that reports whether it could take them; encoding/json decodes what it does
// not take.
func (j MessageJSON) Decode(m *store.Message, fast func([]byte) ([]string, bool)) error {
	if len(j.Data) > 0 {
		m.Data = json.RawMessage(j.Data)
	}
	for _, f := range []struct {
		src []byte
		dst any
	}{
		{j.To, &m.To}, {j.Cc, &m.Cc}, {j.Bcc, &m.Bcc}, {j.Headers, &m.Headers}, {j.Tags, &m.Tags},
		{j.Metadata, &m.Metadata}, {j.Attachments, &m.Attachments}, {j.Recipients, &m.Recipients},
		{j.LastError, &m.LastError},
	} {
		if err := decodeJSON(f.src, f.dst, fast); err != nil {
			return fmt.Errorf("message %s: decoding JSON: %w", m.ID, err)
		}
	}
	return nil
}

// decodeJSON decodes src into dst, through fast when dst is a list of strings and fast takes src.
// An empty src leaves dst as it is.
func decodeJSON(src []byte, dst any, fast func([]byte) ([]string, bool)) error {
	if len(src) == 0 {
		return nil
	}
	if list, ok := dst.(*[]string); ok && fast != nil {
		if *list, ok = fast(src); ok {
			return nil
		}
	}
	return json.Unmarshal(src, dst)
}

// PrepareFinish checks one outcome of a MessageFinish applied at now and returns it with its
// defaults filled, before the driver writes anything: its status must be valid and not sending; an
// event with a zero At happens at now; a suppression with a zero CreatedAt is created at now and
// must pass CheckSuppression (its Email is then a SuppressionKey). The outcome's Events and
// Suppress are copied, not changed in place.
func PrepareFinish(p store.MessageFinishParams, now time.Time) (store.MessageFinishParams, error) {
	if !p.Status.Valid() || p.Status == store.StatusSending {
		return p, fmt.Errorf("message %s: cannot finish with status %q", p.ID, p.Status)
	}
	p.Events = slices.Clone(p.Events)
	for i := range p.Events {
		if p.Events[i].At.IsZero() {
			p.Events[i].At = now
		}
	}
	if !p.Split && (len(p.Recipients) > 0 || len(p.Pending) > 0) {
		return p, fmt.Errorf("message %s: per-recipient outcomes without Split", p.ID)
	}
	for _, r := range p.Recipients {
		if r.Email == "" || !r.Status.Valid() {
			return p, fmt.Errorf("message %s: recipient %q cannot finish with state %q", p.ID, r.Email, r.Status)
		}
	}
	p.Suppress = slices.Clone(p.Suppress)
	for i, s := range p.Suppress {
		if s.CreatedAt.IsZero() {
			s.CreatedAt = now
		}
		var err error
		if p.Suppress[i], err = CheckSuppression(s); err != nil {
			return p, fmt.Errorf("message %s: %w", p.ID, err)
		}
	}
	return p, nil
}

// RecipientStates returns the recipient states named among statuses (queued, deferred, sent,
// failed, …; not scheduled, sending or partially_failed), for the recipient filter of
// MessageList.
func RecipientStates(statuses []store.Status) []store.RecipientStatus {
	var out []store.RecipientStatus
	for _, s := range statuses {
		if rs := store.RecipientStatus(s); rs.Valid() && !slices.Contains(out, rs) {
			out = append(out, rs)
		}
	}
	return out
}

// SettleSplit completes a split MessageFinish with nothing pending for a driver, given every
// recipient of the message as recorded by it: Status becomes DeriveStatus of their states, and a
// failed or partially_failed message without LastError gets that of its most recently updated
// failed recipient.
func SettleSplit(p *store.MessageFinishParams, rows []store.Recipient) {
	states := make([]store.RecipientStatus, 0, len(rows))
	var last *store.Recipient
	for i, r := range rows {
		if r.Status == "" {
			continue
		}
		states = append(states, r.Status)
		if r.Status == store.RecipientFailed && r.LastError != nil && (last == nil || !r.UpdatedAt.Before(last.UpdatedAt)) {
			last = &rows[i]
		}
	}
	p.Status = store.DeriveStatus(p.Status, states)
	if (p.Status == store.StatusFailed || p.Status == store.StatusPartiallyFailed) && p.LastError == nil && last != nil {
		p.LastError = last.LastError
	}
}

// RecipientsView completes the rows of MessageRecipients for a driver: a row without a state
// (the message is not split) takes the message's (m's Status, Attempts, LastError and SentAt).
// rows come ordered by address.
func RecipientsView(m store.Message, rows []store.Recipient) []store.Recipient {
	for i, r := range rows {
		if r.Status != "" {
			continue
		}
		rows[i] = store.Recipient{Email: r.Email, Status: m.Status.RecipientState(), Attempts: m.Attempts,
			LastError: m.LastError, SentAt: m.SentAt, UpdatedAt: m.UpdatedAt}
	}
	return rows
}

// RetryBatches runs a MessageRetry by filter for a driver, by batches of up to batch messages: find
// returns the ids of one MessageList page (newest first) of the retryable messages matching p.Filter,
// and retry requeues those of a page that are still failed, returning the ids it requeued. Each
// page is requeued before the next is looked for; the keyset (id) only moves down, so a message
// retried and failed again during the call is not retried twice. It returns every id requeued,
// also along with the error that stopped it (the batches before it stay retried).
func RetryBatches(p store.MessageRetryParams, batch int, find func(store.MessageListParams) ([]string, error),
	retry func(ids []string) ([]string, error)) ([]string, error) {
	f := p.Filter
	f.Statuses = []store.Status{store.StatusFailed, store.StatusPartiallyFailed}
	if f.Recipient != "" {
		// The messages where that recipient failed: failed ones, and partially_failed ones
		// where its own state is failed (MessageListParams.Recipient).
		f.Statuses = []store.Status{store.StatusFailed}
	}
	f.Cursor = ""
	f.Limit = batch
	var retried []string
	for {
		ids, err := find(f)
		if err != nil || len(ids) == 0 {
			return retried, err
		}
		done, err := retry(ids)
		if err != nil {
			return retried, err
		}
		retried = append(retried, done...)
		if len(ids) < batch {
			return retried, nil
		}
		f.Cursor = ids[len(ids)-1]
	}
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
	for _, s := range append(streams, store.Streams...) {
		w.Signal(s)
	}
}

// DecodeClaimed fills c's recipients and last error from their JSON columns. A driver may pass
// fast, a decoder for the recipients that reports whether it could take them; encoding/json
// decodes what it does not take.
func DecodeClaimed(c *store.ClaimedMessage, recipients, lastError []byte, fast func([]byte) ([]string, bool)) error {
	if err := decodeJSON(recipients, &c.Recipients, fast); err != nil {
		return fmt.Errorf("message %s: decoding recipients: %w", c.ID, err)
	}
	if err := decodeJSON(lastError, &c.LastError, nil); err != nil {
		return fmt.Errorf("message %s: decoding last error: %w", c.ID, err)
	}
	return nil
}

// SortClaimed puts claimed messages in the order MessageClaim promises: oldest due first, then by
// id. Drivers read the rows unordered (an ORDER BY over rows carrying their MIME costs more).
func SortClaimed(c []store.ClaimedMessage) {
	slices.SortFunc(c, func(a, b store.ClaimedMessage) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
}

// TemplatePage cuts templates read with limit+1 rows to a page of limit and returns the cursor of
// the next page ("" when this one is the last).
func TemplatePage(page []store.Template, limit int) ([]store.Template, string) {
	return cutPage(page, limit, store.TemplateCursor)
}

// SuppressionPage cuts suppressions read with limit+1 rows to a page of limit and returns the
// cursor of the next page (store.SuppressionCursor; "" when this one is the last).
func SuppressionPage(page []store.Suppression, limit int) ([]store.Suppression, string) {
	return cutPage(page, limit, store.SuppressionCursor)
}

// cutPage cuts a listing read with limit+1 rows to a page of limit and returns the cursor of the
// page's last row, or "" when there is no next page.
func cutPage[T any](page []T, limit int, cursor func(last T) string) ([]T, string) {
	if len(page) <= limit {
		return page, ""
	}
	page = page[:limit]
	return page, cursor(page[limit-1])
}
