package audience

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postie/postie/internal/store"
)

// UnsubscribeStore is the part of the store the unsubscribe pages change.
type UnsubscribeStore interface {
	SuppressionUpsert(ctx context.Context, s []store.Suppression) error
	SuppressionDelete(ctx context.Context, email, scope string) error
}

// Unsubscriber applies what a person asks for through a signed link: leave a list, leave all
// broadcast mail, confirm a subscription. Every change is written before it returns (the
// suppression is checked at delivery, so it stops every message not yet handed to a relay).
type Unsubscriber struct {
	Store UnsubscribeStore
	// Audience, when set, also records the change on the person's subscriptions (a contact
	// found by id or email key), with a consent record.
	Audience store.Audience
}

// ErrNoSubscription: a confirmation link whose subscription no longer exists.
var ErrNoSubscription = errors.New("no such subscription")

// LeaveList unsubscribes t's person from t's list: a suppression in the list's scope (which
// works for contacts and plain addresses alike), and the contact's subscription set to
// unsubscribed. A token without a list leaves all broadcast mail (LeaveAll).
func (u *Unsubscriber) LeaveList(ctx context.Context, t Token, c store.Consent, now time.Time) error {
	if t.ListID == "" {
		return u.LeaveAll(ctx, t, c, now)
	}
	if err := u.suppress(ctx, t, t.ListID, now); err != nil {
		return err
	}
	if id := u.contactID(ctx, t); id != "" {
		_, err := u.Audience.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: t.ListID,
			Contact: store.ContactRef{ID: id}, Status: store.SubscriptionUnsubscribed, Consent: c, Now: now})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("audience: unsubscribing from %s: %w", t.ListID, err)
		}
	}
	return nil
}

// LeaveAll stops all broadcast mail to t's person: a broadcast-scope suppression. Transactional
// mail still goes out.
func (u *Unsubscriber) LeaveAll(ctx context.Context, t Token, _ store.Consent, now time.Time) error {
	return u.suppress(ctx, t, store.ScopeBroadcast, now)
}

// Confirm confirms t's pending subscription (double opt-in); t must be a confirmation token.
func (u *Unsubscriber) Confirm(ctx context.Context, t Token, c store.Consent, now time.Time) error {
	if t.Purpose != PurposeConfirm || u.Audience == nil || t.ContactID == "" || t.ListID == "" {
		return ErrNoSubscription
	}
	if _, err := u.Audience.SubscriptionConfirm(ctx, t.ListID, t.ContactID, c, now); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return ErrNoSubscription
		}
		return fmt.Errorf("audience: confirming: %w", err)
	}
	// A confirmation is a new opt-in: an earlier unsubscribe from this list no longer applies.
	key := t.Address
	if key == "" {
		ct, err := u.Audience.ContactGet(ctx, store.ContactRef{ID: t.ContactID})
		if err != nil {
			return fmt.Errorf("audience: confirming: %w", err)
		}
		key = ct.EmailKey
	}
	if err := u.Store.SuppressionDelete(ctx, key, t.ListID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("audience: confirming: %w", err)
	}
	return nil
}

func (u *Unsubscriber) suppress(ctx context.Context, t Token, scope string, now time.Time) error {
	addr := t.Address
	if addr == "" && u.Audience != nil && t.ContactID != "" {
		if ct, err := u.Audience.ContactGet(ctx, store.ContactRef{ID: t.ContactID}); err == nil {
			addr = ct.EmailKey
		}
	}
	if addr == "" {
		return nil // a contact erased since: nothing left to suppress
	}
	err := u.Store.SuppressionUpsert(ctx, []store.Suppression{{Email: addr, Scope: scope,
		Reason: store.ReasonUnsubscribe, Detail: "unsubscribe link", MessageID: t.MessageID, CreatedAt: now}})
	if err != nil {
		return fmt.Errorf("audience: unsubscribing: %w", err)
	}
	return nil
}

// contactID is the contact t names (by id, or by its address), "" when none or without an
// Audience.
func (u *Unsubscriber) contactID(ctx context.Context, t Token) string {
	if u.Audience == nil {
		return ""
	}
	if t.ContactID != "" {
		return t.ContactID
	}
	ct, err := u.Audience.ContactGet(ctx, store.ContactRef{EmailKey: t.Address})
	if err != nil {
		return ""
	}
	return ct.ID
}

// Locale returns the locale of t's contact, "" when unknown.
func (u *Unsubscriber) Locale(ctx context.Context, t Token) string {
	if u.Audience == nil {
		return ""
	}
	ref := store.ContactRef{ID: t.ContactID}
	if ref.ID == "" {
		ref = store.ContactRef{EmailKey: t.Address}
	}
	ct, err := u.Audience.ContactGet(ctx, ref)
	if err != nil {
		return ""
	}
	return ct.Locale
}

// PublicList is one public list on a person's preference page.
type PublicList struct {
	store.List
	Subscribed bool // subscribed or pending
}

// PublicLists returns the public lists with t's contact's subscription to each; none for a
// plain address or without an Audience.
func (u *Unsubscriber) PublicLists(ctx context.Context, t Token) []PublicList {
	id := u.contactID(ctx, t)
	if id == "" {
		return nil
	}
	lists, err := u.Audience.ListList(ctx)
	if err != nil {
		return nil
	}
	subs, _ := u.Audience.ContactSubscriptions(ctx, store.ContactRef{ID: id})
	var out []PublicList
	for _, l := range lists {
		if !l.Public {
			continue
		}
		pl := PublicList{List: l}
		for _, s := range subs {
			if s.ListID == l.ID && s.Status != store.SubscriptionUnsubscribed {
				pl.Subscribed = true
			}
		}
		out = append(out, pl)
	}
	return out
}

// JoinPublic subscribes t's contact to the public list listID from their own preference page:
// an explicit opt-in, so it also brings back a person who had left it (with a consent record)
// and lifts their suppression in that list's scope; a double opt-in list still waits for the
// confirmation. ErrNoSubscription when the list is not public or t names no contact.
func (u *Unsubscriber) JoinPublic(ctx context.Context, t Token, listID string, c store.Consent, now time.Time) error {
	id := u.contactID(ctx, t)
	if id == "" {
		return ErrNoSubscription
	}
	l, err := u.Audience.ListGet(ctx, listID)
	if err != nil || !l.Public {
		return ErrNoSubscription
	}
	ct, err := u.Audience.ContactGet(ctx, store.ContactRef{ID: id})
	if err != nil {
		return ErrNoSubscription
	}
	if _, err := u.Audience.SubscriptionSet(ctx, store.SubscriptionSetParams{ListID: listID,
		Contact: store.ContactRef{ID: id}, Status: store.SubscriptionSubscribed, Resubscribe: true,
		Consent: c, Now: now}); err != nil {
		return fmt.Errorf("audience: subscribing to %s: %w", listID, err)
	}
	if err := u.Store.SuppressionDelete(ctx, ct.EmailKey, listID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("audience: subscribing to %s: %w", listID, err)
	}
	return nil
}

// LeavePublic unsubscribes t's person from the public list listID (ErrNoSubscription when it
// is not public).
func (u *Unsubscriber) LeavePublic(ctx context.Context, t Token, listID string, c store.Consent, now time.Time) error {
	if u.Audience == nil {
		return ErrNoSubscription
	}
	l, err := u.Audience.ListGet(ctx, listID)
	if err != nil || !l.Public {
		return ErrNoSubscription
	}
	t.ListID = listID
	return u.LeaveList(ctx, t, c, now)
}
