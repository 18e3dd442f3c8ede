package postgres

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/store/driverkit"
)

// ts encodes a time for a nullable timestamptz column: the zero time is NULL.
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// tsNotNull encodes a time for a NOT NULL timestamptz column: the zero time is -infinity, which
// sorts before every time as SQLite's 0 does (a queued message without a due time is due).
func tsNotNull(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{Valid: true, InfinityModifier: pgtype.NegativeInfinity}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// fromTS decodes ts and tsNotNull: NULL and ±infinity are the zero time; others are UTC.
func fromTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid || v.InfinityModifier != pgtype.Finite {
		return time.Time{}
	}
	return v.Time.UTC()
}

// nullString stores "" as NULL.
func nullString(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: s != ""}
}

// jsonValue encodes v as JSON, or NULL when empty (nil or zero-length slice or map), so that empty
// and absent read back alike (as nil).
func jsonValue(v any, empty bool) ([]byte, error) {
	if empty {
		return nil, nil
	}
	return json.Marshal(v)
}

// rawJSON is a JSON document, or NULL when there is none.
func rawJSON(b json.RawMessage) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// columns turns rows into one typed slice per column, the parameters of an unnest statement;
// types are the parameters' element types (paramType): text (a string, a pgtype.Text, or JSON as
// []byte, nil for NULL), integer (int32), bigint (int64), timestamptz (pgtype.Timestamptz) or bytea ([]byte).
func columns(rows [][]any, types ...string) []any {
	out := make([]any, len(types))
	for i, typ := range types {
		switch typ {
		case "text":
			out[i] = columnValues(rows, i, toText)
		case "integer":
			out[i] = columnValues(rows, i, func(v any) int32 { return v.(int32) })
		case "bigint":
			out[i] = columnValues(rows, i, func(v any) int64 { return v.(int64) })
		case "timestamptz":
			out[i] = columnValues(rows, i, func(v any) pgtype.Timestamptz { return v.(pgtype.Timestamptz) })
		case "bytea":
			out[i] = columnValues(rows, i, func(v any) []byte { return v.([]byte) })
		default:
			panic("postgres: no column parameter of type " + typ)
		}
	}
	return out
}

// columnValues returns the values of column i of rows, converted.
func columnValues[T any](rows [][]any, i int, conv func(any) T) []T {
	col := make([]T, len(rows))
	for r, row := range rows {
		col[r] = conv(row[i])
	}
	return col
}

// toText converts the values columns accepts for a text parameter.
func toText(v any) pgtype.Text {
	switch v := v.(type) {
	case string:
		return pgtype.Text{String: v, Valid: true}
	case []byte:
		return pgtype.Text{String: string(v), Valid: v != nil}
	case pgtype.Text:
		return v
	case nil:
		return pgtype.Text{}
	}
	panic(fmt.Sprintf("postgres: %T is not a text column value", v))
}

// messageArgs returns the values of messageCols for m.
func messageArgs(m *store.Message) ([]any, error) {
	j, err := driverkit.EncodeMessageJSON(m)
	if err != nil {
		return nil, err
	}
	return []any{
		m.ID, m.Stream, string(m.Status), m.From, j.To, j.Cc, j.Bcc, m.ReplyTo,
		m.Subject, m.Template, int32(m.TemplateVersion), m.Locale, j.Data, j.Headers, j.Tags, j.Metadata,
		j.Attachments, m.EnvelopeFrom, j.Recipients, int32(m.Size),
		int32(m.Attempts), int32(m.MaxAttempts), tsNotNull(m.NextAttemptAt),
		m.LeaseOwner, ts(m.LeaseUntil), j.LastError,
		m.ProviderID, m.MessageID, m.IdempotencyKey,
		m.APIKeyID, nullString(m.CampaignID), tsNotNull(m.CreatedAt),
		ts(m.SendAt), ts(m.SentAt), ts(m.ExpiresAt),
		tsNotNull(m.UpdatedAt), nullString(m.ListID), nullString(m.RunID),
		nullString(m.EventID), nullString(m.TriggerID),
	}, nil
}

