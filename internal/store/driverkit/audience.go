package driverkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// The audience rules every driver shares: how a batch of contact upserts applies to the
// contacts and subscriptions it touches (UpsertPlan), how one subscription changes
// (ChangeSubscription), and how erasure scrubs a message (EraseMessage). Drivers load the rows,
// run these in memory and write the result in one transaction.

// ListInfo is what a subscription change needs of its list.
type ListInfo struct {
	DoubleOptIn bool
	Wording     string
}

// SubKey names one subscription.
type SubKey struct{ ListID, ContactID string }

// UpsertKeys returns the distinct email keys, external ids and contact ids a batch names, what
// the driver loads the existing contacts by.
func UpsertKeys(items []store.ContactUpsert) (keys, exts, ids []string) {
	seen := make(map[string]struct{}, len(items))
	add := func(list []string, prefix, v string) []string {
		if v == "" {
			return list
		}
		if _, ok := seen[prefix+v]; ok {
			return list
		}
		seen[prefix+v] = struct{}{}
		return append(list, v)
	}
	for _, it := range items {
		keys = add(keys, "k", it.EmailKey)
		exts = add(exts, "e", it.ExternalID)
		ids = add(ids, "i", it.ID)
	}
	return keys, exts, ids
}

// UpsertNeedsLists reports whether any of the upserts changes subscriptions (the driver then
// loads the lists and the contacts' subscriptions).
func UpsertNeedsLists(items []store.ContactUpsert) bool {
	for _, it := range items {
		if len(it.Lists) > 0 || len(it.Unsubscribe) > 0 || it.UnsubscribeAll {
			return true
		}
	}
	return false
}

// ContactUpdate is the new row of an existing contact. Keys says whether its email_key or
// external_id changed: only then need the driver rewrite those columns (and their indexes).
type ContactUpdate struct {
	store.Contact
	Keys bool
}

// UpsertPlan is a batch of upserts applied in memory to the rows they touch. The driver writes
// Updates in order (each the whole row of an existing contact, by id; one contact may appear
// more than once), then Inserts, then Subscriptions (insert or replace), then Consents. In that
// order every statement keeps the unique keys unique: each update was checked against every
// contact the batch knows, new ones included, at its turn.
type UpsertPlan struct {
	Results       []store.ContactUpsertResult
	Updates       []ContactUpdate
	Inserts       []*store.Contact
	Subscriptions []*store.Subscription
	Consents      []store.ConsentRecord
	// Reports are the webhook reports of the subscription changes (SubscriptionReport), written
	// with them at Now; the driver sets Reported to the number of deliveries they made.
	Reports  []OutboxEvent
	Now      time.Time
	Reported int
}

type planner struct {
	now   time.Time
	lists map[string]ListInfo
	byKey map[string]*pc
	byExt map[string]*pc
	byID  map[string]*pc
	subs  map[SubKey]*store.Subscription
	dirty map[SubKey]bool
	plan  UpsertPlan
}

// pc is a contact as the batch sees it.
type pc struct {
	store.Contact
	isNew bool
	attrs map[string]json.RawMessage // decoded attributes, nil until needed
}

// PlanUpsert applies items, in order, to the existing contacts (those the batch's keys found),
// their subscriptions (any list) and the lists. New contacts get fresh ids.
func PlanUpsert(items []store.ContactUpsert, existing []store.Contact, subs []store.Subscription,
	lists map[string]ListInfo, now time.Time) UpsertPlan {
	p := &planner{
		now:   now,
		lists: lists,
		byKey: make(map[string]*pc, len(items)),
		byExt: make(map[string]*pc, len(existing)),
		byID:  make(map[string]*pc, len(existing)),
		subs:  make(map[SubKey]*store.Subscription, len(subs)),
		dirty: map[SubKey]bool{},
	}
	for i := range existing {
		c := &pc{Contact: existing[i]}
		p.byKey[c.EmailKey] = c
		p.byID[c.ID] = c
		if c.ExternalID != "" {
			p.byExt[c.ExternalID] = c
		}
	}
	for i := range subs {
		p.subs[SubKey{subs[i].ListID, subs[i].ContactID}] = &subs[i]
	}
	p.plan.Results = make([]store.ContactUpsertResult, len(items))
	p.plan.Now = now
	for i := range items {
		p.plan.Results[i] = p.apply(&items[i])
	}
	return p.plan
}

