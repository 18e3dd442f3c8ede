package driverkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postie/postie/internal/store"
)

// OutboxEvent is one change a driver method reports to webhooks (store/webhooks.go): one
// delivery for each enabled endpoint routed for Type.
type OutboxEvent struct {
	Type       string // store.Webhook…
	Subject    string // msg_…, ctc_…, run_…, evt_…, whk_…
	Recipient  string // the recipient's address for message types, else ""
	CampaignID string
	RunID      string
	At         time.Time       // when the change happened
	Detail     json.RawMessage // nil for none
}

// CheckWebhookEndpoint checks what both drivers require of an endpoint they store: an ID, a
// URL, a secret, and at least one known event type, none twice.
func CheckWebhookEndpoint(e store.WebhookEndpoint) error {
	switch {
	case e.ID == "":
		return errors.New("webhook endpoint without an ID")
	case e.URL == "":
		return fmt.Errorf("webhook endpoint %s without a URL", e.ID)
	case e.Secret == "":
		return fmt.Errorf("webhook endpoint %s without a secret", e.ID)
	case len(e.Types) == 0:
		return fmt.Errorf("webhook endpoint %s without an event type", e.ID)
	}
	for i, t := range e.Types {
		if !slices.Contains(store.WebhookTypes, t) {
			return fmt.Errorf("webhook endpoint %s: unknown event type %q", e.ID, t)
		}
		if slices.Contains(e.Types[:i], t) {
			return fmt.Errorf("webhook endpoint %s: event type %q twice", e.ID, t)
		}
	}
	return nil
}

// PrepareWebhookFinish checks an attempt's record and fills its defaults: an attempt with a zero
// At happened at now. A delivered or failed one has no next attempt.
func PrepareWebhookFinish(p store.WebhookFinishParams, now time.Time) (store.WebhookFinishParams, error) {
	switch {
	case p.Owner == "":
		return p, fmt.Errorf("webhook delivery %d: finish without an Owner", p.ID)
	case p.Status != store.DeliveryDelivered && p.Status != store.DeliveryPending && p.Status != store.DeliveryFailed:
		return p, fmt.Errorf("webhook delivery %d: unknown status %q", p.ID, p.Status)
	case p.Status == store.DeliveryPending && p.NextAttemptAt.IsZero():
		return p, fmt.Errorf("webhook delivery %d: pending again without a NextAttemptAt", p.ID)
	}
	if p.Attempt.At.IsZero() {
		p.Attempt.At = now
	}
	if p.Status != store.DeliveryPending {
		p.NextAttemptAt = time.Time{}
	}
	return p, nil
}

