package audience

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // timezones are checked the same on every host, with or without zoneinfo
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/postie/postie/internal/fanout"
	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/store"
)

// Limits of a contact's fields.
const (
	MaxAttributesBytes = 64 << 10 // the attributes object, as JSON
	maxText            = 256      // name, external_id
	maxSource          = 64
	maxUserAgent       = 512
)

// ParseRef parses how the API names one contact: its id (ctc_…), "ext:" and its external_id,
// or an email address (any case).
func ParseRef(ref string) (store.ContactRef, error) {
	switch {
	case strings.HasPrefix(ref, id.Contact+"_"):
		if !id.Valid(id.Contact, ref) {
			return store.ContactRef{}, &InvalidError{[]Problem{{Message: "not a contact id (ctc_ and 26 characters)", Value: ref}}}
		}
		return store.ContactRef{ID: ref}, nil
	case strings.HasPrefix(ref, "ext:"):
		ext := strings.TrimPrefix(ref, "ext:")
		if msg := textProblem(ext, maxText, false); msg != "" || ext == "" {
			return store.ContactRef{}, &InvalidError{[]Problem{{Message: "ext: needs an external_id " + msg, Value: ref}}}
		}
		return store.ContactRef{ExternalID: ext}, nil
	}
	key, err := EmailKey(ref)
	if err != nil {
		return store.ContactRef{}, &InvalidError{[]Problem{{Message: "a contact id (ctc_…), ext:external_id or an email address: " + err.Error(), Value: ref}}}
	}
	return store.ContactRef{EmailKey: key}, nil
}

// textProblem says what is wrong with a text field: too long, not UTF-8, a control character
// (line breaks too unless multiline); "" when nothing.
func textProblem(s string, max int, multiline bool) string {
	switch {
	case len(s) > max:
		return fmt.Sprintf("longer than %d octets", max)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) {
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// zones caches the timezone names LoadLocation accepted.
var zones sync.Map

func validZone(tz string) bool {
	if _, ok := zones.Load(tz); ok {
		return true
	}
	if tz == "Local" || tz == "" {
		return false
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return false
	}
	zones.Store(tz, true)
	return true
}

// HasNUL tells whether JSON text holds a \u0000 escape (PostgreSQL cannot store it in jsonb).
func HasNUL(raw []byte) bool { return hasNUL(raw) }

func hasNUL(raw []byte) bool {
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(`u0000`))
		if j < 0 {
			return false
		}
		j += i
		slashes := 0
		for k := j - 1; k >= 0 && raw[k] == '\\'; k-- {
			slashes++
		}
		if slashes%2 == 1 {
			return true
		}
		i = j + 5
	}
}

// checkContact validates one upsert in place: it fills EmailKey, puts the locale and the
// attributes in their canonical forms and trims the email. Whether its lists exist is the
// store's to say (listProblem).
func checkContact(it *store.ContactUpsert) error { return CheckContact(it, true) }

// CheckContact validates one upsert in place as the contacts API does (see checkContact); a
// caller that finds contacts by external_id alone (an event) passes emailRequired false. Its
// error is an *InvalidError.
func CheckContact(it *store.ContactUpsert, emailRequired bool) error {
	var v invalid
	it.Email = strings.TrimSpace(it.Email)
	if it.Email == "" {
		if emailRequired {
			v.add("email", "required", nil)
		}
	} else if strings.ContainsAny(it.Email, "<>") {
		v.add("email", "a bare address, without a display name (put the name in name)", it.Email)
	} else if key, err := EmailKey(it.Email); err != nil {
		v.add("email", err.Error(), it.Email)
	} else {
		it.EmailKey = key
	}
	if it.ExternalID != "" {
		if msg := textProblem(it.ExternalID, maxText, false); msg != "" {
			v.add("external_id", msg, it.ExternalID)
		}
	}
	if it.Name != nil {
		if msg := textProblem(*it.Name, maxText, false); msg != "" {
			v.add("name", msg, *it.Name)
		}
	}
	if it.Locale != nil && *it.Locale != "" {
		tag, err := language.Parse(*it.Locale)
		if err != nil || len(*it.Locale) > 35 {
			v.add("locale", "not a BCP 47 language tag like en or pt-BR", *it.Locale)
		} else {
			canon := tag.String()
			it.Locale = &canon
		}
	}
	if it.Timezone != nil && *it.Timezone != "" && !validZone(*it.Timezone) {
		v.add("timezone", "not an IANA timezone name like Europe/Paris", *it.Timezone)
	}
	if len(it.Attributes) > 0 {
		a := bytes.TrimSpace(it.Attributes)
		switch {
		case len(a) > MaxAttributesBytes:
			v.add("attributes", fmt.Sprintf("larger than %d KB", MaxAttributesBytes>>10), nil)
		case hasNUL(a):
			v.add("attributes", "must not contain U+0000 (NUL)", nil)
		default:
			// The canonical form (keys sorted, no white space, a key given twice once, its
			// last value) is what the store keeps, so the store need not decode a new
			// contact's object again.
			var m map[string]json.RawMessage
			if len(a) == 0 || a[0] != '{' || json.Unmarshal(a, &m) != nil {
				v.add("attributes", "must be a JSON object", nil)
			} else if canon, err := json.Marshal(m); err == nil {
				it.Attributes = canon
			}
		}
	}
	checkConsent(&v, it.Consent)
	return v.err()
}