func (p *planner) apply(it *store.ContactUpsert) store.ContactUpsertResult {
	if it.Email == "" && it.EmailKey == "" && it.ExternalID != "" && it.ID == "" {
		// An event names its contact by external id alone: it updates the contact that has it.
		c := p.byExt[it.ExternalID]
		if c == nil {
			return store.ContactUpsertResult{Err: fmt.Errorf("no contact has external_id %s: %w", it.ExternalID, store.ErrNotFound)}
		}
		byExt := *it
		byExt.Email, byExt.EmailKey = c.Email, c.EmailKey
		it = &byExt
	}
	if it.Email == "" || it.EmailKey == "" {
		return store.ContactUpsertResult{Err: errors.New("a contact needs an email and its key")}
	}
	for _, l := range slices.Concat(it.Lists, it.Unsubscribe) {
		if _, ok := p.lists[l]; !ok {
			return store.ContactUpsertResult{Err: &store.UnknownListError{ListID: l}}
		}
	}

	if a := bytes.TrimSpace(it.Attributes); len(it.Attributes) > 0 && (len(a) == 0 || a[0] != '{' || !json.Valid(a)) {
		return store.ContactUpsertResult{Err: errors.New("attributes are not a JSON object")}
	}
	c := p.byKey[it.EmailKey]
	if it.ID != "" {
		byID := p.byID[it.ID]
		switch byExt := p.byExt[it.ExternalID]; {
		case byID == nil:
			return store.ContactUpsertResult{Err: fmt.Errorf("contact %s: %w", it.ID, store.ErrNotFound)}
		case c != nil && c != byID:
			return store.ContactUpsertResult{Err: fmt.Errorf("email %s belongs to contact %s: %w", it.Email, c.ID, store.ErrConflict)}
		case it.ExternalID != "" && byExt != nil && byExt != byID:
			return store.ContactUpsertResult{Err: fmt.Errorf("external_id %s belongs to contact %s: %w", it.ExternalID, byExt.ID, store.ErrConflict)}
		}
		c = byID
	} else if it.ExternalID != "" {
		byExt := p.byExt[it.ExternalID]
		switch {
		case byExt != nil && c != nil && byExt != c:
			return store.ContactUpsertResult{Err: fmt.Errorf("external_id %s and email %s name two contacts (%s, %s): %w",
				it.ExternalID, it.Email, byExt.ID, c.ID, store.ErrConflict)}
		case byExt == nil && c != nil && c.ExternalID != "":
			return store.ContactUpsertResult{Err: fmt.Errorf("email %s belongs to contact %s, whose external_id is not %s: %w",
				it.Email, c.ID, it.ExternalID, store.ErrConflict)}
		case byExt != nil:
			c = byExt
		}
	}

	res := store.ContactUpsertResult{}
	changed, keys := false, false
	if c == nil {
		c = &pc{isNew: true, Contact: store.Contact{ID: id.New(id.Contact), Email: it.Email, EmailKey: it.EmailKey,
			ExternalID: it.ExternalID, Attributes: json.RawMessage("{}"), CreatedAt: p.now, UpdatedAt: p.now}}
		if len(it.Attributes) > 0 && !bytes.Contains(it.Attributes, []byte("null")) {
			// Nothing to merge or remove: the object is kept as given (package audience gives
			// it in canonical form).
			c.Attributes = it.Attributes
			it = withoutAttributes(it)
		} else {
			c.attrs = map[string]json.RawMessage{}
		}
		p.byKey[c.EmailKey] = c
		p.byID[c.ID] = c
		if c.ExternalID != "" {
			p.byExt[c.ExternalID] = c
		}
		p.plan.Inserts = append(p.plan.Inserts, &c.Contact)
		res.Outcome = store.UpsertCreated
		changed = true
	} else if it.CreateOnly {
		return store.ContactUpsertResult{ID: c.ID, Outcome: store.UpsertUnchanged, Existed: true}
	} else {
		res.Outcome = store.UpsertUpdated
		if c.Email != it.Email {
			changed = true
			if c.EmailKey == it.EmailKey {
				res.Outcome = store.UpsertMerged
			} else {
				delete(p.byKey, c.EmailKey)
				c.EmailKey = it.EmailKey
				p.byKey[c.EmailKey] = c
				keys = true
			}
			c.Email = it.Email
		}
		if it.ExternalID != "" && c.ExternalID != it.ExternalID {
			delete(p.byExt, c.ExternalID)
			c.ExternalID = it.ExternalID
			p.byExt[c.ExternalID] = c
			changed, keys = true, true
		}
	}
	res.ID = c.ID

	for _, f := range []struct {
		dst *string
		src *string
	}{{&c.Name, it.Name}, {&c.Locale, it.Locale}, {&c.Timezone, it.Timezone}} {
		if f.src != nil && *f.dst != *f.src {
			*f.dst = *f.src
			changed = true
		}
	}
	if !it.LastActiveAt.IsZero() && it.LastActiveAt.After(c.LastActiveAt) {
		c.LastActiveAt = it.LastActiveAt
		changed = true
	}
	if len(it.Attributes) > 0 {
		var attrs map[string]json.RawMessage
		if err := json.Unmarshal(it.Attributes, &attrs); err != nil {
			return store.ContactUpsertResult{Err: fmt.Errorf("attributes: %w", err)}
		}
		ch, err := c.mergeAttributes(attrs)
		if err != nil {
			return store.ContactUpsertResult{Err: err}
		}
		changed = changed || ch
	}

	subsChanged := false
	if it.UnsubscribeAll {
		var of []string
		for k, s := range p.subs {
			if k.ContactID == c.ID && s.Status != store.SubscriptionUnsubscribed {
				of = append(of, k.ListID)
			}
		}
		slices.Sort(of)
		for _, l := range of {
			subsChanged = p.change(c.ID, l, store.SubscriptionUnsubscribed, it, &res) || subsChanged
		}
	} else {
		for _, l := range it.Lists {
			subsChanged = p.change(c.ID, l, store.SubscriptionSubscribed, it, &res) || subsChanged
		}
	}
	for _, l := range it.Unsubscribe {
		subsChanged = p.change(c.ID, l, store.SubscriptionUnsubscribed, it, &res) || subsChanged
	}

	switch {
	case changed:
		c.UpdatedAt = p.now
		if !c.isNew {
			p.plan.Updates = append(p.plan.Updates, ContactUpdate{Contact: c.Contact, Keys: keys})
		}
	case subsChanged && res.Outcome == store.UpsertUpdated:
	default:
		res.Outcome = store.UpsertUnchanged
	}
	return res
}