// PrepareWebhookFinishes is PrepareWebhookFinish of each of ps, into a new slice.
func PrepareWebhookFinishes(ps []store.WebhookFinishParams, now time.Time) ([]store.WebhookFinishParams, error) {
	out := make([]store.WebhookFinishParams, len(ps))
	for i, p := range ps {
		var err error
		if out[i], err = PrepareWebhookFinish(p, now); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReplayStatuses are the delivery states a replay takes: p's, or failed alone.
func ReplayStatuses(p store.WebhookReplayParams) ([]string, error) {
	if len(p.Statuses) == 0 {
		return []string{store.DeliveryFailed}, nil
	}
	for _, s := range p.Statuses {
		if s != store.DeliveryPending && s != store.DeliveryDelivered && s != store.DeliveryFailed {
			return nil, fmt.Errorf("webhook replay: unknown delivery status %q", s)
		}
	}
	return p.Statuses, nil
}

// DeliveryPage cuts deliveries read with limit+1 rows to a page of limit and returns the cursor
// of the next page ("" when this one is the last).
func DeliveryPage(page []store.WebhookDelivery, limit int) ([]store.WebhookDelivery, string) {
	return cutPage(page, limit, func(last store.WebhookDelivery) string {
		return store.WebhookDeliveryCursor(last)
	})
}

// DisabledDetail is the detail of a webhook.disabled report: the endpoint's URL's origin (other
// endpoints receive it: never its path or query) and the reason.
func DisabledDetail(url, reason string) json.RawMessage {
	// Marshalling two strings cannot fail.
	b, _ := json.Marshal(struct {
		URL    string `json:"url"`
		Reason string `json:"reason"`
	}{store.WebhookOrigin(url), reason})
	return b
}

// CancelReports are the message.cancelled reports of the recipients of split message m
// cancelled by event ev.
func CancelReports(m store.Message, cancelled []string, ev store.Event) []OutboxEvent {
	out := make([]OutboxEvent, len(cancelled))
	for i, rc := range cancelled {
		out[i] = OutboxEvent{Type: store.WebhookMessageCancelled, Subject: m.ID, Recipient: rc,
			CampaignID: m.CampaignID, RunID: m.RunID, At: ev.At, Detail: ev.Detail}
	}
	return out
}

// SubscriptionReport is the webhook report of a subscription changed to sub, of the contact
// whose address is email: contact.subscribed or contact.unsubscribed, with the list and the
// change's source; a pending subscription is not reported (ok false).
func SubscriptionReport(sub store.Subscription, email string) (OutboxEvent, bool) {
	var typ string
	switch sub.Status {
	case store.SubscriptionSubscribed:
		typ = store.WebhookContactSubscribed
	case store.SubscriptionUnsubscribed:
		typ = store.WebhookContactUnsubscribed
	default:
		return OutboxEvent{}, false
	}
	// Marshalling two strings cannot fail.
	detail, _ := json.Marshal(struct {
		ListID string `json:"list_id"`
		Source string `json:"source"`
	}{sub.ListID, sub.Source})
	return OutboxEvent{Type: typ, Subject: sub.ContactID, Recipient: email, At: sub.UpdatedAt, Detail: detail}, true
}

// RunFinishedDetail is the detail of a campaign.run_finished report: the run's counts
// (store.RunProgress.Counts).
func RunFinishedDetail(p store.RunProgress) json.RawMessage {
	// Marshalling a map of strings to numbers cannot fail.
	b, _ := json.Marshal(struct {
		Counts map[string]int `json:"counts"`
	}{p.Counts})
	return b
}

// DisabledError is the last error a delivery left pending is failed with when its endpoint is
// disabled (store.Webhooks.WebhookDisable).
func DisabledError(reason string) string {
	return "endpoint disabled: " + reason
}

// MessageWebhookType is the webhook event type reporting a recipient's new state st, or "" when
// that state is not reported (queued: the attempt did not count).
func MessageWebhookType(st store.RecipientStatus) string {
	switch st {
	case store.RecipientSent:
		return store.WebhookMessageSent
	case store.RecipientDeferred:
		return store.WebhookMessageDeferred
	case store.RecipientFailed:
		return store.WebhookMessageFailed
	case store.RecipientSuppressed:
		return store.WebhookMessageSuppressed
	case store.RecipientCancelled:
		return store.WebhookMessageCancelled
	case store.RecipientBounced:
		return store.WebhookMessageBounced
	case store.RecipientComplained:
		return store.WebhookMessageComplained
	}
	return ""
}

// FinishReport is one webhook report of a MessageFinish outcome (store.MessageFinishParams, as
// PrepareFinish returned it).
type FinishReport struct {
	Type      string
	Recipient string // the recipient (lowercased); "" for every recipient of a message not split
	At        time.Time
	Detail    json.RawMessage // the detail of the outcome's timeline event of that state
}

// FinishReports returns the reports of outcome p: a message not split reports its status for
// every recipient, a split one each recipient's new state (p.Recipients). Each report carries
// the time and detail of p's first event of the state reported (now and none without one).
func FinishReports(p store.MessageFinishParams, now time.Time) []FinishReport {
	report := func(st store.RecipientStatus, recipient string) (FinishReport, bool) {
		typ := MessageWebhookType(st)
		if typ == "" {
			return FinishReport{}, false
		}
		r := FinishReport{Type: typ, Recipient: recipient, At: now}
		for _, e := range p.Events {
			if e.Type == string(st) {
				r.At, r.Detail = e.At, e.Detail
				break
			}
		}
		return r, true
	}
	if !p.Split {
		if r, ok := report(p.Status.RecipientState(), ""); ok {
			return []FinishReport{r}
		}
		return nil
	}
	var out []FinishReport
	for _, rc := range p.Recipients {
		if r, ok := report(rc.Status, strings.ToLower(rc.Email)); ok {
			out = append(out, r)
		}
	}
	return out
}

// WebhookOutcome is an attempt WebhookFinish applied, as the endpoint's health needs it.
type WebhookOutcome struct {
	EndpointID string
	Status     string
	At         time.Time
}

// EndpointHealth is the change a batch of attempts makes to an endpoint's FailingSince. Mode:
// "clear" (it ended with a success), "set" to Since (a success came before the failures that
// ended it), or "start" (set to Since when not set: only failures).
type EndpointHealth struct {
	EndpointID string
	Mode       string
	Since      time.Time
}

// WebhookHealth folds a batch's attempts, in the order of their times, into each endpoint's
// change, by endpoint id (the order rows are locked in).
func WebhookHealth(done []WebhookOutcome) []EndpointHealth {
	done = slices.Clone(done)
	slices.SortStableFunc(done, func(a, b WebhookOutcome) int { return a.At.Compare(b.At) })
	by := map[string]*EndpointHealth{}
	for _, o := range done {
		h := by[o.EndpointID]
		if h == nil {
			h = &EndpointHealth{EndpointID: o.EndpointID}
			by[o.EndpointID] = h
		}
		switch {
		case o.Status == store.DeliveryDelivered:
			h.Mode, h.Since = "clear", time.Time{}
		case h.Mode == "clear":
			h.Mode, h.Since = "set", o.At
		case h.Mode == "":
			h.Mode, h.Since = "start", o.At
		}
	}
	out := make([]EndpointHealth, 0, len(by))
	for _, h := range by {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b EndpointHealth) int { return strings.Compare(a.EndpointID, b.EndpointID) })
	return out
}
