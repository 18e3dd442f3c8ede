// Package store is postie's persistence boundary: one interface per area of the data, the row and
// parameter types, and the sentinel errors every driver translates its own errors into.
//
// # Areas
//
// Each service takes the slice of the store it uses: delivery a MessageQueue, the template
// catalog a Templates, the API its Messages, Suppressions and APIKeys. Store embeds every area
// (plus Ping and Close); each driver (sqlite, postgres) implements the whole Store and passes one
// conformance suite (storetest), and only app opens a driver. A new area (contacts, campaigns,
// webhooks) declares its own interface, its row and params types and its conformance cases,
// and Store embeds it; existing areas do not grow to carry it. The rules every driver shares
// (checks, defaults, JSON columns, page cutting) live in store/driverkit, which only drivers
// import.
//
// # The message row is the job
//
// A message is accepted by inserting its row (status scheduled or queued) together with the
// rendered MIME. Delivery workers claim due rows in batches with MessageClaim, which moves them to
// sending and stamps a lease (lease_owner, lease_until); a driver implementing AcceptClaims may
// instead store a message so claimed by its own node's delivery and hand it over from the accept
// (no claim, no read-back). The worker reports each outcome with
// MessageFinish, which only applies while the caller still owns the lease. A lease that expires
// (its worker died) is returned to queued by MessageRescue; a node shutting down hands its leases
// back at once with MessageReleaseLeases. Nothing is ever deleted by the delivery cycle.
//
// # Recipients
//
// Each recipient of a message has a state (RecipientStatus), and the message's status is derived
// from them (DeriveStatus). While all of a message's recipients share one outcome, their states
// are the message's own (Status.RecipientState) and nothing per recipient is stored, so the
// common case costs no more than one row. An attempt whose recipients fare differently makes
// the message split (MessageFinishParams.Split): from then on each recipient's state is stored
// and claims return only those still to be sent to (ClaimedMessage.Recipients).
//
// # A state change and its report in one transaction: the outbox
//
// Webhooks must learn of a state change (a message sent, a recipient bounced, a campaign run
// finished) exactly when it commits: never a report of a change that rolled back, never a
// change without its report. The store method that makes the change writes the report in the
// same statement or transaction; the webhooks area's doc (webhooks.go) says how: the outbox is
// the webhook_deliveries table itself, one row per subscribed endpoint.
//
// There is no transaction handle (store.Tx) for services to hold. A SQLite database has one
// writer connection whose transactions are grouped into shared commits; a transaction held
// open while service code runs (rendering, an HTTP call, a mistake) would stall every writer of
// the node. On PostgreSQL each step of such a transaction is a round trip, while MessageFinish
// writes a whole batch of outcomes in one statement. A handle would also double every area's
// methods (with and without a transaction). Reading the timeline (message_events) by id instead
// would miss rows: a PostgreSQL sequence number is taken before its transaction commits, so a
// reader that moves past id n can miss a row numbered below n that commits later. Work that
// must be atomic across areas (a campaign chunk creating its messages and marking its
// recipients, an action storing its messages) is one method of the area that owns the
// workflow, written in one transaction by the driver, not a transaction assembled by the
// service.
//
// Campaigns need no outbox for their progress: a campaign message carries its run
// (Message.RunID), and a run's progress counts its messages by status through an index (see the
// campaigns area), so it is as current as the messages themselves.
//
// All methods take the current time from their parameters (never from the wall clock), so tests
// control time. All methods are safe for concurrent use.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// Sentinel errors. Drivers wrap or return these; callers test with errors.Is.
var (
	// ErrNotFound: no row with that id (or key).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the row exists but its state does not allow the change (e.g. cancelling a sent
	// message).
	ErrConflict = errors.New("conflict with the current state")
	// ErrIdempotencyMismatch: an idempotency key was reused with a different request body.
	ErrIdempotencyMismatch = errors.New("idempotency key already used for a different request")
	// ErrBadCursor: a listing cursor that no listing returned (malformed or from another listing).
	ErrBadCursor = errors.New("invalid cursor")
	// ErrLocked: another process holds the database (SQLite allows one postie process per file).
	ErrLocked = errors.New("database is in use by another postie process")
	// ErrUnavailable: the database could not be reached (connection refused or lost, server
	// shutting down, too many connections). Nothing was changed, or the change's fate is unknown
	// for a lost commit; the caller may retry. Drivers wrap the underlying error with it.
	ErrUnavailable = errors.New("database unavailable")
	// ErrBadText: a text value holds what the database cannot store (PostgreSQL: U+0000 in text
	// or JSON). Nothing was changed. Callers validate their input first; this is the safety net.
	ErrBadText = errors.New("a text value holds a character the database cannot store (U+0000)")
)

