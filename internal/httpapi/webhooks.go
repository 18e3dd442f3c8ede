package httpapi

import (
	"context"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/postie/postie/internal/store"
	"github.com/postie/postie/internal/webhook"
)

// The webhooks routes: thin handlers over package webhook (docs/api.md, Webhooks).

// WebhookResource is an endpoint as the API shows it.
type WebhookResource struct {
	ID             string     `json:"id" example:"whk_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	URL            string     `json:"url" example:"https://hooks.example.com/postie"`
	Description    string     `json:"description"`
	Types          []string   `json:"types" doc:"The event types it receives" example:"[\"message.sent\",\"message.failed\"]"`
	Enabled        bool       `json:"enabled" doc:"Deliveries are sent; a disabled endpoint's pending deliveries wait until it is enabled again"`
	DisabledReason string     `json:"disabled_reason" doc:"Why postie disabled it (failing for too long); \"\" when enabled or disabled by hand"`
	FailingSince   *time.Time `json:"failing_since" doc:"Its first failed attempt since its last success; null when healthy"`
	Secret         string     `json:"secret,omitempty" doc:"The signing secret (whsec_…): only in the answer to its creation" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func toWebhookResource(e store.WebhookEndpoint) WebhookResource {
	return WebhookResource{ID: e.ID, URL: e.URL, Description: e.Description, Types: nonNil(e.Types), Enabled: e.Enabled,
		DisabledReason: e.DisabledReason, FailingSince: timePtr(e.FailingSince), CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

// WebhookBody creates an endpoint (url and types required) or changes one (fields left out are
// kept).
type WebhookBody struct {
	URL         *string   `json:"url,omitempty" doc:"Required when creating: an absolute https:// URL (http:// only with POSTIE_WEBHOOK_ALLOW_HTTP), without credentials, not naming a refused address" example:"https://hooks.example.com/postie"`
	Description *string   `json:"description,omitempty" doc:"Free text, at most 500 characters"`
	Types       *[]string `json:"types,omitempty" doc:"Required when creating: the event types to receive, at least one" example:"[\"message.sent\",\"message.failed\",\"message.bounced\"]"`
	Enabled     *bool     `json:"enabled,omitempty" doc:"Default true; true again after postie disabled it clears the reason, and its pending deliveries are sent"`

	strict strictBody
}

func (b *WebhookBody) input() webhook.EndpointInput {
	return webhook.EndpointInput{URL: b.URL, Description: b.Description, Types: b.Types, Enabled: b.Enabled}
}

// DeliveryResource is one delivery of an event to an endpoint.
type DeliveryResource struct {
	ID            string     `json:"id" doc:"The webhook-id header of every attempt, retry and replay; its number is the payload's sequence" example:"whd_42"`
	WebhookID     string     `json:"webhook_id" example:"whk_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Type          string     `json:"type" example:"message.sent"`
	Subject       string     `json:"subject" doc:"What changed: msg_…, ctc_…, run_…, evt_… or whk_…" example:"msg_01jd8x3k2m4n5p6q7r8s9t0v1w"`
	Recipient     string     `json:"recipient" doc:"The recipient's address for message.* types, the contact's for contact.*; \"\" otherwise"`
	Status        string     `json:"status" enum:"pending,delivered,failed" doc:"pending: waiting for its next attempt; failed: its retries are used up"`
	Attempts      int        `json:"attempts" doc:"Attempts made since it was created, retried or replayed"`
	NextAttemptAt *time.Time `json:"next_attempt_at" doc:"While pending, when it is tried next"`
	LastCode      *int       `json:"last_code" doc:"The HTTP status of the last attempt; null when it got none (refused, timed out) or none was made"`
	LastError     string     `json:"last_error" doc:"Why the last attempt failed; \"\" after a success"`
	CreatedAt     time.Time  `json:"created_at" doc:"When the change it reports happened and the delivery was written"`
	DeliveredAt   *time.Time `json:"delivered_at" doc:"When a 2xx answered it; null before"`
}

// AttemptResource is one attempt to deliver.
type AttemptResource struct {
	At         time.Time `json:"at"`
	Code       *int      `json:"code" doc:"The HTTP status; null when there was none"`
	Response   string    `json:"response" doc:"The start of the response body (at most 1 KiB)"`
	Error      string    `json:"error" doc:"Why it failed; \"\" for a 2xx"`
	DurationMS int64     `json:"duration_ms"`
}

// DeliveryDetailResource is a delivery with its attempts.
type DeliveryDetailResource struct {
	DeliveryResource
	History []AttemptResource `json:"history" doc:"Every attempt, oldest first (across retries and replays)"`
}

func intPtr(n int) *int {
	if n == 0 {
		return nil
	}
	return &n
}

func toDeliveryResource(d store.WebhookDelivery) DeliveryResource {
	r := DeliveryResource{ID: webhook.MessageID(d.ID), WebhookID: d.EndpointID, Type: d.Type, Subject: d.Subject,
		Recipient: d.Recipient, Status: d.Status, Attempts: d.Attempts, LastCode: intPtr(d.LastCode), LastError: d.LastError,
		CreatedAt: d.CreatedAt, DeliveredAt: timePtr(d.DeliveredAt)}
	if d.Status == store.DeliveryPending {
		r.NextAttemptAt = timePtr(d.NextAttemptAt)
	}
	return r
}

// ReplayBody is the body of POST /v1/webhooks/{id}/replay.
type ReplayBody struct {
	From     *time.Time `json:"from,omitempty" doc:"Required: deliveries created at or after this time (RFC 3339)" example:"2026-12-05T00:00:00Z"`
	To       *time.Time `json:"to,omitempty" doc:"Required: … and before this time" example:"2026-12-06T00:00:00Z"`
	Statuses []string   `json:"statuses,omitempty" enum:"pending,delivered,failed" uniqueItems:"true" doc:"Which deliveries (default [\"failed\"])"`

	strict strictBody
}

type webhookCreateInput struct {
	Body WebhookBody
}

type webhookPatchInput struct {
	ID   string `path:"id" doc:"The endpoint (whk_…)"`
	Body WebhookBody
}

type webhookIDInput struct {
	ID string `path:"id" doc:"The endpoint (whk_…)"`
}

type deliveryListInput struct {
	ID     string `path:"id" doc:"The endpoint (whk_…)"`
	Status string `query:"status" enum:"pending,delivered,failed," doc:"Only deliveries in this state"`
	Type   string `query:"type" doc:"Only deliveries of this event type"`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page"`
	Limit  int    `query:"limit" minimum:"1" maximum:"1000" default:"50" doc:"Page size"`
}

type deliveryInput struct {
	ID       string `path:"id" doc:"The endpoint (whk_…)"`
	Delivery string `path:"delivery" doc:"The delivery (whd_…)"`
}

type replayInput struct {
	ID   string `path:"id" doc:"The endpoint (whk_…)"`
	Body ReplayBody
}

type webhookOutput struct {
	Body WebhookResource
}

type webhooksOutput struct {
	Body struct {
		Data []WebhookResource `json:"data" doc:"Oldest first"`
	}
}

type rotateOutput struct {
	Body struct {
		Secret        string    `json:"secret" doc:"The new signing secret (whsec_…), shown this once" example:"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"`
		PreviousUntil time.Time `json:"previous_valid_until" doc:"Until then, the previous secret signs too (a second signature in webhook-signature)"`
	}
}

type deliveryOutput struct {
	Body DeliveryResource
}

type deliveryDetailOutput struct {
	Body DeliveryDetailResource
}

type replayOutput struct {
	Body struct {
		Replayed int `json:"replayed" doc:"Deliveries made pending again"`
	}
}

func (s *Server) registerWebhooks() {
	if s.webhooks = s.cfg.Webhooks; s.webhooks == nil {
		s.webhooks = webhook.New(webhook.Config{Store: s.cfg.Store, Now: s.cfg.Now, Logger: s.cfg.Logger})
	}
	tags := []string{"Webhooks"}
	huma.Register(s.api, huma.Operation{
		OperationID: "create-webhook", Method: http.MethodPost, Path: "/v1/webhooks", Tags: tags,
		Summary:       "Create a webhook endpoint",
		Description:   "Checks the URL (https, no credentials, no refused address) and the types, and answers the endpoint with its signing secret, shown this once. It receives the events that happen from then on.",
		DefaultStatus: http.StatusCreated, Errors: []int{400, 401, 422},
	}, s.webhookCreate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-webhooks", Method: http.MethodGet, Path: "/v1/webhooks", Tags: tags,
		Summary: "List webhook endpoints, oldest first", Errors: []int{401},
	}, s.webhookList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-webhook", Method: http.MethodGet, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Get a webhook endpoint", Errors: []int{401, 404},
	}, s.webhookGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "update-webhook", Method: http.MethodPatch, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary:     "Change a webhook endpoint",
		Description: "The fields given replace the stored ones, with the checks of create; nothing changes when one fails. enabled true on an endpoint postie disabled clears its reason, and its pending deliveries are sent.",
		Errors:      []int{400, 401, 404, 422},
	}, s.webhookPatch)
	huma.Register(s.api, huma.Operation{
		OperationID: "delete-webhook", Method: http.MethodDelete, Path: "/v1/webhooks/{id}", Tags: tags,
		Summary: "Delete a webhook endpoint with its deliveries", DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, s.webhookDelete)
	huma.Register(s.api, huma.Operation{
		OperationID: "rotate-webhook-secret", Method: http.MethodPost, Path: "/v1/webhooks/{id}/rotate-secret", Tags: tags,
		Summary:     "Give a webhook endpoint a new signing secret",
		Description: "Answers the new secret. For 24 hours every payload carries two signatures, by the new and the previous secret, so the receiver can switch without losing one.",
		Errors:      []int{401, 404},
	}, s.webhookRotate)
	huma.Register(s.api, huma.Operation{
		OperationID: "list-webhook-deliveries", Method: http.MethodGet, Path: "/v1/webhooks/{id}/deliveries", Tags: tags,
		Summary: "List an endpoint's deliveries, newest first", Errors: []int{401, 404, 422},
	}, s.deliveryList)
	huma.Register(s.api, huma.Operation{
		OperationID: "get-webhook-delivery", Method: http.MethodGet, Path: "/v1/webhooks/{id}/deliveries/{delivery}", Tags: tags,
		Summary: "Get a delivery with its attempts", Errors: []int{401, 404},
	}, s.deliveryGet)
	huma.Register(s.api, huma.Operation{
		OperationID: "retry-webhook-delivery", Method: http.MethodPost, Path: "/v1/webhooks/{id}/deliveries/{delivery}/retry", Tags: tags,
		Summary:     "Send a delivery again",
		Description: "Makes it pending, due now, with fresh attempts and the same webhook-id. A delivery being sent at this moment is a 409.",
		Errors:      []int{401, 404, 409},
	}, s.deliveryRetry)
	huma.Register(s.api, huma.Operation{
		OperationID: "replay-webhook-deliveries", Method: http.MethodPost, Path: "/v1/webhooks/{id}/replay", Tags: tags,
		Summary:     "Send an endpoint's deliveries of a time range again",
		Description: "Makes the deliveries created in [from, to) with the statuses given (default failed) pending, due now, with fresh attempts and their webhook-ids.",
		Errors:      []int{400, 401, 404, 422},
	}, s.webhookReplay)
}

func (s *Server) webhookCreate(ctx context.Context, in *webhookCreateInput) (*webhookOutput, error) {
	e, err := s.webhooks.Create(ctx, in.Body.input())
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	out := &webhookOutput{Body: toWebhookResource(e)}
	out.Body.Secret = e.Secret
	return out, nil
}

func (s *Server) webhookList(ctx context.Context, _ *struct{}) (*webhooksOutput, error) {
	es, err := s.webhooks.List(ctx)
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	out := &webhooksOutput{}
	out.Body.Data = make([]WebhookResource, len(es))
	for i, e := range es {
		out.Body.Data[i] = toWebhookResource(e)
	}
	return out, nil
}

func (s *Server) webhookGet(ctx context.Context, in *webhookIDInput) (*webhookOutput, error) {
	e, err := s.webhooks.Get(ctx, in.ID)
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	return &webhookOutput{Body: toWebhookResource(e)}, nil
}

func (s *Server) webhookPatch(ctx context.Context, in *webhookPatchInput) (*webhookOutput, error) {
	e, err := s.webhooks.Update(ctx, in.ID, in.Body.input())
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	return &webhookOutput{Body: toWebhookResource(e)}, nil
}

func (s *Server) webhookDelete(ctx context.Context, in *webhookIDInput) (*struct{}, error) {
	if err := s.webhooks.Delete(ctx, in.ID); err != nil {
		return nil, s.messageError(err, "body")
	}
	return nil, nil
}

func (s *Server) webhookRotate(ctx context.Context, in *webhookIDInput) (*rotateOutput, error) {
	secret, err := s.webhooks.RotateSecret(ctx, in.ID)
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	out := &rotateOutput{}
	out.Body.Secret = secret
	out.Body.PreviousUntil = s.cfg.Now().UTC().Add(webhook.RotationOverlap).Truncate(time.Second)
	return out, nil
}

func (s *Server) deliveryList(ctx context.Context, in *deliveryListInput) (*pageOutput[DeliveryResource], error) {
	ds, next, err := s.webhooks.Deliveries(ctx, webhook.DeliveryListParams{EndpointID: in.ID, Status: in.Status, Type: in.Type,
		Cursor: in.Cursor, Limit: in.Limit})
	if err != nil {
		return nil, s.messageError(err, "query")
	}
	out := &pageOutput[DeliveryResource]{}
	out.Body.NextCursor = next
	out.Body.Data = make([]DeliveryResource, len(ds))
	for i, d := range ds {
		out.Body.Data[i] = toDeliveryResource(d)
	}
	return out, nil
}

// deliveryNumber reads the path's delivery id; one that is no delivery's is a 404.
func deliveryNumber(in *deliveryInput) (int64, error) {
	n, ok := webhook.ParseDeliveryID(in.Delivery)
	if !ok {
		return 0, huma.Error404NotFound("delivery " + in.Delivery + " of webhook " + in.ID + " not found")
	}
	return n, nil
}

func (s *Server) deliveryGet(ctx context.Context, in *deliveryInput) (*deliveryDetailOutput, error) {
	n, err := deliveryNumber(in)
	if err != nil {
		return nil, err
	}
	d, as, err := s.webhooks.Delivery(ctx, in.ID, n)
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	out := &deliveryDetailOutput{Body: DeliveryDetailResource{DeliveryResource: toDeliveryResource(d)}}
	out.Body.History = make([]AttemptResource, len(as))
	for i, a := range as {
		out.Body.History[i] = AttemptResource{At: a.At, Code: intPtr(a.Code), Response: a.Response, Error: a.Error,
			DurationMS: a.Duration.Milliseconds()}
	}
	return out, nil
}

func (s *Server) deliveryRetry(ctx context.Context, in *deliveryInput) (*deliveryOutput, error) {
	n, err := deliveryNumber(in)
	if err != nil {
		return nil, err
	}
	d, err := s.webhooks.Retry(ctx, in.ID, n)
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	return &deliveryOutput{Body: toDeliveryResource(d)}, nil
}

func (s *Server) webhookReplay(ctx context.Context, in *replayInput) (*replayOutput, error) {
	p := webhook.ReplayParams{EndpointID: in.ID, Statuses: in.Body.Statuses}
	if in.Body.From != nil {
		p.From = *in.Body.From
	}
	if in.Body.To != nil {
		p.To = *in.Body.To
	}
	n, err := s.webhooks.Replay(ctx, p)
	if err != nil {
		return nil, s.messageError(err, "body")
	}
	out := &replayOutput{}
	out.Body.Replayed = n
	return out, nil
}

// The strict decoding of the webhook bodies (see strictBody).
var (
	webhookBodyShape = shapeOf(reflect.TypeFor[WebhookBody]())
	replayBodyShape  = shapeOf(reflect.TypeFor[ReplayBody]())
)

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *WebhookBody) UnmarshalJSON(data []byte) error {
	type plain WebhookBody
	return b.strict.decode(data, (*plain)(b), webhookBodyShape)
}

func (b *WebhookBody) Resolve(huma.Context) []error { return b.strict.errors() }

// UnmarshalJSON decodes b as encoding/json does, noting what checkJSON finds; Resolve reports it.
func (b *ReplayBody) UnmarshalJSON(data []byte) error {
	type plain ReplayBody
	return b.strict.decode(data, (*plain)(b), replayBodyShape)
}

func (b *ReplayBody) Resolve(huma.Context) []error { return b.strict.errors() }
