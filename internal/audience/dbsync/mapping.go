package dbsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// mapped is what one row means for its contact.
type mapped struct {
	key     string // the row's key as links keep it
	deleted bool   // the deleted column is set: the contact goes
	upsert  store.ContactUpsert
}

// errSkip wraps the reason a row is not applied.
var errSkip = errors.New("row skipped")

// mapRow maps one row to a contact upsert, which Contacts validates (the address, the time zone,
// the size of the attributes). An opted-out row unsubscribes the contact from every list and
// subscribes it to none; other rows subscribe it to lists (an upsert never re-subscribes a
// contact who left). A row flagged deleted needs no valid email.
func (r *reader) mapRow(rw row, lists []string) (mapped, error) {
	m := mapped{key: keyText(rw.key)}
	if c := r.col["deleted"]; c != "" && truthy(rw.values[c]) {
		m.deleted = true
		return m, nil
	}
	email, _ := rw.values[r.col["email"]].(string)
	u := store.ContactUpsert{Email: strings.TrimSpace(email), Consent: store.Consent{Source: "sync"}}
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
	attrs := r.attributes(rw)
	if len(attrs) > 0 {
		b, err := json.Marshal(attrs)
		if err != nil {
			return m, fmt.Errorf("%w: key %s: attributes: %v", errSkip, m.key, err)
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
