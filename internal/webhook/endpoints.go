package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postie/postie/internal/id"
	"github.com/postie/postie/internal/message"
	"github.com/postie/postie/internal/store"
)

// Limits of an endpoint's fields.
const (
	maxURL         = 2048
	maxDescription = 500
)

// EndpointInput creates an endpoint (URL and Types required) or changes one (the fields given
// replace the stored ones).
type EndpointInput struct {
	URL         *string
	Description *string
	Types       *[]string
	Enabled     *bool // default true on create
}

// invalid is the error of a request refused for problems.
func invalid(ps ...message.Problem) error {
	return &message.Error{Kind: message.KindInvalid, Problems: ps}
}

// failure wraps a store error about subject, classified for the caller.
func failure(err error, subject string) error { return message.Failure(err, subject) }

// CheckURL says what is wrong with a webhook URL ("" when nothing): it must be absolute, https
// (or http when the policy allows it), without credentials or a fragment, and its host must not
// be, or resolve now to, a refused address.
func (s *Service) CheckURL(ctx context.Context, raw string) string {
	if raw == "" {
		return "required"
	}
	if len(raw) > maxURL {
		return fmt.Sprintf("at most %d characters", maxURL)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "must not contain spaces or control characters"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "not a URL"
	}
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return "must be an absolute URL such as https://hooks.example.com/postie"
	case u.Scheme == "http" && !s.cfg.Policy.AllowHTTP:
		return "must use https (http:// is allowed only with POSTIE_WEBHOOK_ALLOW_HTTP=true)"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must use https"
	case u.User != nil:
		return "must not contain credentials (user:password@): verify the webhook-signature instead"
	case u.Host == "" || u.Hostname() == "":
		return "must name a host"
	case u.Fragment != "" || strings.HasSuffix(raw, "#"):
		return "must not have a fragment (#…)"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	if err := s.cfg.Policy.checkHost(ctx, s.cfg.Resolve, u.Hostname()); err != nil {
		return err.Error()
	}
	return ""
}

