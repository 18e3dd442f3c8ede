package store

import (
	"context"
	"encoding/json"
	"time"
)

// The notify area: application events, the triggers they match and the actions those create
// (DESIGN §11). Package notify owns the workflow (validating events, matching triggers,
// composing messages); this area gives it atomic steps, each one transaction.
//
// Accepting events. EventsAccept stores a group of events in one durable transaction (the
// writer's group commit, as MessagesAccept): each event upserts its contact (by email or
// external id, last_active_at moved forward only), is inserted, and inserts the actions its
// matched triggers create; an event whose client id (EventIn.ClientID, scoped to the API key) is
// stored already is not inserted again, and the stored one is returned (exactly once while the
// event is kept). The triggers were matched by the caller, which hands each event's actions in.
//
// Actions are the row as the job, like messages: an action is due at its event's time plus the
// trigger's delay (at once without one), claimed in batches by lease (ActionClaim), and finished
// with ActionFinish, which stores the action's messages (composed through package message) and
// marks it done in one transaction, only while the caller still holds the lease. A node that
// dies leaves leases that end, and another node claims the actions again; a restart loses none.
//
// Cancel-if: an action whose trigger says "unless event E arrives with the same data keys
// within the delay" carries a CancelKey (the trigger id, the event name E and the values of the
// keys, encoded by the caller). An accepted event records the cancel keys it satisfies
// (EventIn.Cancels); ActionClaim, in the transaction that claims, marks cancelled instead of
// claiming every due action for which a cancel with the same key was recorded at or after the
// action's event time (and not after its due time), so a cancel and a send never both happen.
//
// Digests: an action with a DigestKey collects events. EventsAccept appends an event to the
// pending, unclaimed action of the same trigger and digest key when there is one (its due time
// stays, so the window counts from the first event), and creates a new action otherwise.
//
// Frequency cap: ActionFinish given a CapKey and a CapPeriod stores no messages, and marks
// the action capped, when the same trigger sent to the same key less than CapPeriod before now;
// otherwise it stores them and records now for the key, in the same transaction.

// Action states: pending → done | cancelled | capped | failed | skipped. A pending action may be
// leased (LeaseOwner, LeaseUntil) while a node works it.
const (
	ActionPending   = "pending"
	ActionDone      = "done"      // its messages were stored
	ActionCancelled = "cancelled" // a cancel-if event arrived in time
	ActionCapped    = "capped"    // the trigger's frequency cap held it back
	ActionFailed    = "failed"    // no message could be composed (Reason says why)
	ActionSkipped   = "skipped"   // no recipient was left (unsubscribed, suppressed, none found)
)

// AppEvent is one application event ("order.paid") as stored.
type AppEvent struct {
	ID         string // evt_…
	Name       string
	ClientID   string // the id the client gave (or its Idempotency-Key), "" for none
	APIKeyID   string
	ContactID  string // the contact it names, "" when it names none
	Email      string // the contact's email as given, "" when none
	Data       json.RawMessage
	OccurredAt time.Time // as the client said, or the acceptance time
	CreatedAt  time.Time
	// Actions the event created or joined (a digest), filled by EventGet and EventList.
	Actions []Action
}

// EventIn is one event to accept.
type EventIn struct {
	Event AppEvent // ID, Name, ClientID, APIKeyID, Data, OccurredAt, CreatedAt set by the caller
	// Contact, when set, is upserted (created when new) in the same transaction; its
	// LastActiveAt (the event's OccurredAt) only ever moves the stored one forward. The event's
	// ContactID is the upserted contact's.
	Contact *ContactUpsert
	// Actions the event's matched triggers create (ID, TriggerID, DueAt, CancelKey, DigestKey,
	// CapKey set by the caller; EventID, ContactID and Email filled by the driver).
	Actions []Action
	// Cancels are the cancel keys this event satisfies (see the area's doc).
	Cancels []string
}

// EventsAcceptParams accepts a group of events.
type EventsAcceptParams struct {
	Events []EventIn
	Now    time.Time
}

// EventAccepted is the outcome for one event, in order.
type EventAccepted struct {
	ID        string // the stored event's id (the earlier one when Duplicate)
	ContactID string
	Duplicate bool // the client id was used before: nothing was stored for this one
	Actions   []string
	Err       error // this event's failure (ErrConflict: email and external id name two contacts)
}

// EventListParams pages through events, newest first. Zero values mean no filter.
type EventListParams struct {
	Name      string
	ContactID string
	After     time.Time // occurred at or after
	Before    time.Time // occurred before
	Cursor    string
	Limit     int
}

