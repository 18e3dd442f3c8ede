package dbsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/mail"
	"github.com/postie/postie/internal/store"
)

// emailKey is the contact identity of an address: the lower-cased local part @ the A-label
// domain, the suppression list's key.
func emailKey(addr string) (email, key string, err error) {
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return "", "", err
	}
	return a.Email, strings.ToLower(a.Email), nil
}

// mapped is what one row means for its contact.
type mapped struct {
	key     string // the row's key as links keep it
	deleted bool   // the deleted column is set: the contact goes
	upsert  store.ContactUpsert
}

// errSkip wraps the reason a row is not applied.
var errSkip = errors.New("row skipped")

// mapRow maps one row to a contact upsert. An opted-out row unsubscribes the contact from every
// list and subscribes it to none; other rows subscribe it to lists (an upsert never
// re-subscribes a contact that left). A row flagged deleted needs no valid email.
func (r *reader) mapRow(rw row, lists []string) (mapped, error) {
	m := mapped{key: keyText(rw.key)}
	if c := r.col["deleted"]; c != "" && truthy(rw.values[c]) {
		m.deleted = true
		return m, nil
	}
	raw, _ := rw.values[r.col["email"]].(string)
	email, key, err := emailKey(strings.TrimSpace(raw))
	if err != nil {
		return m, fmt.Errorf("%w: key %s: %v", errSkip, m.key, err)
	}
	u := store.ContactUpsert{Email: email, EmailKey: key, Consent: store.Consent{Source: "sync"}}
	if c := r.col["external_id"]; c != "" {
		if v := rw.values[c]; v != nil {
			u.ExternalID = keyText(keyValue(v))
		}
	}
	text := func(field string) *string {
		c := r.col[field]
		if c == "" {
			return nil
		}
		s := ""
		if v := rw.values[c]; v != nil {
			s = fmt.Sprint(v)
		}
		return &s
	}
	u.Name, u.Locale, u.Timezone = text("name"), text("locale"), text("timezone")
	if u.Timezone != nil && *u.Timezone != "" {
		if _, err := time.LoadLocation(*u.Timezone); err != nil || strings.EqualFold(*u.Timezone, "local") {
			return m, fmt.Errorf("%w: key %s: timezone %q is not an IANA time zone", errSkip, m.key, *u.Timezone)
		}
	}
	attrs := r.attributes(rw)
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			return m, fmt.Errorf("%w: key %s: attributes: %v", errSkip, m.key, err)
		}
		if len(b) > maxAttributes {
			return m, fmt.Errorf("%w: key %s: attributes are %d bytes, over the 64 KB limit", errSkip, m.key, len(b))
		}
		u.Attributes = b
	}
	if c := r.col["opt_out"]; c != "" && truthy(rw.values[c]) {
		u.UnsubscribeAll = true
	} else {
		u.Lists = lists
	}
	m.upsert = u
	return m, nil
}

// maxAttributes is the largest attributes object a contact keeps (JSON octets).
const maxAttributes = 64 << 10

// attributes are the row's attribute columns: the mapping's list, or every column not mapped
// to a field. A NULL column removes the attribute.
func (r *reader) attributes(rw row) map[string]any {
	out := map[string]any{}
	if r.mapping.Attributes != nil {
		for _, a := range r.mapping.Attributes {
			c, _ := r.find(a)
			out[a] = attrValue(rw.values[c])
		}
		return out
	}
	fields := map[string]bool{}
	for _, c := range r.col {
		fields[c] = true
	}
	for _, c := range r.cols {
		if !fields[c] {
			out[c] = attrValue(rw.values[c])
		}
	}
	return out
}

// attrValue is a column's value as JSON: times as RFC 3339 in UTC.
func attrValue(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return v
}