func checkConsent(v *invalid, c store.Consent) {
	if msg := textProblem(c.Source, maxSource, false); msg != "" {
		v.add("consent.source", msg, c.Source)
	}
	if c.IP != "" {
		if _, err := netip.ParseAddr(c.IP); err != nil {
			v.add("consent.ip", "not an IP address", c.IP)
		}
	}
	if msg := textProblem(c.UserAgent, maxUserAgent, false); msg != "" {
		v.add("consent.user_agent", msg, c.UserAgent)
	}
}

// listProblem turns the store's error for an unknown list into the problem of the field
// naming it.
func listProblem(it *store.ContactUpsert, err error) error {
	var ul *store.UnknownListError
	if !errors.As(err, &ul) {
		return err
	}
	field := "lists"
	if i := slices.Index(it.Lists, ul.ListID); i >= 0 {
		field = fmt.Sprintf("lists[%d]", i)
	} else if i := slices.Index(it.Unsubscribe, ul.ListID); i >= 0 {
		field = fmt.Sprintf("unsubscribe[%d]", i)
	}
	return &InvalidError{[]Problem{{Field: field, Message: "no such list", Value: ul.ListID}}}
}

// Upsert validates items and upserts the valid ones in one transaction, and returns one result
// per item, in order. An item that is invalid (Err an *InvalidError; duplicates of an earlier
// item's email or external_id, and lists that do not exist, included) or that the store refuses
// (Err wrapping store.ErrConflict, or store.ErrNotFound for an id that names no contact) changes
// nothing; the others are applied. The error is
// for the batch as a whole (ErrBatchTooLarge, or the store failing): then nothing was stored.
// A default consent source of "api" is used when none is given.
func (s *Service) Upsert(ctx context.Context, items []store.ContactUpsert) ([]store.ContactUpsertResult, error) {
	if len(items) > s.cfg.MaxBatch {
		return nil, fmt.Errorf("%d contacts, at most %d: %w", len(items), s.cfg.MaxBatch, ErrBatchTooLarge)
	}
	results := make([]store.ContactUpsertResult, len(items))
	valid := make([]store.ContactUpsert, 0, len(items))
	at := make([]int, 0, len(items)) // index in items of each valid one
	byKey := make(map[string]int, len(items))
	byExt := map[string]int{}
	// Checked on every core: the store's writer then has only its own work to do.
	checked := slices.Clone(items)
	fanout.Each(len(checked), func(i int) {
		if checked[i].Consent.Source == "" {
			checked[i].Consent.Source = "api"
		}
		results[i].Err = checkContact(&checked[i])
	})
	for i, it := range checked {
		if results[i].Err != nil {
			continue
		}
		if j, dup := byKey[it.EmailKey]; dup {
			results[i].Err = &InvalidError{[]Problem{{Field: "email", Message: fmt.Sprintf("the same address as item %d of the batch", j), Value: it.Email}}}
			continue
		}
		if j, dup := byExt[it.ExternalID]; dup && it.ExternalID != "" {
			results[i].Err = &InvalidError{[]Problem{{Field: "external_id", Message: fmt.Sprintf("the same external_id as item %d of the batch", j), Value: it.ExternalID}}}
			continue
		}
		byKey[it.EmailKey] = i
		if it.ExternalID != "" {
			byExt[it.ExternalID] = i
		}
		valid = append(valid, it)
		at = append(at, i)
	}
	if len(valid) > 0 {
		res, err := s.cfg.Store.ContactsUpsert(ctx, store.ContactsUpsertParams{Items: valid, Now: s.now()})
		if err != nil {
			return nil, wrap(err, "upserting contacts")
		}
		for j, r := range res {
			r.Err = listProblem(&valid[j], r.Err)
			results[at[j]] = r
			if r.Err == nil {
				s.pending(ctx, r.ID, r.Pending)
			}
		}
	}
	return results, nil
}

// UpsertOne upserts one contact; its failure is the error (an *InvalidError, or wrapping
// store.ErrConflict or store.ErrNotFound).
func (s *Service) UpsertOne(ctx context.Context, it store.ContactUpsert) (store.ContactUpsertResult, error) {
	res, err := s.Upsert(ctx, []store.ContactUpsert{it})
	if err != nil {
		return store.ContactUpsertResult{}, err
	}
	return res[0], res[0].Err
}

// Contact returns the contact ref names (ParseRef).
func (s *Service) Contact(ctx context.Context, ref string) (store.Contact, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return store.Contact{}, err
	}
	return s.cfg.Store.ContactGet(ctx, r)
}

