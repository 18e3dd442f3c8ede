package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// The webhooks area: endpoints, and the deliveries that report state changes to them
// (DESIGN §11). Package webhook owns signing, sending and retrying; this area gives it
// endpoints, an outbox and the lease-claimed delivery rows.
//
// The outbox is webhook_deliveries itself. The driver method that makes a state change worth
// reporting (a recipient sent, deferred, failed or suppressed in MessageFinish; a message
// cancelled; a contact subscribed or unsubscribed; a campaign run finished; an action's
// messages stored; an endpoint disabled) inserts, in the same statement or transaction, one
// delivery row per enabled endpoint subscribed to the event's type (webhook_routes: endpoint ×
// type, rewritten by the endpoint methods; the SQLite driver keeps the routes in memory, since
// one process owns the file). With no endpoint for a type nothing is written. So a report
// exists exactly when its change committed, and an endpoint created later does not receive
// what happened before it. Each method's doc names the types it reports.
//
// Deliveries are the row as the job: pending ones that are due (and whose endpoint is enabled)
// are claimed in batches by lease (WebhookClaim), sent, and finished (WebhookFinish) with the
// attempt recorded, only while the caller still holds the lease. A delivery's ID is the
// Standard Webhooks webhook-id and never changes, through retries, WebhookRetry and
// WebhookReplay. IDs grow with commit order for one subject (its changes are serialised), so
// they are also the per-subject sequence number payloads carry; across subjects there is no
// order.

// Webhook event types: what endpoints subscribe to and what payloads' "type" is.
const (
	WebhookMessageSent         = "message.sent"
	WebhookMessageDeferred     = "message.deferred"
	WebhookMessageFailed       = "message.failed"
	WebhookMessageBounced      = "message.bounced"
	WebhookMessageComplained   = "message.complained"
	WebhookMessageSuppressed   = "message.suppressed"
	WebhookMessageCancelled    = "message.cancelled"
	WebhookContactUnsubscribed = "contact.unsubscribed"
	WebhookContactSubscribed   = "contact.subscribed"
	WebhookCampaignRunFinished = "campaign.run_finished"
	WebhookEventTriggered      = "event.triggered"
	WebhookEndpointDisabled    = "webhook.disabled"
	WebhookStreamPaused        = "stream.paused"
)

// WebhookTypes lists every webhook event type.
var WebhookTypes = []string{WebhookMessageSent, WebhookMessageDeferred, WebhookMessageFailed,
	WebhookMessageBounced, WebhookMessageComplained, WebhookMessageSuppressed,
	WebhookMessageCancelled, WebhookContactUnsubscribed, WebhookContactSubscribed,
	WebhookCampaignRunFinished, WebhookEventTriggered, WebhookEndpointDisabled, WebhookStreamPaused}