// Status is a message's delivery state (DESIGN §3).
type Status string

// Message states.
const (
	StatusScheduled  Status = "scheduled"
	StatusQueued     Status = "queued"
	StatusSending    Status = "sending"
	StatusDeferred   Status = "deferred"
	StatusSent       Status = "sent"
	StatusFailed     Status = "failed"
	StatusSuppressed Status = "suppressed"
	StatusCancelled  Status = "cancelled"
	StatusBounced    Status = "bounced"
	StatusComplained Status = "complained"
	// StatusPartiallyFailed: delivery is over, some recipients got the message (sent, or later
	// bounced or complained) and some failed. See DeriveStatus.
	StatusPartiallyFailed Status = "partially_failed"
)

// Statuses lists every valid status, for validating filters.
var Statuses = []Status{StatusScheduled, StatusQueued, StatusSending, StatusDeferred, StatusSent,
	StatusFailed, StatusSuppressed, StatusCancelled, StatusBounced, StatusComplained,
	StatusPartiallyFailed}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// Cancellable reports whether a message in state s may still be cancelled.
func (s Status) Cancellable() bool {
	return s == StatusScheduled || s == StatusQueued || s == StatusDeferred
}

// RecipientStatus is the delivery state of one recipient of a message. Every recipient has one;
// the message's status is derived from them (DeriveStatus).
type RecipientStatus string

// Recipient states.
const (
	RecipientQueued     RecipientStatus = "queued"     // waiting for an attempt (scheduled, queued or being sent)
	RecipientDeferred   RecipientStatus = "deferred"   // refused for now; tried again on the retry ladder
	RecipientSent       RecipientStatus = "sent"       // the relay accepted it for this recipient
	RecipientFailed     RecipientStatus = "failed"     // refused for good, or attempts/TTL used up
	RecipientSuppressed RecipientStatus = "suppressed" // on the suppression list at delivery: not sent
	RecipientCancelled  RecipientStatus = "cancelled"  // cancelled before it was sent
	RecipientBounced    RecipientStatus = "bounced"    // sent, then bounced (DSN)
	RecipientComplained RecipientStatus = "complained" // sent, then reported as spam
)

// RecipientStatuses lists every recipient state.
var RecipientStatuses = []RecipientStatus{RecipientQueued, RecipientDeferred, RecipientSent,
	RecipientFailed, RecipientSuppressed, RecipientCancelled, RecipientBounced, RecipientComplained}

// Valid reports whether s is a known recipient state.
func (s RecipientStatus) Valid() bool {
	return slices.Contains(RecipientStatuses, s)
}

// RecipientState is the state every recipient of a message has while the message is not split
// (all its recipients share one outcome): scheduled, queued and sending are queued; deferred,
// sent, failed, suppressed, cancelled, bounced and complained are the same word. It is "" for
// partially_failed, which only a split message has.
func (s Status) RecipientState() RecipientStatus {
	switch s {
	case StatusScheduled, StatusQueued, StatusSending:
		return RecipientQueued
	case StatusPartiallyFailed:
		return ""
	}
	return RecipientStatus(s)
}