// Update changes the contact ref names with u (PATCH): fields left nil or empty are kept; a new
// email or external_id replaces the old one (ErrConflict when another contact has it).
func (s *Service) Update(ctx context.Context, ref string, u store.ContactUpsert) (store.Contact, store.ContactUpsertResult, error) {
	c, err := s.Contact(ctx, ref)
	if err != nil {
		return store.Contact{}, store.ContactUpsertResult{}, err
	}
	u.ID = c.ID
	if u.Email == "" {
		u.Email = c.Email
	}
	res, err := s.UpsertOne(ctx, u)
	if err != nil {
		return store.Contact{}, res, err
	}
	c, err = s.cfg.Store.ContactGet(ctx, store.ContactRef{ID: c.ID})
	return c, res, err
}

// Delete deletes the contact ref names with its subscriptions and consent records. With erase
// it also forgets the person everywhere postie keeps them (store.Audience.ContactDelete) and
// keeps only a suppression keyed by ErasedKey.
func (s *Service) Delete(ctx context.Context, ref string, erase bool) error {
	r, err := ParseRef(ref)
	if err != nil {
		return err
	}
	p := store.ContactDeleteParams{Ref: r, Erase: erase, Now: s.now()}
	if erase {
		if len(s.cfg.ErasureKey) == 0 {
			return ErrNoErasureKey
		}
		c, err := s.cfg.Store.ContactGet(ctx, r)
		if err != nil {
			return err
		}
		p.Ref = store.ContactRef{ID: c.ID}
		p.ErasedKey = ErasedKey(s.cfg.ErasureKey, c.EmailKey)
	}
	return s.cfg.Store.ContactDelete(ctx, p)
}

// Contacts returns one page of contacts (see store.ContactListParams).
func (s *Service) Contacts(ctx context.Context, p store.ContactListParams) ([]store.Contact, string, error) {
	var v invalid
	switch p.SubscriptionStatus {
	case "", store.SubscriptionPending, store.SubscriptionSubscribed, store.SubscriptionUnsubscribed:
		if p.SubscriptionStatus != "" && p.ListID == "" {
			v.add("status", "needs list: the status of a subscription to that list", p.SubscriptionStatus)
		}
	default:
		v.add("status", "one of pending, subscribed, unsubscribed", p.SubscriptionStatus)
	}
	if err := v.err(); err != nil {
		return nil, "", err
	}
	return s.cfg.Store.ContactList(ctx, p)
}

// Subscriptions returns the subscriptions of the contact ref names.
func (s *Service) Subscriptions(ctx context.Context, ref string) ([]store.Subscription, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return s.cfg.Store.ContactSubscriptions(ctx, r)
}

// Consent returns the consent records of the contact ref names, oldest first.
func (s *Service) Consent(ctx context.Context, ref string) ([]store.ConsentRecord, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	return s.cfg.Store.ContactConsent(ctx, r)
}

// SubscribeParams changes one subscription.
type SubscribeParams struct {
	Status      string // store.SubscriptionSubscribed (default) or store.SubscriptionUnsubscribed
	Resubscribe bool
	Confirmed   bool
	Consent     store.Consent
}

// Subscribe changes the subscription of the contact ref names to list listID. Subscribing an
// address that is no contact yet creates the contact. The result says whether the change was
// kept out (the contact had left and Resubscribe was not given).
func (s *Service) Subscribe(ctx context.Context, listID, ref string, p SubscribeParams) (store.SubscriptionSetResult, error) {
	var v invalid
	if p.Status == "" {
		p.Status = store.SubscriptionSubscribed
	}
	if p.Status != store.SubscriptionSubscribed && p.Status != store.SubscriptionUnsubscribed {
		v.add("status", "subscribed or unsubscribed", p.Status)
	}
	if p.Consent.Source == "" {
		p.Consent.Source = "api"
	}
	checkConsent(&v, p.Consent)
	if err := v.err(); err != nil {
		return store.SubscriptionSetResult{}, err
	}
	r, err := ParseRef(ref)
	if err != nil {
		return store.SubscriptionSetResult{}, err
	}
	set := store.SubscriptionSetParams{ListID: listID, Contact: r, Status: p.Status, Resubscribe: p.Resubscribe,
		Confirmed: p.Confirmed, Consent: p.Consent, Now: s.now()}
	res, err := s.cfg.Store.SubscriptionSet(ctx, set)
	if errors.Is(err, store.ErrNotFound) && r.EmailKey != "" && p.Status == store.SubscriptionSubscribed {
		if _, lerr := s.cfg.Store.ListGet(ctx, listID); lerr != nil {
			return res, lerr
		}
		// A new address: the contact is created with the subscription.
		if _, err := s.UpsertOne(ctx, store.ContactUpsert{Email: ref, Consent: p.Consent}); err != nil {
			return res, err
		}
		res, err = s.cfg.Store.SubscriptionSet(ctx, set)
	}
	if err != nil {
		return res, err
	}
	if res.Changed && res.Status == store.SubscriptionPending {
		s.pending(ctx, res.ContactID, []string{listID})
	}
	return res, nil
}
