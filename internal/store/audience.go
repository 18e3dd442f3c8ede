package store

import (
	"context"
	"encoding/json"
	"time"
)

// The audience area: contacts, lists, subscriptions and consent records (DESIGN §9). Segments,
// imports and sync sources build on it with their own interfaces.
//
// Identity. A contact is found by its id (ctc_…), its email key or its external_id. The email
// key is the lower-cased local part @ the A-label domain (the suppression list's key); callers
// compute it (package audience) and drivers compare it byte for byte. Addresses differing only
// in case are one contact.
//
// Consent. Every subscription change writes a consent record in the same transaction. Nothing
// re-subscribes a contact whose subscription is unsubscribed except a confirmation of a double
// opt-in (SubscriptionConfirm) or an explicit Resubscribe with its consent; an upsert, import or
// sync asking to subscribe such a contact leaves the subscription as it is and reports it
// (ContactUpsertResult.Kept).

// Subscription states.
const (
	SubscriptionPending      = "pending"      // double opt-in sent, not confirmed
	SubscriptionSubscribed   = "subscribed"   // receives the list's mail
	SubscriptionUnsubscribed = "unsubscribed" // left; only a confirmed opt-in or Resubscribe brings them back
)

// Consent actions recorded in consent_records.
const (
	ConsentSubscribe   = "subscribe"
	ConsentConfirm     = "confirm"
	ConsentUnsubscribe = "unsubscribe"
	ConsentResubscribe = "resubscribe"
)

// Outcomes of one contact upsert.
const (
	UpsertCreated   = "created"   // a new contact
	UpsertUpdated   = "updated"   // an existing contact, found by id, email key or external_id
	UpsertMerged    = "merged"    // an existing contact whose stored email differs from the given one only in case
	UpsertUnchanged = "unchanged" // found and nothing differed
)