// withoutAttributes is a copy of it without attributes.
func withoutAttributes(it *store.ContactUpsert) *store.ContactUpsert {
	c := *it
	c.Attributes = nil
	return &c
}

// change applies one subscription change of an upsert and reports whether it changed anything.
func (p *planner) change(contactID, listID, status string, it *store.ContactUpsert, res *store.ContactUpsertResult) bool {
	k := SubKey{listID, contactID}
	cur := p.subs[k]
	list := p.lists[listID]
	next, action, kept := ChangeSubscription(cur, list, status, it.Resubscribe, false, it.Consent.Source, p.now)
	if kept {
		res.Kept = append(res.Kept, listID)
	}
	if action == "" {
		return false
	}
	next.ListID, next.ContactID = listID, contactID
	if cur == nil {
		cur = &store.Subscription{}
		p.subs[k] = cur
	}
	*cur = next
	if !p.dirty[k] {
		p.dirty[k] = true
		p.plan.Subscriptions = append(p.plan.Subscriptions, cur)
	}
	if next.Status == store.SubscriptionPending && !slices.Contains(res.Pending, listID) {
		res.Pending = append(res.Pending, listID)
	}
	p.plan.Consents = append(p.plan.Consents, store.ConsentRecord{ContactID: contactID, ListID: listID,
		Action: action, Consent: it.Consent, Wording: list.Wording, At: p.now})
	if r, ok := SubscriptionReport(next, p.byID[contactID].Email); ok {
		p.plan.Reports = append(p.plan.Reports, r)
	}
	return true
}

// mergeAttributes merges the given attributes into the contact's (a JSON null removes a key) and
// reports whether anything changed.
func (c *pc) mergeAttributes(given map[string]json.RawMessage) (bool, error) {
	if c.attrs == nil {
		c.attrs = map[string]json.RawMessage{}
		if len(c.Attributes) > 0 {
			if err := json.Unmarshal(c.Attributes, &c.attrs); err != nil {
				return false, fmt.Errorf("contact %s: stored attributes: %w", c.ID, err)
			}
		}
	}
	changed := false
	for k, v := range given {
		old, ok := c.attrs[k]
		if isNull(v) {
			if ok {
				delete(c.attrs, k)
				changed = true
			}
			continue
		}
		if ok && JSONEqual(old, v) {
			continue
		}
		c.attrs[k] = v
		changed = true
	}
	if changed {
		b, err := json.Marshal(c.attrs) // keys sorted, values compacted
		if err != nil {
			return false, fmt.Errorf("contact %s: attributes: %w", c.ID, err)
		}
		c.Attributes = b
	}
	return changed, nil
}

func isNull(v json.RawMessage) bool {
	return string(bytes.TrimSpace(v)) == "null"
}