// Delivery states: pending → delivered | failed (retries used up); WebhookRetry and
// WebhookReplay make a delivery pending again with fresh attempts.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// WebhookEndpoint is one receiver of webhooks.
type WebhookEndpoint struct {
	ID          string // whk_…
	URL         string
	Description string
	Types       []string // event types it receives (WebhookTypes), at least one
	Secret      string   // whsec_…: signs every payload
	// PreviousSecret, until PreviousUntil, also signs (a rotation's overlap).
	PreviousSecret string
	PreviousUntil  time.Time
	Enabled        bool
	DisabledReason string    // why it was disabled ("" when enabled, or disabled by hand with none)
	FailingSince   time.Time // the first failed attempt since its last success; zero when healthy
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// WebhookDelivery is one event for one endpoint.
type WebhookDelivery struct {
	ID            int64 // the webhook-id (rendered "whd_<n>") and the per-subject sequence number
	EndpointID    string
	Type          string
	Subject       string // what changed: msg_…, ctc_…, run_…, evt_…, whk_…
	Recipient     string // the recipient's address for message types, else ""
	CampaignID    string
	RunID         string
	At            time.Time       // when the change happened
	Detail        json.RawMessage // the change's typed detail (as the timeline's), nil for none
	Status        string          // Delivery…
	Attempts      int
	NextAttemptAt time.Time
	LastCode      int    // the last attempt's HTTP status, 0 when it got none
	LastError     string // the last attempt's failure ("" after a success)
	LeaseOwner    string
	LeaseUntil    time.Time
	CreatedAt     time.Time
	DeliveredAt   time.Time
}

// WebhookAttempt is one attempt to deliver, as GET …/deliveries shows it.
type WebhookAttempt struct {
	DeliveryID int64
	At         time.Time
	Code       int    // HTTP status, 0 when there was none (refused, timed out, …)
	Response   string // the start of the response body (capped by the caller)
	Error      string // why it failed, "" for a 2xx
	Duration   time.Duration
}

// WebhookFinishParams records one attempt of a claimed delivery (only while Owner holds it).
type WebhookFinishParams struct {
	ID            int64
	Owner         string
	Status        string    // DeliveryDelivered, DeliveryPending (retry at NextAttemptAt) or DeliveryFailed
	NextAttemptAt time.Time // for DeliveryPending
	Attempt       WebhookAttempt
}

// WebhookClaimParams leases up to Limit due pending deliveries of enabled endpoints for Owner,
// oldest due first.
type WebhookClaimParams struct {
	Owner      string
	Limit      int
	Now        time.Time
	LeaseUntil time.Time
	// ExceptEndpoints: deliveries of these endpoints are not claimed (the caller has as many of
	// theirs in flight as it allows, so that a slow endpoint cannot take every sender).
	ExceptEndpoints []string
}

// WebhookDeliveryListParams pages through one endpoint's deliveries, newest first.
type WebhookDeliveryListParams struct {
	EndpointID string
	Status     string // "" for all
	Type       string // "" for all
	Cursor     string
	Limit      int
}

// WebhookReplayParams makes an endpoint's deliveries created in [From, To) pending again, with
// fresh attempts, due at Now. Statuses: which ones (default failed alone).
type WebhookReplayParams struct {
	EndpointID string
	From, To   time.Time
	Statuses   []string
	Now        time.Time
}

// Webhooks is the webhooks area.
type Webhooks interface {
	// WebhookCreate stores an endpoint (ID and Secret set by the caller) and its routes.
	WebhookCreate(ctx context.Context, e WebhookEndpoint) error
	// WebhookUpdate replaces an endpoint's fields and routes (ErrNotFound when there is none).
	// Enabling clears DisabledReason and FailingSince.
	WebhookUpdate(ctx context.Context, e WebhookEndpoint) error
	// WebhookGet returns one endpoint or ErrNotFound.
	WebhookGet(ctx context.Context, id string) (WebhookEndpoint, error)
	// WebhookList returns every endpoint, oldest first.
	WebhookList(ctx context.Context) ([]WebhookEndpoint, error)
	// WebhookDelete deletes an endpoint with its deliveries and attempts (ErrNotFound when none).
	WebhookDelete(ctx context.Context, id string) error
	// WebhookDisable disables an endpoint with a reason, and reports webhook.disabled (to the
	// other endpoints subscribed to it, Detail {"url", "reason"}) in the same transaction. Its
	// pending deliveries not being sent fail (LastError "endpoint disabled: " and the reason), so
	// that claims do not walk past them; WebhookReplay brings them back once it is enabled.
	// ErrNotFound when none; disabling a disabled endpoint changes nothing. (Disabling with
	// WebhookUpdate only pauses: its deliveries wait, pending.)
	WebhookDisable(ctx context.Context, id, reason string, now time.Time) error

	// WebhookClaim leases due deliveries (see WebhookClaimParams). A leased delivery's
	// NextAttemptAt is its lease's end: one whose sender died is due again then.
	WebhookClaim(ctx context.Context, p WebhookClaimParams) ([]WebhookDelivery, error)
	// WebhookFinish records attempts in one transaction and returns how many still held their
	// lease; each adds one to the delivery's Attempts (an attempt with a zero At happened at
	// now). A delivered attempt clears its endpoint's FailingSince; a failed one sets it when
	// zero.
	WebhookFinish(ctx context.Context, now time.Time, p []WebhookFinishParams) (int, error)
	// WebhookReleaseLeases returns the leases of owners beginning with ownerPrefix ("" for all);
	// the deliveries released are due at now.
	WebhookReleaseLeases(ctx context.Context, ownerPrefix string, now time.Time) (int, error)
	// WebhookNextDue returns the earliest next attempt of a pending delivery of an enabled
	// endpoint (a leased one's lease end), or ok=false.
	WebhookNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	// WebhookWakeups receives (coalesced) when deliveries may have become due.
	WebhookWakeups() <-chan struct{}

	// WebhookDeliveryGet returns one delivery with its attempts, oldest first, or ErrNotFound.
	WebhookDeliveryGet(ctx context.Context, id int64) (WebhookDelivery, []WebhookAttempt, error)
	// WebhookDeliveries returns one page of an endpoint's deliveries and the next cursor.
	WebhookDeliveries(ctx context.Context, p WebhookDeliveryListParams) ([]WebhookDelivery, string, error)
	// WebhookRetry makes one delivery pending again, due at now, attempts 0 (its attempts stay
	// recorded). ErrNotFound when none; ErrConflict when it is pending and leased.
	WebhookRetry(ctx context.Context, id int64, now time.Time) (WebhookDelivery, error)
	// WebhookReplay makes deliveries pending again (see WebhookReplayParams) and returns how many.
	WebhookReplay(ctx context.Context, p WebhookReplayParams) (int, error)
	// WebhookPurge deletes delivered and failed deliveries (and their attempts) created before
	// before, at most limit, and returns how many.
	WebhookPurge(ctx context.Context, before time.Time, limit int) (int, error)
}

// WebhookDeliveryCursor encodes a WebhookDeliveries keyset position, the last delivery of a
// page: its id in decimal, in base64url.
func WebhookDeliveryCursor(last WebhookDelivery) string { return int64Cursor(last.ID) }

// WebhookDeliveryCursorAfter decodes a WebhookDeliveryCursor into the id the previous page ended
// with (0 for the first page, cursor "").
func WebhookDeliveryCursorAfter(cursor string) (int64, error) {
	return int64CursorAfter("webhook delivery", cursor)
}

// int64Cursor encodes a keyset position that is a row's number: in decimal, in base64url.
func int64Cursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(id, 10)))
}

// int64CursorAfter decodes an int64Cursor of a listing of what (0 for cursor "").
func int64CursorAfter(what, cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	n, perr := strconv.ParseInt(string(b), 10, 64)
	if err != nil || perr != nil || n <= 0 {
		return 0, fmt.Errorf("%s cursor %q: %w", what, cursor, ErrBadCursor)
	}
	return n, nil
}

// WebhookOrigin is what reports and logs show of an endpoint's URL: its scheme and host, since
// the path and query of a hook URL often carry a token.
func WebhookOrigin(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