// scanner is pgx.Row or pgx.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanClaimed reads one row of claimedColumns and the raw MIME.
func scanClaimed(sc scanner) (store.ClaimedMessage, error) {
	var (
		c                     store.ClaimedMessage
		recipients, lastError []byte
		attempts, maxAttempts int32
		nextAttempt, expires  pgtype.Timestamptz
	)
	err := sc.Scan(&c.ID, &c.Stream, &c.EnvelopeFrom, &recipients, &attempts, &maxAttempts, &nextAttempt,
		&expires, &lastError, &c.Split, &c.ListID, &c.Raw)
	if err != nil {
		return c, err
	}
	c.Attempts = int(attempts)
	c.MaxAttempts = int(maxAttempts)
	c.NextAttemptAt = fromTS(nextAttempt)
	c.ExpiresAt = fromTS(expires)
	c.Raw = nonNil(c.Raw)
	return c, driverkit.DecodeClaimed(&c, recipients, lastError, nil)
}

// scanMessage reads one row of messageCols.
func scanMessage(sc scanner) (store.Message, error) {
	var (
		m                                            store.Message
		j                                            driverkit.MessageJSON
		status                                       string
		templateVersion, size, attempts, maxAttempts int32
		nextAttempt, leaseUntil, created, sendAt     pgtype.Timestamptz
		sentAt, expiresAt, updated                   pgtype.Timestamptz
		campaignID, listID, runID, eventID, trigID   pgtype.Text
	)
	dest := []any{&m.ID, &m.Stream, &status, &m.From, &j.To, &j.Cc, &j.Bcc, &m.ReplyTo,
		&m.Subject, &m.Template, &templateVersion, &m.Locale, &j.Data, &j.Headers, &j.Tags, &j.Metadata,
		&j.Attachments, &m.EnvelopeFrom, &j.Recipients, &size,
		&attempts, &maxAttempts, &nextAttempt,
		&m.LeaseOwner, &leaseUntil, &j.LastError,
		&m.ProviderID, &m.MessageID, &m.IdempotencyKey,
		&m.APIKeyID, &campaignID, &created,
		&sendAt, &sentAt, &expiresAt,
		&updated, &listID, &runID, &eventID, &trigID}
	if err := sc.Scan(dest...); err != nil {
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
	m.NextAttemptAt = fromTS(nextAttempt)
	m.LeaseUntil = fromTS(leaseUntil)
	m.CreatedAt = fromTS(created)
	m.SendAt = fromTS(sendAt)
	m.SentAt = fromTS(sentAt)
	m.ExpiresAt = fromTS(expiresAt)
	m.UpdatedAt = fromTS(updated)
	if err := j.Decode(&m, nil); err != nil {
		return store.Message{}, err
	}
	return m, nil
}

// scanRecipient reads a row of qRecipientStates; a recipient of a message that is not split has
// no state ("").
func scanRecipient(sc scanner) (store.Recipient, error) {
	var (
		r                 store.Recipient
		status            pgtype.Text
		attempts          int32
		lastError         []byte
		sentAt, updatedAt pgtype.Timestamptz
	)
	if err := sc.Scan(&r.Email, &status, &attempts, &lastError, &sentAt, &updatedAt); err != nil {
		return r, err
	}
	r.Status = store.RecipientStatus(status.String)
	r.Attempts = int(attempts)
	r.SentAt = fromTS(sentAt)
	r.UpdatedAt = fromTS(updatedAt)
	if len(lastError) > 0 {
		if err := json.Unmarshal(lastError, &r.LastError); err != nil {
			return r, fmt.Errorf("recipient %s: decoding last error: %w", r.Email, err)
		}
	}
	return r, nil
}