// checkTypes says what is wrong with a list of event types ("" when nothing) and returns them
// without duplicates.
func checkTypes(types []string) ([]string, []message.Problem) {
	if len(types) == 0 {
		return nil, []message.Problem{{Field: "types", Message: "at least one event type is required: " +
			strings.Join(store.WebhookTypes, ", ")}}
	}
	var out []string
	var ps []message.Problem
	for i, t := range types {
		if !slices.Contains(store.WebhookTypes, t) {
			ps = append(ps, message.Problem{Field: fmt.Sprintf("types[%d]", i),
				Message: "unknown event type; want one of " + strings.Join(store.WebhookTypes, ", "), Value: t})
			continue
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, ps
}

// apply checks in and lays it over e, returning the problems.
func (s *Service) apply(ctx context.Context, e *store.WebhookEndpoint, in EndpointInput) []message.Problem {
	var ps []message.Problem
	if in.URL != nil {
		if msg := s.CheckURL(ctx, *in.URL); msg != "" {
			ps = append(ps, message.Problem{Field: "url", Message: msg, Value: *in.URL})
		}
		e.URL = *in.URL
	}
	if in.Description != nil {
		d := *in.Description
		if utf8.RuneCountInString(d) > maxDescription || strings.ContainsRune(d, 0) || !utf8.ValidString(d) {
			ps = append(ps, message.Problem{Field: "description",
				Message: fmt.Sprintf("at most %d characters of UTF-8, no U+0000", maxDescription)})
		}
		e.Description = d
	}
	if in.Types != nil {
		types, tps := checkTypes(*in.Types)
		ps = append(ps, tps...)
		e.Types = types
	}
	if in.Enabled != nil && *in.Enabled != e.Enabled {
		e.Enabled = *in.Enabled
		// Enabled by hand: healthy until it fails again. Disabled by hand: no reason.
		e.DisabledReason, e.FailingSince = "", time.Time{}
	}
	return ps
}

// Create validates in and stores a new endpoint with a new secret (returned in it, the only
// time but a rotation that it is shown). Failures are *message.Error.
func (s *Service) Create(ctx context.Context, in EndpointInput) (store.WebhookEndpoint, error) {
	now := s.cfg.Now().UTC()
	e := store.WebhookEndpoint{ID: id.New(id.Webhook), Secret: NewSecret(), CreatedAt: now, UpdatedAt: now}
	var ps []message.Problem
	if in.URL == nil {
		ps = append(ps, message.Problem{Field: "url", Message: "required"})
	}
	if in.Types == nil {
		ps = append(ps, message.Problem{Field: "types", Message: "required: the event types to receive, e.g. [\"message.sent\"]"})
	}
	if in.Enabled == nil {
		e.Enabled = true
	}
	ps = append(ps, s.apply(ctx, &e, in)...)
	if len(ps) > 0 {
		return store.WebhookEndpoint{}, invalid(ps...)
	}
	if err := s.cfg.Store.WebhookCreate(ctx, e); err != nil {
		return store.WebhookEndpoint{}, failure(err, "webhook")
	}
	return e, nil
}

// Update changes an endpoint: the fields given replace the stored ones, with the same checks as
// Create. Enabling a disabled endpoint clears its reason and failure; its pending deliveries are
// sent again.
func (s *Service) Update(ctx context.Context, whk string, in EndpointInput) (store.WebhookEndpoint, error) {
	e, err := s.Get(ctx, whk)
	if err != nil {
		return store.WebhookEndpoint{}, err
	}
	wasEnabled := e.Enabled
	if ps := s.apply(ctx, &e, in); len(ps) > 0 {
		return store.WebhookEndpoint{}, invalid(ps...)
	}
	e.UpdatedAt = s.cfg.Now().UTC()
	if err := s.cfg.Store.WebhookUpdate(ctx, e); err != nil {
		return store.WebhookEndpoint{}, failure(err, "webhook "+whk)
	}
	if e.Enabled && !wasEnabled {
		s.notify()
	}
	return e, nil
}

// Get returns one endpoint.
func (s *Service) Get(ctx context.Context, whk string) (store.WebhookEndpoint, error) {
	if !id.Valid(id.Webhook, whk) {
		return store.WebhookEndpoint{}, failure(store.ErrNotFound, "webhook "+whk)
	}
	e, err := s.cfg.Store.WebhookGet(ctx, whk)
	if err != nil {
		return store.WebhookEndpoint{}, failure(err, "webhook "+whk)
	}
	return e, nil
}

// List returns every endpoint, oldest first.
func (s *Service) List(ctx context.Context) ([]store.WebhookEndpoint, error) {
	es, err := s.cfg.Store.WebhookList(ctx)
	if err != nil {
		return nil, failure(err, "webhooks")
	}
	return es, nil
}

// Delete deletes an endpoint with its deliveries.
func (s *Service) Delete(ctx context.Context, whk string) error {
	if _, err := s.Get(ctx, whk); err != nil {
		return err
	}
	if err := s.cfg.Store.WebhookDelete(ctx, whk); err != nil {
		return failure(err, "webhook "+whk)
	}
	return nil
}

// RotateSecret gives an endpoint a new secret and returns it; the one it replaces keeps signing
// too (a second signature) for RotationOverlap.
func (s *Service) RotateSecret(ctx context.Context, whk string) (string, error) {
	e, err := s.Get(ctx, whk)
	if err != nil {
		return "", err
	}
	now := s.cfg.Now().UTC()
	e.PreviousSecret, e.PreviousUntil, e.Secret, e.UpdatedAt = e.Secret, now.Add(RotationOverlap), NewSecret(), now
	if err := s.cfg.Store.WebhookUpdate(ctx, e); err != nil {
		return "", failure(err, "webhook "+whk)
	}
	return e.Secret, nil
}

// ParseDeliveryID reads a delivery's webhook-id ("whd_42"); ok is false for anything else.
func ParseDeliveryID(s string) (n int64, ok bool) {
	digits, found := strings.CutPrefix(s, "whd_")
	if !found || digits == "" || digits[0] == '0' || len(digits) > 19 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// DeliveryListParams pages through an endpoint's deliveries.
type DeliveryListParams = store.WebhookDeliveryListParams

// Deliveries returns a page of an endpoint's deliveries, newest first, and the next cursor.
func (s *Service) Deliveries(ctx context.Context, p DeliveryListParams) ([]store.WebhookDelivery, string, error) {
	var ps []message.Problem
	if p.Status != "" && !slices.Contains([]string{store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed}, p.Status) {
		ps = append(ps, message.Problem{Field: "status", Message: "want pending, delivered or failed", Value: p.Status})
	}
	if p.Type != "" && !slices.Contains(store.WebhookTypes, p.Type) {
		ps = append(ps, message.Problem{Field: "type", Message: "unknown event type; want one of " + strings.Join(store.WebhookTypes, ", "), Value: p.Type})
	}
	if len(ps) > 0 {
		return nil, "", invalid(ps...)
	}
	if _, err := s.Get(ctx, p.EndpointID); err != nil {
		return nil, "", err
	}
	ds, next, err := s.cfg.Store.WebhookDeliveries(ctx, p)
	if err != nil {
		return nil, "", failure(err, "deliveries")
	}
	return ds, next, nil
}

// Delivery returns one delivery of an endpoint with its attempts, oldest first.
func (s *Service) Delivery(ctx context.Context, whk string, delivery int64) (store.WebhookDelivery, []store.WebhookAttempt, error) {
	subject := "delivery " + MessageID(delivery) + " of webhook " + whk
	if !id.Valid(id.Webhook, whk) {
		return store.WebhookDelivery{}, nil, failure(store.ErrNotFound, subject)
	}
	d, as, err := s.cfg.Store.WebhookDeliveryGet(ctx, delivery)
	if err == nil && d.EndpointID != whk {
		err = store.ErrNotFound
	}
	if err != nil {
		return store.WebhookDelivery{}, nil, failure(err, subject)
	}
	return d, as, nil
}

// Retry makes one delivery of an endpoint pending again, due now, with the same webhook-id. A
// delivery being sent right now is a conflict.
func (s *Service) Retry(ctx context.Context, whk string, delivery int64) (store.WebhookDelivery, error) {
	if _, _, err := s.Delivery(ctx, whk, delivery); err != nil {
		return store.WebhookDelivery{}, err
	}
	d, err := s.cfg.Store.WebhookRetry(ctx, delivery, s.cfg.Now().UTC())
	if errors.Is(err, store.ErrConflict) {
		return store.WebhookDelivery{}, &message.Error{Kind: message.KindConflict, Problems: []message.Problem{{
			Message: "delivery " + MessageID(delivery) + " is being sent right now; retry it once that attempt ends"}}}
	}
	if err != nil {
		return store.WebhookDelivery{}, failure(err, "delivery "+MessageID(delivery))
	}
	s.notify()
	return d, nil
}

// ReplayParams makes an endpoint's deliveries created in [From, To) pending again.
type ReplayParams struct {
	EndpointID string
	From, To   time.Time
	Statuses   []string // default failed
}

// Replay makes the deliveries of p pending again, due now, with their webhook-ids, and returns
// how many.
func (s *Service) Replay(ctx context.Context, p ReplayParams) (int, error) {
	var ps []message.Problem
	if p.From.IsZero() {
		ps = append(ps, message.Problem{Field: "from", Message: "required: the start of the time range (RFC 3339)"})
	}
	if p.To.IsZero() {
		ps = append(ps, message.Problem{Field: "to", Message: "required: the end of the time range (RFC 3339), excluded"})
	}
	if !p.From.IsZero() && !p.To.IsZero() && !p.From.Before(p.To) {
		ps = append(ps, message.Problem{Field: "to", Message: "must be after from", Value: p.To})
	}
	statuses := []string{store.DeliveryFailed}
	if len(p.Statuses) > 0 {
		statuses = nil
		for i, st := range p.Statuses {
			if !slices.Contains([]string{store.DeliveryPending, store.DeliveryDelivered, store.DeliveryFailed}, st) {
				ps = append(ps, message.Problem{Field: fmt.Sprintf("statuses[%d]", i), Message: "want pending, delivered or failed", Value: st})
			} else if !slices.Contains(statuses, st) {
				statuses = append(statuses, st)
			}
		}
	}
	if len(ps) > 0 {
		return 0, invalid(ps...)
	}
	if _, err := s.Get(ctx, p.EndpointID); err != nil {
		return 0, err
	}
	n, err := s.cfg.Store.WebhookReplay(ctx, store.WebhookReplayParams{EndpointID: p.EndpointID, From: p.From.UTC(),
		To: p.To.UTC(), Statuses: statuses, Now: s.cfg.Now().UTC()})
	if err != nil {
		return 0, failure(err, "webhook "+p.EndpointID)
	}
	if n > 0 {
		s.notify()
	}
	return n, nil
}