// DeriveStatus is a message's status given its recipients' states and job, the status the
// message's row has as a job (scheduled, queued, sending or deferred) while some recipient is
// still to be sent to. It is the published table of docs/api.md:
//
//   - any recipient queued or deferred: job;
//   - otherwise, every recipient in one state S: S;
//   - some delivered (sent, bounced or complained) and some failed: partially_failed;
//   - some failed and none delivered: failed (the others were suppressed or cancelled);
//   - some delivered and none failed: sent (the suppressed or cancelled ones are named in the
//     message's recipients);
//   - otherwise suppressed and cancelled ones: suppressed.
//
// No recipient at all is job.
func DeriveStatus(job Status, states []RecipientStatus) Status {
	if len(states) == 0 {
		return job
	}
	var delivered, failed, suppressed int
	same := true
	for _, st := range states {
		switch st {
		case RecipientQueued, RecipientDeferred:
			return job
		case RecipientSent, RecipientBounced, RecipientComplained:
			delivered++
		case RecipientFailed:
			failed++
		case RecipientSuppressed:
			suppressed++
		}
		same = same && st == states[0]
	}
	switch {
	case same:
		return Status(states[0])
	case delivered > 0 && failed > 0:
		return StatusPartiallyFailed
	case failed > 0:
		return StatusFailed
	case delivered > 0:
		return StatusSent
	case suppressed > 0:
		return StatusSuppressed
	}
	return StatusCancelled
}

// Recipient is one recipient of a message with its delivery state.
type Recipient struct {
	Email     string // the bare address, lowercased
	Status    RecipientStatus
	Attempts  int            // attempts made to deliver to this recipient
	LastError *DeliveryError // why its last attempt failed; nil when none did
	SentAt    time.Time      // zero until sent
	UpdatedAt time.Time
}

// Streams.
const (
	StreamTransactional = "transactional"
	StreamBroadcast     = "broadcast"
)

// Streams lists the known streams in claim-priority order.
var Streams = []string{StreamTransactional, StreamBroadcast}

// Event types recorded in a message's timeline.
const (
	EventQueued       = "queued"
	EventScheduled    = "scheduled"
	EventSent         = "sent"
	EventDeferred     = "deferred"
	EventFailed       = "failed"
	EventSuppressed   = "suppressed"
	EventCancelled    = "cancelled"
	EventLeaseExpired = "lease_expired"
	EventReleased     = "released"
	EventRetried      = "retried"
)

// Suppression reasons.
const (
	ReasonHardBounce  = "hard_bounce"
	ReasonComplaint   = "complaint"
	ReasonUnsubscribe = "unsubscribe"
	ReasonManual      = "manual"
	// ReasonErased: the suppression an erased contact leaves, keyed by an HMAC of its address
	// (ContactDeleteParams.ErasedKey), never added through the API.
	ReasonErased = "erased"
)

// SuppressionReasons lists the valid reasons, for validating input.
var SuppressionReasons = []string{ReasonHardBounce, ReasonComplaint, ReasonUnsubscribe, ReasonManual}

// Suppression scopes: which mail a suppression stops. A list's own scope is its id (lst_…).
const (
	ScopeGlobal    = "global"    // every stream (hard bounces, manual, erased people)
	ScopeBroadcast = "broadcast" // broadcast mail only (complaints, unsubscribe from everything)
)

// Suppression is an address postie will not send to, in one scope. Email is stored lowercased
// (bare address, as in Message.Recipients) and matched case-insensitively; an address has at
// most one suppression per scope.
type Suppression struct {
	Email     string
	Scope     string // ScopeGlobal, ScopeBroadcast or a list id; "" is taken as ScopeGlobal
	Reason    string // one of SuppressionReasons
	Detail    string // why, e.g. the relay's "550 5.1.1 user unknown"; free text for manual ones
	MessageID string // the message whose outcome caused it, "" when added by hand
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires
}

// SuppressionListParams pages through suppressions, newest first. Zero values mean no filter.
type SuppressionListParams struct {
	Reason string
	Scope  string    // only this scope
	Email  string    // exact address, case-insensitive
	Now    time.Time // expired suppressions (ExpiresAt <= Now) are left out; zero Now keeps them all
	Cursor string    // opaque, the next cursor SuppressionList returned; ErrBadCursor when malformed
	Limit  int
}