// Trigger: an event name and an optional condition over its data → an action that sends a
// template to someone (see package notify for every field's meaning).
type Trigger struct {
	ID        string // trg_…
	Name      string // a label for people
	Event     string // the event name it matches
	Condition json.RawMessage
	Template  string
	To        TriggerTo
	Stream    string        // StreamTransactional (default) or StreamBroadcast
	Delay     time.Duration // 0: at once
	CancelIf  *TriggerCancel
	Digest    *TriggerDigest
	Cap       time.Duration // at most one send per recipient key per Cap; 0: none
	// HonourUnsubscribes: recipients who unsubscribed (broadcast suppressions) get nothing.
	HonourUnsubscribes bool
	From               string
	Tags               []string
	Enabled            bool
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// TriggerTo says who a trigger's mail goes to; exactly one of its fields is set.
type TriggerTo struct {
	Contact   bool     `json:"contact,omitempty"`   // the event's contact
	Addresses []string `json:"addresses,omitempty"` // fixed addresses
	List      string   `json:"list,omitempty"`      // the subscribed contacts of a list (lst_…)
	Data      string   `json:"data,omitempty"`      // a path in the event data: "seller.email"
}

// TriggerCancel: the action is cancelled when event Event arrives, within the delay, with the
// same values as the triggering event at the data paths Match.
type TriggerCancel struct {
	Event string   `json:"event"`
	Match []string `json:"match"`
}

// TriggerDigest: events of one key (the value at data path Key, or the contact when Key is "")
// are collected for Window and sent as one message listing them.
type TriggerDigest struct {
	Key    string        `json:"key,omitempty"`
	Window time.Duration `json:"window"`
}

// TriggerListParams pages through triggers by id.
type TriggerListParams struct {
	Event  string // only triggers of this event name
	Cursor string
	Limit  int
}

// Action is one trigger's work for one event (or, for a digest, several).
type Action struct {
	ID         string // act_…
	TriggerID  string
	EventID    string   // the event that created it
	EventIDs   []string // every event it carries, in order (a digest's; else EventID alone)
	ContactID  string   // the event's contact, "" for none
	Email      string   // the event contact's email, "" for none
	DueAt      time.Time
	Status     string // Action…
	CancelKey  string // "" for none
	DigestKey  string // "" for none
	CapKey     string // "" for none
	MessageIDs []string
	Reason     string // why cancelled, capped, failed or skipped
	LeaseOwner string
	LeaseUntil time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// ActionClaimParams leases up to Limit due pending actions (DueAt <= Now) for Owner, oldest due
// first, after cancelling the due ones a recorded cancel names.
type ActionClaimParams struct {
	Owner      string
	Limit      int
	Now        time.Time
	LeaseUntil time.Time
}

// ActionFinishParams finishes one claimed action (applied only while Owner holds its lease).
type ActionFinishParams struct {
	ID       string
	Owner    string
	Status   string       // ActionDone (with Messages), ActionFailed or ActionSkipped
	Messages []NewMessage // stored as MessagesAccept does, each with EventID and TriggerID set
	Reason   string
	// CapPeriod > 0 with a CapKey: the frequency cap (see the area's doc).
	CapKey    string
	CapPeriod time.Duration
	// EventName is the action's event's name, carried into its event.triggered report.
	EventName string
}

// ActionFinishResult is the outcome of one finish, in order.
type ActionFinishResult struct {
	Applied bool   // false: the lease was lost, nothing changed
	Status  string // the action's status after it (ActionCapped when the cap held it back)
}

// Notify is the notify area.
type Notify interface {
	// EventsAccept stores events with their contacts and actions in one durable transaction
	// (see the area's doc) and wakes the action workers (ActionWakeups).
	EventsAccept(ctx context.Context, p EventsAcceptParams) ([]EventAccepted, error)
	// EventGet returns one event with its actions, or ErrNotFound.
	EventGet(ctx context.Context, id string) (AppEvent, error)
	// EventList returns one page of events with their actions, newest first, and the next cursor.
	EventList(ctx context.Context, p EventListParams) ([]AppEvent, string, error)
	// EventsByID returns the events of ids that exist, in the order of ids (a digest's events).
	EventsByID(ctx context.Context, ids []string) ([]AppEvent, error)
	// EventPurge deletes events that occurred before before, with their finished actions and
	// recorded cancels, at most limit, and returns how many.
	EventPurge(ctx context.Context, before time.Time, limit int) (int, error)

	// TriggerCreate stores a new trigger (ID set by the caller).
	TriggerCreate(ctx context.Context, t Trigger) error
	// TriggerUpdate replaces a trigger's fields (ErrNotFound when there is none).
	TriggerUpdate(ctx context.Context, t Trigger) error
	// TriggerGet returns one trigger or ErrNotFound.
	TriggerGet(ctx context.Context, id string) (Trigger, error)
	// TriggerList returns one page of triggers by id, and the next cursor.
	TriggerList(ctx context.Context, p TriggerListParams) ([]Trigger, string, error)
	// TriggersEnabled returns every enabled trigger (what matching uses).
	TriggersEnabled(ctx context.Context) ([]Trigger, error)
	// TriggerDelete deletes a trigger; its pending actions are cancelled (Reason "trigger
	// deleted"). ErrNotFound when there is none.
	TriggerDelete(ctx context.Context, id string, now time.Time) error

	// ActionClaim cancels the due actions a recorded cancel names and leases due ones.
	ActionClaim(ctx context.Context, p ActionClaimParams) ([]Action, error)
	// ActionFinish finishes claimed actions in one transaction (messages, caps, states) and
	// reports each action done to webhooks in it: event.triggered, subject the event, detail
	// {"trigger_id", "action_id", "message_ids"}.
	ActionFinish(ctx context.Context, now time.Time, p []ActionFinishParams) ([]ActionFinishResult, error)
	// ActionReleaseLeases returns the leases of owners beginning with ownerPrefix ("" for every
	// lease) at once (a node starting again, or stopping).
	ActionReleaseLeases(ctx context.Context, ownerPrefix string, now time.Time) (int, error)
	// ActionNextDue returns the earliest DueAt of a pending, unleased action, or ok=false.
	ActionNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	// ActionWakeups receives (coalesced, never blocking the sender) when actions may have become
	// due, e.g. after EventsAccept; on PostgreSQL from every node.
	ActionWakeups() <-chan struct{}
}
