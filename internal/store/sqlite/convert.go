package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// micros encodes a time as unix microseconds UTC, with the zero time as 0 (for NOT NULL columns).
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// nullMicros encodes a time as unix microseconds UTC, with the zero time as NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros decodes micros and nullMicros (NULL scans as 0).
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// nullString stores "" as NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// jsonText encodes v as JSON text, or NULL when v is empty (nil or zero-length slice or map), so
// that empty and absent read back alike (as nil).
func jsonText(v any, empty bool) (any, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// rawJSONText stores a JSON document as TEXT, or NULL when there is none.
func rawJSONText(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// messageArgs returns the values of messageColumns for m.
func messageArgs(m *store.Message) ([]any, error) {
	j, err := driverkit.EncodeMessageJSON(m)
	if err != nil {
		return nil, err
	}
	return []any{
		m.ID, m.Stream, string(m.Status), m.From, rawJSONText(j.To), rawJSONText(j.Cc), rawJSONText(j.Bcc), m.ReplyTo,
		m.Subject, m.Template, int64(m.TemplateVersion), m.Locale, rawJSONText(j.Data), rawJSONText(j.Headers),
		rawJSONText(j.Tags), rawJSONText(j.Metadata), rawJSONText(j.Attachments), m.EnvelopeFrom,
		rawJSONText(j.Recipients), int64(m.Size), int64(m.Attempts), int64(m.MaxAttempts), micros(m.NextAttemptAt),
		m.LeaseOwner, nullMicros(m.LeaseUntil), rawJSONText(j.LastError),
		m.ProviderID, m.MessageID, m.IdempotencyKey, m.APIKeyID, nullString(m.CampaignID),
		micros(m.CreatedAt), nullMicros(m.SendAt), nullMicros(m.SentAt),
		nullMicros(m.ExpiresAt), micros(m.UpdatedAt), nullString(m.ListID), nullString(m.RunID),
		nullString(m.EventID), nullString(m.TriggerID),
	}, nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanMessage reads one row of messageColumns.
func scanMessage(sc scanner) (store.Message, error) {
	var (
		m                                            store.Message
		j                                            driverkit.MessageJSON
		status                                       string
		templateVersion, size, attempts, maxAttempts int64
		nextAttempt, leaseUntil, created, sendAt     sql.NullInt64
		sentAt, expiresAt, updated                   sql.NullInt64
		campaignID, listID, runID, eventID, trigID   sql.NullString
	)
	err := sc.Scan(&m.ID, &m.Stream, &status, &m.From, &j.To, &j.Cc, &j.Bcc, &m.ReplyTo,
		&m.Subject, &m.Template, &templateVersion, &m.Locale, &j.Data, &j.Headers, &j.Tags, &j.Metadata,
		&j.Attachments, &m.EnvelopeFrom,
		&j.Recipients, &size, &attempts, &maxAttempts, &nextAttempt, &m.LeaseOwner, &leaseUntil,
		&j.LastError,
		&m.ProviderID, &m.MessageID, &m.IdempotencyKey, &m.APIKeyID, &campaignID,
		&created, &sendAt, &sentAt,
		&expiresAt, &updated, &listID, &runID, &eventID, &trigID)
	if err != nil {
		return store.Message{}, err
	}
	m.Status = store.Status(status)
	m.TemplateVersion = int(templateVersion)
	m.Size = int(size)
	m.Attempts = int(attempts)
	m.MaxAttempts = int(maxAttempts)
	m.CampaignID = campaignID.String
	m.ListID = listID.String
	m.RunID = runID.String
	m.EventID = eventID.String
	m.TriggerID = trigID.String
	m.NextAttemptAt = fromMicros(nextAttempt.Int64)
	m.LeaseUntil = fromMicros(leaseUntil.Int64)
	m.CreatedAt = fromMicros(created.Int64)
	m.SendAt = fromMicros(sendAt.Int64)
	m.SentAt = fromMicros(sentAt.Int64)
	m.ExpiresAt = fromMicros(expiresAt.Int64)
	m.UpdatedAt = fromMicros(updated.Int64)
	if err := j.Decode(&m, plainStrings); err != nil {
		return store.Message{}, err
	}
	return m, nil
}

// scanClaimed reads one row of claimedColumns and the raw MIME.
func scanClaimed(sc scanner) (store.ClaimedMessage, error) {
	var (
		c                                  store.ClaimedMessage
		recipients, lastError              []byte
		attempts, maxAttempts, nextAttempt int64
		expiresAt                          sql.NullInt64
	)
	err := sc.Scan(&c.ID, &c.Stream, &c.EnvelopeFrom, &recipients, &attempts, &maxAttempts, &nextAttempt,
		&expiresAt, &lastError, &c.Split, &c.ListID, &c.Raw)
	if err != nil {
		return c, err
	}
	c.Attempts = int(attempts)
	c.MaxAttempts = int(maxAttempts)
	c.NextAttemptAt = fromMicros(nextAttempt)
	c.ExpiresAt = fromMicros(expiresAt.Int64)
	if c.Raw == nil {
		c.Raw = []byte{}
	}
	return c, driverkit.DecodeClaimed(&c, recipients, lastError, plainStrings)
}

// plainStrings decodes a JSON array of strings as json.Unmarshal into a []string does, but only
// in the form json.Marshal writes addresses and tags in (no white space, no escapes, no
// controls, valid UTF-8, at least one element); ok is false for anything else, which is then
// left to encoding/json. The strings share one allocation. Claims decode the recipients, To and
// tags of every message this way.
func plainStrings(src []byte) (list []string, ok bool) {
	if len(src) < 4 || src[0] != '[' || src[1] != '"' || src[len(src)-2] != '"' || src[len(src)-1] != ']' {
		return nil, false
	}
	body := src[2 : len(src)-2] // a","b","c
	for _, c := range body {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
	}
	if !utf8.Valid(body) {
		return nil, false
	}
	all := string(body)
	list = make([]string, 0, strings.Count(all, `","`)+1)
	for {
		i := strings.IndexByte(all, '"')
		if i < 0 {
			return append(list, all), true
		}
		if i+2 >= len(all) || all[i+1] != ',' || all[i+2] != '"' {
			return nil, false
		}
		list = append(list, all[:i])
		all = all[i+3:]
	}
}

// scanRecipient reads a row of qRecipientStates; a recipient of a message that is not split has
// no state ("").
func scanRecipient(sc scanner) (store.Recipient, error) {
	var (
		r                 store.Recipient
		status            sql.NullString
		attempts          int64
		lastError         []byte
		sentAt, updatedAt sql.NullInt64
	)
	if err := sc.Scan(&r.Email, &status, &attempts, &lastError, &sentAt, &updatedAt); err != nil {
		return r, err
	}
	r.Status = store.RecipientStatus(status.String)
	r.Attempts = int(attempts)
	r.SentAt = fromMicros(sentAt.Int64)
	r.UpdatedAt = fromMicros(updatedAt.Int64)
	if len(lastError) > 0 {
		if err := json.Unmarshal(lastError, &r.LastError); err != nil {
			return r, fmt.Errorf("recipient %s: decoding last error: %w", r.Email, err)
		}
	}
	return r, nil
}