// MessageRetryParams requeues failed and partially_failed messages with fresh attempts: status
// queued, attempts 0, next_attempt_at Now, expires_at ExpiresAt, lease cleared, last_error kept
// for the record, and a "retried" event at Now whose detail holds the attempts made before
// ({"attempts": 4}). Only the failed recipients are queued again (attempts 0), never the sent
// ones: a message whose recipients share one outcome is sent to all of them again; a split one
// to its failed recipients alone (addressed by their lowercased address), whose states become
// queued and which the event lists ({"attempts": 4, "recipients": ["b@x"]}). Exactly one of ID
// and Filter is used: ID retries one message (ErrNotFound when there is none, ErrConflict when
// it is neither failed nor partially_failed); otherwise every such message matching Filter is
// retried (its Statuses, Cursor and Limit are ignored). With Filter.Recipient, a message is
// retried when that recipient failed (see MessageListParams).
type MessageRetryParams struct {
	ID        string
	Filter    MessageListParams
	Now       time.Time
	ExpiresAt time.Time
}

// DeliveryError is the reason of the last failed attempt, as shown to users.
type DeliveryError struct {
	Code     int       `json:"code,omitempty"`     // SMTP reply code, 0 when there was none
	Enhanced string    `json:"enhanced,omitempty"` // RFC 3463 enhanced status code, e.g. "4.3.0"
	Text     string    `json:"text"`               // the server's reply text or the local error
	Stage    string    `json:"stage,omitempty"`    // connect, helo, auth, mail, rcpt, data, …
	Attempt  int       `json:"attempt,omitempty"`  // which attempt failed (1-based)
	At       time.Time `json:"at"`
}

// AttachmentInfo describes a stored attachment; the bytes live in the message's raw MIME.
type AttachmentInfo struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	ContentID   string `json:"content_id,omitempty"`
	Size        int    `json:"size"`
}

// Message is one row of the messages table, without its raw MIME.
type Message struct {
	ID              string
	Stream          string
	Status          Status
	From            string   // formatted RFC 5322 mailbox
	To, Cc, Bcc     []string // formatted mailboxes as accepted
	ReplyTo         string
	Subject         string
	Template        string
	TemplateVersion int
	Locale          string          // the template's locale variant used, "" for its default
	Data            json.RawMessage // template data, nil when none
	Headers         map[string]string
	Tags            []string
	Metadata        map[string]string
	Attachments     []AttachmentInfo
	EnvelopeFrom    string   // bare address for MAIL FROM
	Recipients      []string // bare addresses for RCPT TO (to+cc+bcc, deduplicated)
	Size            int      // octets of raw MIME
	Attempts        int      // delivery attempts made so far
	MaxAttempts     int
	NextAttemptAt   time.Time // when the message is next due (send_at for scheduled ones)
	LeaseOwner      string
	LeaseUntil      time.Time // zero when not leased
	LastError       *DeliveryError
	ProviderID      string // relay queue id or provider message id
	MessageID       string // the Message-ID header, without angle brackets
	IdempotencyKey  string
	APIKeyID        string
	CampaignID      string
	RunID           string // the campaign run (run_…) that created it, "" for none
	ListID          string // the list a broadcast message was sent for (lst_…), "" for none
	EventID         string // the application event (evt_…) whose trigger created it, "" for none
	TriggerID       string // that trigger (trg_…), "" for none
	CreatedAt       time.Time
	SendAt          time.Time // zero when sent immediately
	SentAt          time.Time // zero until sent
	ExpiresAt       time.Time // give up after this
	UpdatedAt       time.Time
}

// Event is one entry of a message's timeline.
type Event struct {
	ID        int64
	MessageID string
	Type      string
	At        time.Time
	Detail    json.RawMessage // JSON object or nil
}

// NewMessage is one message to insert: the row and its raw MIME.
type NewMessage struct {
	Message Message // Status must be queued or scheduled
	// Raw must not change once handed to MessagesAccept: a driver may pass it on to delivery
	// (AcceptClaims).
	Raw []byte
}