// JSONEqual reports whether two JSON values are equal as values (white space, key order and
// number spelling aside), as a PostgreSQL jsonb read back may differ from what was written.
func JSONEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// ChangeSubscription applies a wanted status (subscribed or unsubscribed) to the subscription cur
// (nil: none yet) of a list and returns the subscription after it and the consent action to
// record ("" when nothing changed). Subscribing makes a new subscription pending on a double
// opt-in list unless confirmed; an unsubscribed one stays so (kept) unless resubscribe; a pending
// one becomes subscribed only when confirmed. Unsubscribing always applies (a contact with no
// subscription gets an unsubscribed one, the memory that they opted out).
func ChangeSubscription(cur *store.Subscription, list ListInfo, status string, resubscribe, confirmed bool,
	source string, now time.Time) (next store.Subscription, action string, kept bool) {
	var s store.Subscription
	if cur != nil {
		s = *cur
	}
	into := func(st string) {
		if s.CreatedAt.IsZero() {
			s.CreatedAt = now
		}
		s.Status = st
		s.Source = source
		s.UpdatedAt = now
	}
	subscribed := func() {
		if list.DoubleOptIn && !confirmed {
			into(store.SubscriptionPending)
			return
		}
		into(store.SubscriptionSubscribed)
		if confirmed {
			s.ConfirmedAt = now
		}
	}
	switch status {
	case store.SubscriptionUnsubscribed:
		if s.Status == store.SubscriptionUnsubscribed {
			return s, "", false
		}
		into(store.SubscriptionUnsubscribed)
		s.UnsubscribedAt = now
		return s, store.ConsentUnsubscribe, false
	case store.SubscriptionSubscribed:
		switch s.Status {
		case "":
			subscribed()
			return s, store.ConsentSubscribe, false
		case store.SubscriptionPending:
			if !confirmed {
				return s, "", false
			}
			subscribed()
			return s, store.ConsentConfirm, false
		case store.SubscriptionUnsubscribed:
			if !resubscribe {
				return s, "", true
			}
			subscribed()
			s.UnsubscribedAt = time.Time{}
			return s, store.ConsentResubscribe, false
		}
	}
	return s, "", false
}

// ConfirmSubscription is SubscriptionConfirm's change: a pending or unsubscribed subscription
// becomes subscribed and confirmed (a confirmation is a new opt-in); a subscribed one is left as
// it is (action "").
func ConfirmSubscription(cur store.Subscription, source string, now time.Time) (store.Subscription, string) {
	if cur.Status == store.SubscriptionSubscribed {
		return cur, ""
	}
	cur.Status = store.SubscriptionSubscribed
	cur.Source = source
	cur.UpdatedAt = now
	cur.ConfirmedAt = now
	cur.UnsubscribedAt = time.Time{}
	return cur, store.ConsentConfirm
}

// CheckList checks a list before it is stored.
func CheckList(l store.List) error {
	switch {
	case l.ID == "":
		return errors.New("a list needs an id")
	case strings.TrimSpace(l.Name) == "":
		return fmt.Errorf("list %s: no name", l.ID)
	}
	return nil
}

// ContactRefError is the ErrNotFound of a contact named by ref.
func ContactRefError(ref store.ContactRef) error {
	return fmt.Errorf("contact %s: %w", RefString(ref), store.ErrNotFound)
}

// RefString names a ContactRef in messages.
func RefString(ref store.ContactRef) string {
	switch {
	case ref.ID != "":
		return ref.ID
	case ref.ExternalID != "":
		return "ext:" + ref.ExternalID
	}
	return ref.EmailKey
}

// ErasedAddresses are the lowercased forms under which messages may name a contact being
// erased: its email as given and its email key.
func ErasedAddresses(c store.Contact) []string {
	return LowerDistinct([]string{c.Email, c.EmailKey})
}

// EraseMessage removes from m the personal data of the addresses (lowercased): they leave its
// To, Cc, Bcc and recipients, and its subject, data, headers and metadata go, since they may name
// the person. It reports whether m named them.
func EraseMessage(m *store.Message, addrs []string) bool {
	names := func(s string) bool {
		ls := strings.ToLower(s)
		for _, a := range addrs {
			if strings.Contains(ls, a) {
				return true
			}
		}
		return false
	}
	drop := func(list []string) ([]string, bool) {
		out := list[:0:0]
		hit := false
		for _, s := range list {
			if names(s) {
				hit = true
				continue
			}
			out = append(out, s)
		}
		return out, hit
	}
	var hit, h bool
	m.To, h = drop(m.To)
	hit = hit || h
	m.Cc, h = drop(m.Cc)
	hit = hit || h
	m.Bcc, h = drop(m.Bcc)
	hit = hit || h
	m.Recipients, h = drop(m.Recipients)
	hit = hit || h
	if names(m.ReplyTo) {
		m.ReplyTo, hit = "", true
	}
	m.Subject, m.Data, m.Headers, m.Metadata = "", nil, nil, nil
	return hit
}

// ContactPage cuts a listing read with one row more than limit into the page and the next
// cursor.
func ContactPage(rows []store.Contact, limit int) ([]store.Contact, string) {
	return cutPage(rows, limit, store.ContactCursor)
}

// ErasedSuppression is the global suppression that outlives an erased contact, keyed by the
// caller's HMAC of its email key.
func ErasedSuppression(erasedKey string, now time.Time) store.Suppression {
	return store.Suppression{Email: erasedKey, Reason: store.ReasonErased, CreatedAt: now}
}