// Contact is one person postie may write to.
type Contact struct {
	ID           string
	Email        string // as last given
	EmailKey     string // identity: lower-cased local part @ A-label domain
	ExternalID   string // "" when none
	Name         string
	Locale       string
	Timezone     string          // IANA name, "" when unknown
	Attributes   json.RawMessage // a JSON object, "{}" when none
	LastActiveAt time.Time       // zero: never seen active
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ContactRef names one contact by exactly one of its keys.
type ContactRef struct {
	ID         string
	EmailKey   string
	ExternalID string
}

// Consent is what is known about how a subscription change came about; it is written to the
// consent record with the list's wording at that time.
type Consent struct {
	Source    string // api, import, sync, form, unsubscribe_link, one_click, confirmation, …
	IP        string
	UserAgent string
}

// ContactUpsert is one contact to create or update. The contact is found by ID when given
// (ErrNotFound when there is none; its email and external_id change to those given), else by
// ExternalID when given, else by EmailKey. An external_id match whose EmailKey differs changes the contact's
// email (ErrConflict when that email key belongs to another contact). Nil fields are left as
// they are (or empty on create); Attributes are merged key by key into the stored object (a JSON
// null value removes a key). LastActiveAt only ever moves forward.
type ContactUpsert struct {
	ID           string // optional: update this contact (PATCH)
	Email        string // required; as given
	EmailKey     string // required; computed by the caller
	ExternalID   string // optional
	Name         *string
	Locale       *string
	Timezone     *string
	Attributes   json.RawMessage // optional JSON object merged into the stored one
	LastActiveAt time.Time       // zero: unchanged

	// Lists to subscribe the contact to: subscribed at once, or pending for a double opt-in
	// list. An unsubscribed subscription is kept (reported in Kept) unless Resubscribe.
	Lists       []string
	Resubscribe bool
	// Unsubscribe lists to unsubscribe from; a sync's opt-out column unsubscribes from every
	// list (UnsubscribeAll) and never subscribes.
	Unsubscribe    []string
	UnsubscribeAll bool
	Consent        Consent
	// CreateOnly: an existing contact is not changed (outcome unchanged, Existed set).
	CreateOnly bool
}

// ContactUpsertResult is the outcome of one ContactUpsert, in the order given.
type ContactUpsertResult struct {
	ID      string
	Outcome string // UpsertCreated, UpsertUpdated, UpsertMerged, UpsertUnchanged
	Existed bool   // CreateOnly met an existing contact
	// Pending lists whose subscription is now pending (double opt-in: the caller sends the
	// confirmation); Kept lists left unsubscribed because the contact had left them.
	Pending []string
	Kept    []string
	// Err is this item's failure (ErrConflict: email and external_id name two contacts;
	// ErrNotFound, an *UnknownListError: an unknown list); the other items are still applied.
	Err error
}

// UnknownListError is the per-item error of an upsert naming a list that does not exist; it
// is ErrNotFound.
type UnknownListError struct{ ListID string }

func (e *UnknownListError) Error() string { return "list " + e.ListID + ": " + ErrNotFound.Error() }

// Is makes errors.Is(err, ErrNotFound) hold.
func (e *UnknownListError) Is(target error) bool { return target == ErrNotFound }

// ContactsUpsertParams upserts a batch in one transaction. Items naming the same contact twice
// are applied in order.
type ContactsUpsertParams struct {
	Items []ContactUpsert
	Now   time.Time
}

// ContactListParams pages through contacts by id, ascending. Zero values mean no filter.
type ContactListParams struct {
	ListID             string // members of this list (any status unless SubscriptionStatus)
	SubscriptionStatus string // with ListID: only this status
	Cursor             string
	Limit              int
}

// ContactDeleteParams deletes one contact. With Erase, everything postie keeps about the person
// goes (see Contacts.ContactDelete) and a suppression keyed by ErasedKey (an HMAC of the email
// key, computed by the caller) is kept so they are never written to again.
type ContactDeleteParams struct {
	Ref       ContactRef
	Erase     bool
	ErasedKey string
	Now       time.Time
}

// List is a mailing list.
type List struct {
	ID          string
	Name        string
	Description string
	Public      bool
	DoubleOptIn bool
	Wording     string // consent text copied into consent records
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Counts by subscription status (filled by ListGet and ListList).
	Subscribed, Pending, Unsubscribed int
}

// Subscription is one contact × list.
type Subscription struct {
	ListID         string
	ContactID      string
	Status         string
	Source         string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	ConfirmedAt    time.Time
	UnsubscribedAt time.Time
}

// ConsentRecord is one entry of a contact's consent history.
type ConsentRecord struct {
	ID        int64
	ContactID string
	ListID    string
	Action    string // ConsentSubscribe, ConsentConfirm, ConsentUnsubscribe, ConsentResubscribe
	Consent
	Wording string
	At      time.Time
}

// SubscriptionSetParams changes one subscription. Status subscribed on a double opt-in list
// makes it pending (unless Confirmed); on an unsubscribed subscription it changes nothing unless
// Resubscribe (result Kept). Status unsubscribed always applies.
type SubscriptionSetParams struct {
	ListID      string
	Contact     ContactRef
	Status      string // SubscriptionSubscribed or SubscriptionUnsubscribed
	Resubscribe bool
	Confirmed   bool // the caller confirmed the address itself (no double opt-in message)
	Consent     Consent
	Now         time.Time
}

// SubscriptionSetResult is the subscription after the change; Kept when it stayed unsubscribed,
// Changed when the change was applied (and a consent record written).
type SubscriptionSetResult struct {
	Subscription
	Kept    bool
	Changed bool
}

// Audience is the contacts, lists and subscriptions store (implemented by every driver; the
// conformance suite has its cases).
type Audience interface {
	// ContactsUpsert creates or updates contacts in one transaction, subscriptions and consent
	// records included, and returns one result per item (see ContactUpsert). Reports
	// contact.subscribed and contact.unsubscribed for each subscription it makes subscribed or
	// unsubscribed (a pending one is not reported) to webhooks (webhooks area).
	ContactsUpsert(ctx context.Context, p ContactsUpsertParams) ([]ContactUpsertResult, error)
	// ContactGet returns one contact or ErrNotFound.
	ContactGet(ctx context.Context, ref ContactRef) (Contact, error)
	// ContactList returns one page of contacts matching p by id and the next cursor ("" on the
	// last page). Limit defaults to 50, capped at 1000.
	ContactList(ctx context.Context, p ContactListParams) ([]Contact, string, error)
	// ContactDelete deletes a contact with its subscriptions and consent records (ErrNotFound
	// when none). With Erase it also removes the person's personal data from messages
	// (recipients, bodies, data, events), idempotency responses and every later area's rows
	// (campaign recipients, bounce reports, webhook payloads), and upserts a global suppression
	// keyed by ErasedKey (reason ReasonErased), all in one transaction. A message naming the
	// person (by its email or email key) keeps its row, status and other recipients, but loses
	// the person's addresses, its subject, data, headers, metadata and MIME, and the details of
	// the events naming them; one still waiting to be sent is cancelled (not reported to
	// webhooks). Their plain suppression goes too (it names them), and so do the webhook
	// deliveries about them (their contact, or a message to one of their addresses).
	ContactDelete(ctx context.Context, p ContactDeleteParams) error
	// ContactSubscriptions returns a contact's subscriptions by list id.
	ContactSubscriptions(ctx context.Context, ref ContactRef) ([]Subscription, error)
	// ContactConsent returns a contact's consent records, oldest first.
	ContactConsent(ctx context.Context, ref ContactRef) ([]ConsentRecord, error)

	// ListCreate stores a new list (its ID set by the caller).
	ListCreate(ctx context.Context, l List) (List, error)
	// ListGet returns one list with its counts, or ErrNotFound.
	ListGet(ctx context.Context, id string) (List, error)
	// ListList returns every list by id (lists are few).
	ListList(ctx context.Context) ([]List, error)
	// ListUpdate replaces a list's name, description, public, double_opt_in and wording.
	ListUpdate(ctx context.Context, l List, now time.Time) (List, error)
	// ListDelete deletes a list and its subscriptions (consent records stay with the contact).
	ListDelete(ctx context.Context, id string) error

	// SubscriptionSet changes one subscription (see SubscriptionSetParams); ErrNotFound for an
	// unknown list or contact. Reports contact.subscribed or contact.unsubscribed when the
	// subscription becomes so (webhooks area).
	SubscriptionSet(ctx context.Context, p SubscriptionSetParams) (SubscriptionSetResult, error)
	// SubscriptionConfirm confirms a pending subscription (double opt-in), or re-subscribes an
	// unsubscribed one, since a confirmation is a new opt-in; idempotent for a subscribed one.
	// Reports contact.subscribed when it changes the subscription (webhooks area).
	SubscriptionConfirm(ctx context.Context, listID, contactID string, c Consent, now time.Time) (Subscription, error)
}