// Idempotency records a request made with an Idempotency-Key so a repeat returns the same response.
type Idempotency struct {
	APIKeyID    string
	Key         string
	RequestHash []byte // hash of method, path and body
	StatusCode  int    // the response to replay
	Response    []byte // JSON body to replay
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// MessagesAcceptParams inserts messages atomically, optionally under an idempotency key.
type MessagesAcceptParams struct {
	Messages    []NewMessage
	Idempotency *Idempotency // nil when the request had no Idempotency-Key
	Now         time.Time
}

// MessagesAcceptResult reports whether a previous response was replayed instead.
type MessagesAcceptResult struct {
	Replayed   bool // true: nothing inserted; StatusCode/Response are the original ones
	StatusCode int
	Response   []byte
}

// MessageListParams filters a message listing. Zero values mean "no filter". Results are newest
// first (by id, which is time-sortable); Cursor is the id of the last row of the previous page.
type MessageListParams struct {
	Statuses []Status
	Stream   string
	Tag      string
	// Recipient is a bare address, matched case-insensitively against to/cc/bcc. With Statuses
	// too, a message matches when its own status or that recipient's state (Recipient.Status,
	// for the recipient-state names among Statuses) is one of them: status failed finds the
	// partially_failed message where that recipient failed.
	Recipient     string
	CampaignID    string
	CreatedAfter  time.Time // inclusive
	CreatedBefore time.Time // exclusive
	// ErrorCode matches the last error's reply code ("550") or enhanced code ("5.1.1"); a prefix
	// ending in a dot also matches ("5.1." matches 5.1.1 and 5.1.10).
	ErrorCode string
	Cursor    string
	Limit     int
}

// MessageClaimParams claims up to Limit due messages of one stream for Owner.
type MessageClaimParams struct {
	Owner      string
	Stream     string
	Limit      int
	Now        time.Time
	LeaseUntil time.Time
}

// ClaimedMessage is a message leased to a worker: the fields delivering it reads and the MIME to
// send. The rest of the message stays in the store (MessageGet); reading only these is what
// makes a claim cheap.
type ClaimedMessage struct {
	ID           string
	Stream       string
	ListID       string // the message's list, whose suppressions apply to it too
	EnvelopeFrom string
	// Recipients are those still to be sent to: every recipient, or for a Split message its
	// pending ones (queued or deferred).
	Recipients []string
	// Split: the message's recipients do not share one outcome; each has its own state, and
	// MessageFinish must be given them (MessageFinishParams.Split).
	Split         bool
	Attempts      int
	MaxAttempts   int
	NextAttemptAt time.Time
	ExpiresAt     time.Time
	LastError     *DeliveryError
	Raw           []byte
}

// MessageFinishParams records the outcome of one delivery attempt. It applies only while the
// message is still leased by Owner (a lease taken over by another worker wins).
//
// A message whose recipients all share the outcome (Split false, the common case) is recorded
// on its row alone: its recipients' states are its status (Status.RecipientState), with its
// attempts, last error and sent time. When the recipients of an attempt do not share one
// outcome, or the message was already split (ClaimedMessage.Split), Split is set: Recipients
// holds the new state of each recipient attempted or suppressed, Pending those still to be sent
// to (their original addresses), and the driver writes both in the same transaction. Once split,
// a message stays split: each of its recipients has its own state. For a split finish with
// nothing Pending, the driver replaces Status by DeriveStatus over all the message's recipients
// and, when that is failed or partially_failed and LastError is nil, sets LastError to the most
// recent failed recipient's error; SentAt and ProviderID keep their earlier values when zero.
type MessageFinishParams struct {
	ID            string
	Owner         string
	Status        Status // sent, deferred, failed, suppressed, partially_failed, or queued (attempt not counted)
	Attempts      int    // the new attempt count
	NextAttemptAt time.Time
	LastError     *DeliveryError // nil keeps no error (cleared)
	ProviderID    string
	SentAt        time.Time
	Events        []Event // appended to the timeline (MessageID filled in by the driver)
	// Suppress adds (or refreshes, as SuppressionUpsert) suppressions in the same transaction,
	// e.g. after a hard bounce; a zero CreatedAt is taken as now. They are applied only when the
	// outcome itself is (the lease was still held).
	Suppress []Suppression
	// Split, Recipients and Pending: per-recipient outcomes (see above). Recipients' emails are
	// lowercased; their UpdatedAt is ignored (the finish time is recorded).
	Split      bool
	Recipients []Recipient
	Pending    []string
}

// MessageRenewParams extends the leases Owner still holds on IDs to Until.
type MessageRenewParams struct {
	Owner string
	IDs   []string
	Until time.Time
}

// MessageReleaseParams returns leased messages to queued. Owner "" releases every lease (used by
// a SQLite node at start, since only one process can use the file). OwnerPrefix, when set, limits
// the release to the owners that begin with it, compared byte for byte (used by a PostgreSQL node
// at start to take back what a previous run of the same node id held).
type MessageReleaseParams struct {
	Owner       string
	OwnerPrefix string
	Now         time.Time
}

// APIKey is a stored API key. Only the SHA-256 of the secret is kept.
type APIKey struct {
	ID        string
	Name      string
	Hash      []byte
	Prefix    string // first characters of the secret, to recognise it in listings
	CreatedAt time.Time
}

// Template origins: where a template's versions come from. A live name belongs to one origin.
const (
	TemplateOriginAPI = "api" // PUT /v1/templates/{name}
	TemplateOriginDir = "dir" // a file of POSTIE_TEMPLATES_DIR
)

// TemplateVariant is the content of one locale of a template: it replaces the default subject,
// html and text as a whole (layout and schema are shared by every locale).
type TemplateVariant struct {
	Subject string `json:"subject"`
	HTML    string `json:"html,omitempty"`
	Text    string `json:"text,omitempty"`
}

// Template is one version of a stored template. Versions are immutable: a change is a new version.
type Template struct {
	Name        string
	Version     int // 1, 2, …; never reused, not even after a delete
	Subject     string
	HTML        string
	Text        string
	Layout      string          // name of the template wrapping this one, "" for none
	Schema      json.RawMessage // JSON Schema of the data, nil when none
	Description string
	Locales     map[string]TemplateVariant // keyed by locale tag ("ko", "pt-BR"); nil when none
	Origin      string                     // TemplateOriginAPI or TemplateOriginDir
	CreatedAt   time.Time                  // when this version was stored
	DeletedAt   time.Time                  // when the name was deleted; zero while it is live
}

// TemplatePutParams stores a new version of a template.
type TemplatePutParams struct {
	// Template is the content; Name and Origin are required, Version, CreatedAt and DeletedAt are
	// ignored (the store sets them).
	Template Template
	Now      time.Time
	// AnyOrigin lets the version replace a live template of another origin. Without it, that is
	// ErrConflict: a name is managed by the API or by the templates directory, not both.
	AnyOrigin bool
}

// TemplateDeleteParams deletes a template (every version).
type TemplateDeleteParams struct {
	Name string
	// Origin, unless AnyOrigin, must be the live template's origin (ErrConflict otherwise).
	Origin    string
	AnyOrigin bool
	// Force deletes even while messages waiting to be sent (scheduled, queued or deferred) were
	// made from it, or while it is the layout of another live template; otherwise those are
	// ErrConflict.
	Force bool
	Now   time.Time
}

// TemplateListParams pages through the live templates by name.
type TemplateListParams struct {
	Origin string // only templates whose latest version has this origin; "" for all
	Cursor string // opaque, the next cursor TemplateList returned; ErrBadCursor when malformed
	Limit  int
}

// Store is implemented by every driver (sqlite, postgres) and exercised by storetest. The
// wiring (app, and the HTTP API and the CLI it hands it to) holds a whole Store; each service
// takes the areas it uses (MessageQueue, Messages,
// Suppressions, Templates, APIKeys). A new area (contacts, campaigns, webhooks) adds its own
// interface here and embeds it below, rather than growing an existing one.
type Store interface {
	// Ping checks that the database answers and, where the driver can tell, can take writes
	// (readiness): ErrUnavailable when not.
	Ping(ctx context.Context) error
	// Close releases the database (and its lock).
	Close() error

	MessageQueue
	Messages
	Suppressions
	Templates
	APIKeys
	Sources
	Audience
	Segments
	Imports
	Secrets
	Campaigns
	Webhooks
	Notify
	Inbound
	Stats
	Retention
}

// MessageQueue is the message row as a job, what delivery uses: claim due messages with a lease,
// record each outcome, renew, rescue or release leases, wait for new work, and check recipients
// against the suppression list.
type MessageQueue interface {
	// MessageClaim leases up to p.Limit due messages (status scheduled, queued or deferred with
	// next_attempt_at <= now) of p.Stream, oldest due first, setting them to sending, and returns
	// them as they are after the claim.
	MessageClaim(ctx context.Context, p MessageClaimParams) ([]ClaimedMessage, error)
	// MessageFinish applies outcomes in one transaction and returns how many still held their
	// lease (the others were skipped). Reports message.sent, message.deferred, message.failed
	// and message.suppressed for each recipient given that state by an applied outcome (every
	// recipient of a message not split), with the detail of the outcome's event of that type
	// (webhooks area); an outcome that keeps the message queued reports nothing.
	MessageFinish(ctx context.Context, now time.Time, p []MessageFinishParams) (int, error)
	// MessageRescue returns messages whose lease expired before now to queued, recording a
	// lease_expired event, and returns their ids.
	MessageRescue(ctx context.Context, now time.Time) ([]string, error)
	// MessageReleaseLeases returns the leases of p.Owner (or every lease), those of p.OwnerPrefix
	// only when it is set, to queued at once.
	MessageReleaseLeases(ctx context.Context, p MessageReleaseParams) (int, error)
	// MessageNextDue returns the earliest next_attempt_at of a claimable message in stream, or
	// ok=false when there is none (or the stream is paused: store.Inbound.StreamPause).
	MessageNextDue(ctx context.Context, stream string) (t time.Time, ok bool, err error)
	// MessageRenewLeases extends to p.Until the leases p.Owner still holds among p.IDs (a slow
	// send keeps its message: MessageRescue only takes leases that ended) and returns how many were
	// extended. Messages no longer leased by p.Owner are skipped.
	MessageRenewLeases(ctx context.Context, p MessageRenewParams) (int, error)
	// Wakeups returns a channel that receives (without blocking the sender, coalesced) when
	// messages of stream may have become claimable, e.g. after MessagesAccept.
	Wakeups(stream string) <-chan struct{}

	SuppressionMatcher
}

// Messages is what the API does with messages: accept them (with idempotency), read one (row,
// MIME, timeline, recipients), list, cancel and retry.
type Messages interface {
	// MessagesAccept inserts every message and the idempotency record in one durable
	// transaction. Each message's timeline starts with a "queued" event, or "scheduled" when
	// SendAt is after CreatedAt (the status must agree), at CreatedAt; drivers may derive that
	// event from the row rather than store it, in which case its ID is 0. When p.Idempotency names a key already stored
	// and unexpired for that API key, nothing is inserted: with the same RequestHash the stored
	// response is returned with Replayed set; with another hash the error is ErrIdempotencyMismatch.
	// Concurrent calls with one key insert once.
	MessagesAccept(ctx context.Context, p MessagesAcceptParams) (MessagesAcceptResult, error)
	// MessageGet returns one message or ErrNotFound.
	MessageGet(ctx context.Context, id string) (Message, error)
	// MessageRaw returns the stored MIME of a message or ErrNotFound.
	MessageRaw(ctx context.Context, id string) ([]byte, error)
	// MessageRawPart returns at most n octets of a message's stored MIME from offset on (none
	// past its end), and the MIME's whole size, or ErrNotFound; a reader of a large MIME
	// holds one part at a time.
	MessageRawPart(ctx context.Context, id string, offset int64, n int) ([]byte, int64, error)
	// MessageEvents returns a message's timeline, oldest first.
	MessageEvents(ctx context.Context, id string) ([]Event, error)
	// MessageRecipients returns the recipients of a message with their states, by address
	// (ErrNotFound when there is no such message). A message that is not split gives every
	// recipient its own status's state (Status.RecipientState) with its attempts, last error and
	// sent time.
	MessageRecipients(ctx context.Context, id string) ([]Recipient, error)
	// MessageList returns one page of messages matching p, newest first.
	MessageList(ctx context.Context, p MessageListParams) ([]Message, error)
	// MessageCancel cancels a scheduled, queued or deferred message (ErrConflict otherwise,
	// ErrNotFound when there is none) and returns it. Of a split message only the recipients
	// still to be sent to are cancelled (the sent ones stay sent) and its status is derived
	// (DeriveStatus). Reports message.cancelled for each recipient it cancels (webhooks area).
	MessageCancel(ctx context.Context, id string, now time.Time) (Message, error)
	// MessageRetry requeues failed and partially_failed messages (see MessageRetryParams), wakes their streams'
	// workers (Wakeups), and returns the ids retried, in no particular order. A retry by filter
	// may commit in several transactions (it can match every failed message); each message is
	// retried at most once per call.
	MessageRetry(ctx context.Context, p MessageRetryParams) ([]string, error)
	// IdempotencyPurge deletes idempotency records that expired before now.
	IdempotencyPurge(ctx context.Context, now time.Time) (int, error)
}

// SuppressionMatcher is the one suppression query delivery makes.
type SuppressionMatcher interface {
	// SuppressionMatch returns the active (unexpired at now) suppressions among emails in any of
	// scopes ("" counts as ScopeGlobal; none given: ScopeGlobal alone), keyed by lowercased
	// address, each address's in no particular order. It is called for every delivery, so
	// drivers answer it from the primary key in one query.
	SuppressionMatch(ctx context.Context, emails, scopes []string, now time.Time) (map[string][]Suppression, error)
}

// Suppressions is the suppression list: the addresses postie will not send to.
type Suppressions interface {
	// SuppressionUpsert adds suppressions in one transaction; each needs an Email, a Reason and a
	// CreatedAt, and the Email is stored lowercased; a Scope "" is ScopeGlobal. An address
	// already suppressed in that scope gets the new reason, detail, message, expiry and
	// CreatedAt: the latest cause is the one shown.
	SuppressionUpsert(ctx context.Context, s []Suppression) error
	// SuppressionGet returns the suppression of one address (any case) in scope ("" is
	// ScopeGlobal) or ErrNotFound; an expired one counts as absent when now is not zero.
	SuppressionGet(ctx context.Context, email, scope string, now time.Time) (Suppression, error)
	// SuppressionList returns one page of suppressions matching p, newest first (by CreatedAt,
	// then Email), and the cursor of the next page ("" on the last one). Limit defaults to 50 and
	// is capped at 1000. A malformed Cursor is ErrBadCursor.
	SuppressionList(ctx context.Context, p SuppressionListParams) (page []Suppression, next string, err error)
	// SuppressionDelete removes the suppression of one address (any case) in scope ("" is
	// ScopeGlobal); ErrNotFound when none.
	SuppressionDelete(ctx context.Context, email, scope string) error

	SuppressionMatcher
}

// Templates is the versioned template catalog, what internal/templates uses.
type Templates interface {
	// TemplatePut stores a new version of p.Template.Name, numbered one more than the latest
	// version ever stored under that name (deleted ones included, so that a name and version
	// always mean one content), and returns it. A deleted name comes back to life. It is
	// ErrConflict when the name is live with another origin, unless p.AnyOrigin.
	TemplatePut(ctx context.Context, p TemplatePutParams) (Template, error)
	// TemplateGet returns one version of a template, or with version 0 its latest version.
	// The latest version of a deleted name is ErrNotFound; an explicit version of a deleted name
	// is returned (with DeletedAt set), so that the version a message recorded can be read.
	TemplateGet(ctx context.Context, name string, version int) (Template, error)
	// TemplateList returns one page of the live templates (their latest versions) by name,
	// ascending, and the cursor of the next page ("" on the last one). Limit defaults to 50 and is
	// capped at 1000.
	TemplateList(ctx context.Context, p TemplateListParams) (page []Template, next string, err error)
	// TemplateDelete marks a live template deleted (see TemplateDeleteParams for the conflicts).
	// Its versions are kept, for the messages that recorded them and so that version numbers are
	// never reused; it disappears from TemplateList and from TemplateGet of the latest version.
	// ErrNotFound when the name is not live.
	TemplateDelete(ctx context.Context, p TemplateDeleteParams) error
}

// APIKeys is the stored API keys (only their hashes).
type APIKeys interface {
	// APIKeyCreate stores a key (upsert by hash: creating an existing hash is a no-op).
	APIKeyCreate(ctx context.Context, k APIKey) error
	// APIKeyByHash returns the key with that hash or ErrNotFound.
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// APIKeyCount returns the number of stored keys.
	APIKeyCount(ctx context.Context) (int, error)
	// APIKeyList returns every stored key, oldest first.
	APIKeyList(ctx context.Context) ([]APIKey, error)
	// APIKeyDelete deletes the key with that id (it stops authenticating at once, though a
	// running server may trust a key it checked for up to a minute more). ErrNotFound when there
	// is none.
	APIKeyDelete(ctx context.Context, id string) error
}
